package agent

import (
	"fmt"
	"time"
)

// checkClaimGap bounds Acquire's read→rename gap. Acquire decides from the
// record it read that it may claim; if it was stalled (SIGSTOP, a hung
// mount) between that read and the rename of its claim for longer than the
// clock-skew margin, the decision is stale: meanwhile another node may have
// claimed the lease, started the workload and be renewing it, and our
// rename overwrote its record. Such an acquisition is uncertain: the record
// is re-read at once (another write after ours means someone else is
// active: back off), and the confirmation waits as long as a takeover
// (expiry + margin, the longer expiry of ours and the record's), so that a
// holder whose record we overwrote either renews over our claim (we lose)
// or notices it lost the lease and has stopped its workload — a holder
// stops within its stop deadline, which the config keeps below its expiry.
// read is the record Acquire read; gap is the monotonic time from that
// read to after the rename; o.mu is held.
func (o *Owners) checkClaimGap(workload string, read, claim OwnerRecord, gap, delay time.Duration) (time.Duration, error) {
	if gap <= o.cfg.ClockSkewMargin {
		return delay, nil
	}
	got, exists, err := ReadOwnerRecord(o.volume, workload)
	if err != nil {
		return 0, fmt.Errorf("re-read after a stalled claim (%s between read and write): %w", gap.Round(time.Millisecond), err)
	}
	if !exists || got.Claim != claim.Claim {
		return 0, &LeaseHeldError{Workload: workload, Record: got, Race: true}
	}
	wait := max(delay, o.cfg.takeoverDelayWith(read))
	o.logger.Warn("the claim of an ownership lease was written long after the record was read (the agent or the volume stalled): waiting as long as a takeover before trusting it",
		"workload", workload, "gap", gap, "bound", o.cfg.ClockSkewMargin, "wait", wait)
	return wait, nil
}
