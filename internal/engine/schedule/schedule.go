package schedule

import (
	"fmt"
	"time"
)

// DefaultStartWindow is the start window of a schedule that sets none (or
// the shortest gap between its slots, if that is shorter).
const DefaultStartWindow = time.Hour

// Plan is a parsed, validated schedule. It is immutable and safe for
// concurrent use.
type Plan struct {
	name             string
	cron             *cronSpec // nil for an interval schedule
	loc              *time.Location
	interval         time.Duration
	startWindow      time.Duration
	completionWindow time.Duration
	jitter           time.Duration
	catchUp          string
	notBefore        time.Time // the schedule's CreatedAt (UTC); zero if unknown
}

// Next returns the first slot strictly after t, in UTC; the zero time if
// the schedule has none within nine years (cannot happen for a parsed
// plan).
func (p *Plan) Next(t time.Time) time.Time {
	if p.cron != nil {
		return p.cron.next(t)
	}
	// Interval slots are whole multiples of the interval since the Unix
	// epoch (1970-01-01T00:00:00Z), so every daemon computes the same slots
	// whenever it starts, whatever its zone.
	iv := int64(p.interval / time.Second)
	return time.Unix((floorDiv(t.Unix(), iv)+1)*iv, 0).UTC()
}

// Prev returns the last slot at or before t, in UTC (zero if none within
// nine years).
func (p *Plan) Prev(t time.Time) time.Time {
	if p.cron != nil {
		return p.cron.prev(t)
	}
	iv := int64(p.interval / time.Second)
	return time.Unix(floorDiv(t.Unix(), iv)*iv, 0).UTC()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// StartWindow is the time after a slot within which its run must start.
func (p *Plan) StartWindow() time.Duration { return p.startWindow }

// CompletionWindow is how long a run may take once started; 0 means no
// bound.
func (p *Plan) CompletionWindow() time.Duration { return p.completionWindow }

// CompletionDeadline returns when a run started at started must be
// cancelled, or the zero time if the schedule sets no completion window.
func (p *Plan) CompletionDeadline(started time.Time) time.Time {
	if p.completionWindow <= 0 {
		return time.Time{}
	}
	return started.Add(p.completionWindow)
}

// CatchUp returns the catch-up policy (catalog.CatchUpLatest or
// catalog.CatchUpSkip).
func (p *Plan) CatchUp() string { return p.catchUp }

// NotBefore returns the schedule's creation time (zero if unknown): with
// nothing handled yet, slots at or before it are history, not missed.
func (p *Plan) NotBefore() time.Time { return p.notBefore }

// WithNotBefore returns a copy of p whose history ends at t instead of the
// schedule's CreatedAt (e.g. when the creation time is unknown).
func (p *Plan) WithNotBefore(t time.Time) *Plan {
	q := *p
	q.notBefore = t.UTC()
	if t.IsZero() {
		q.notBefore = time.Time{}
	}
	return &q
}

// Location is the zone the cron expression is read in (UTC for intervals).
func (p *Plan) Location() *time.Location { return p.loc }

// Window returns when slot may start: from slot + its jitter until (not
// including) slot + start window.
func (p *Plan) Window(slot time.Time) (opens, closes time.Time) {
	return slot.Add(p.Jitter(slot)), slot.Add(p.startWindow)
}

// Jitter returns the delay of slot in [0, jitter): the same for every
// daemon and every Plan of the schedule (a hash of the schedule name and
// the slot), different from slot to slot.
func (p *Plan) Jitter(slot time.Time) time.Duration {
	if p.jitter <= 0 {
		return 0
	}
	h := uint64(14695981039346656037) // FNV-1a
	for _, b := range []byte(p.name) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	u := uint64(slot.Unix()) //nolint:gosec // G115: only the bits are hashed
	for i := 0; i < 8; i++ {
		h ^= (u >> (8 * i)) & 0xff
		h *= 1099511628211
	}
	// splitmix64 finaliser: spread FNV's weak low bits before the modulo.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return time.Duration(h % uint64(p.jitter)) //nolint:gosec // G115: below p.jitter, a positive int64
}

// Decision says what to do with a schedule at a given time.
type Decision struct {
	// Run is the slot to claim and run now; zero if none.
	Run time.Time
	// Late is set when Run's start window has passed: catch-up "latest"
	// runs it once after downtime.
	Late bool
	// Missed are slots to record as missed, oldest first, at most
	// MaxMissedRecorded (the newest ones); MissedReasons[i] says why
	// Missed[i] did not run.
	Missed        []time.Time
	MissedReasons []string
	// MissedTruncated is set when more slots were pending than listed: the
	// oldest ones are not reported (a long downtime of a frequent schedule).
	MissedTruncated bool
	// Next is the next slot to wait for: the first slot after now, or a
	// pending slot still inside its jitter delay. Call Decide again at
	// Next + Jitter(Next).
	Next time.Time
}

// MaxMissedRecorded bounds the missed slots one Decide reports, so a long
// downtime of a frequent schedule cannot flood the catalog.
const MaxMissedRecorded = 100

// Decide returns what is due at now.
//
// lastHandled is the latest slot already claimed (run or missed); slots
// strictly after it and at or before now are pending. When it is zero (a
// new schedule), pending slots start strictly after the schedule's
// CreatedAt (NotBefore), or, if that is unknown too, one start window
// before now: history before the schedule existed is neither run nor
// missed.
//
// The newest pending slot runs if now is in its Window. If now is before
// the window opens (jitter), Decide waits for it (Next). If the window has
// passed, catch-up "latest" runs it anyway, once (Late); "skip" records it
// missed. Every older pending slot is missed: after downtime there is at
// most one run, never a burst.
//
// Decide does not know whether the schedule is paused or a run is in
// progress; the caller does not call it then.
func (p *Plan) Decide(now, lastHandled time.Time) Decision {
	from := lastHandled
	if from.IsZero() {
		from = p.notBefore
		if from.IsZero() {
			from = now.Add(-p.startWindow)
		}
	}
	// Pending slots, newest first, found backwards from now: the cost is
	// bounded by MaxMissedRecorded, not by the length of the downtime.
	var pending []time.Time
	truncated := false
	for s := p.Prev(now); !s.IsZero() && s.After(from); s = p.Prev(s.Add(-time.Nanosecond)) {
		if len(pending) == MaxMissedRecorded+1 {
			truncated = true
			break
		}
		pending = append(pending, s)
	}
	d := Decision{Next: p.Next(now)}
	if len(pending) == 0 {
		return d
	}
	latest, older := pending[0], pending[1:]
	opens, closes := p.Window(latest)
	missLatest := false
	switch {
	case now.Before(opens):
		d.Next = latest
	case now.Before(closes):
		d.Run = latest
	case p.catchUp == "skip":
		missLatest = true
	default:
		d.Run, d.Late = latest, true
	}
	var missed []time.Time
	var reasons []string
	if missLatest {
		missed = append(missed, latest)
		reasons = append(reasons, fmt.Sprintf("not started within its start window (%s) and catch-up is skip", p.startWindow))
	}
	for _, s := range older {
		missed = append(missed, s)
		if now.Before(s.Add(p.startWindow)) {
			reasons = append(reasons, fmt.Sprintf("superseded by the newer slot %s, due before this one's start window (%s) closed", latest.Format(time.RFC3339), p.startWindow))
			continue
		}
		why := fmt.Sprintf("not started within its start window (%s)", p.startWindow)
		switch {
		case missLatest:
			why += " and catch-up is skip"
		case d.Late:
			why += fmt.Sprintf("; catch-up runs only the latest slot (%s)", latest.Format(time.RFC3339))
		}
		reasons = append(reasons, why)
	}
	if len(missed) > MaxMissedRecorded {
		missed, reasons, truncated = missed[:MaxMissedRecorded], reasons[:MaxMissedRecorded], true
	}
	// Oldest first, so that recording them in order moves lastHandled
	// forward.
	for i, j := 0, len(missed)-1; i < j; i, j = i+1, j-1 {
		missed[i], missed[j] = missed[j], missed[i]
		reasons[i], reasons[j] = reasons[j], reasons[i]
	}
	d.Missed, d.MissedReasons, d.MissedTruncated = missed, reasons, truncated
	return d
}
