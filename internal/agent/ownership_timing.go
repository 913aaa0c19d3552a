package agent

import "time"

// freeDelayWith is how long an acquirer waits after claiming a free (absent
// or released) record before it re-reads it: longer than one renewal
// interval, so that any other acquirer that read the record before our
// write has written its own claim by then and one of the two sees the
// other's. It is one and a half of the longer renewal interval, ours or the
// record's (rec's writer may renew more slowly).
func (c OwnershipConfig) freeDelayWith(rec OwnerRecord) time.Duration {
	renew := max(c.RenewInterval, time.Duration(rec.RenewIntervalMS)*time.Millisecond)
	return renew + renew/2
}

// takeoverDelayWith is takeoverDelay for a lease its holder renewed with
// rec's timing: the longer expiry, ours or the holder's, plus the margin,
// so a holder configured with a longer expiry than ours still notices it
// cannot renew and stops its workload before we start it.
func (c OwnershipConfig) takeoverDelayWith(rec OwnerRecord) time.Duration {
	return max(c.Expiry, time.Duration(rec.ExpiryMS)*time.Millisecond) + c.ClockSkewMargin
}
