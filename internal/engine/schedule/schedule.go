// Package schedule computes when a backup schedule is due: cron expressions
// in a time zone or plain intervals, start windows, deterministic jitter and
// catch-up after downtime. It is pure (no clock, no I/O): callers pass the
// time, so every rule is testable across DST changes.
package schedule

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// DefaultStartWindow is the start window of a schedule that sets none.
const DefaultStartWindow = time.Hour

// Plan is a parsed, validated schedule.
type Plan struct {
	name        string
	cron        cron.Schedule
	loc         *time.Location
	interval    time.Duration
	startWindow time.Duration
	jitter      time.Duration
	catchUp     string
}

// Parse validates s and returns its plan.
func Parse(s catalog.Schedule) (*Plan, error) {
	p := &Plan{name: s.Name, interval: s.Interval, startWindow: s.StartWindow, jitter: s.Jitter, catchUp: s.CatchUp}
	if p.startWindow <= 0 {
		p.startWindow = DefaultStartWindow
	}
	if p.catchUp == "" {
		p.catchUp = catalog.CatchUpLatest
	}
	switch {
	case s.Cron != "" && s.Interval != 0:
		return nil, fmt.Errorf("schedule %q: set cron or interval, not both", s.Name)
	case s.Cron != "":
		loc := time.UTC
		if s.TimeZone != "" {
			l, err := time.LoadLocation(s.TimeZone)
			if err != nil {
				return nil, fmt.Errorf("schedule %q: time zone %q: %w", s.Name, s.TimeZone, err)
			}
			loc = l
		}
		c, err := cron.ParseStandard(s.Cron)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: cron expression %q: %w", s.Name, s.Cron, err)
		}
		p.cron, p.loc = c, loc
	case s.Interval > 0:
		p.loc = time.UTC
	default:
		return nil, fmt.Errorf("schedule %q: set cron or interval", s.Name)
	}
	return p, nil
}

// Next returns the first slot strictly after t (UTC).
func (p *Plan) Next(t time.Time) time.Time {
	if p.cron != nil {
		return p.cron.Next(t.In(p.loc)).UTC()
	}
	// Interval slots are aligned on the Unix epoch so every daemon agrees.
	n := t.UTC().Truncate(p.interval).Add(p.interval)
	return n
}

// StartWindow is the time after a slot within which its run must start.
func (p *Plan) StartWindow() time.Duration { return p.startWindow }

// Jitter returns the delay of slot: the same for every daemon (a hash of the
// schedule name and the slot), in [0, jitter).
func (p *Plan) Jitter(slot time.Time) time.Duration {
	if p.jitter <= 0 {
		return 0
	}
	h := uint64(14695981039346656037)
	for _, b := range []byte(p.name + "@" + slot.UTC().Format(time.RFC3339Nano)) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return time.Duration(h % uint64(p.jitter))
}

// Decision says what to do with a schedule at a given time.
type Decision struct {
	Run    time.Time   // slot to run now; zero if none
	Missed []time.Time // slots to record as missed (oldest first), bounded
	Next   time.Time   // next slot after now
}

// MaxMissedRecorded bounds the missed slots one Decide reports, so a long
// downtime of a frequent schedule cannot flood the catalog.
const MaxMissedRecorded = 100

// Decide returns what is due at now, given the latest slot already handled
// (claimed, run or missed; zero if none). A slot is runnable from slot +
// jitter until slot + start window; older slots are missed, except that
// with catch-up "latest" the most recent missed slot runs once.
func (p *Plan) Decide(now, lastHandled time.Time) Decision {
	var d Decision
	from := lastHandled
	if from.IsZero() {
		// A new schedule starts with the slot before now (so a daemon that
		// starts inside a start window still runs it), not with history.
		from = now.Add(-p.startWindow)
	}
	var pending []time.Time
	for s := p.Next(from); !s.After(now); s = p.Next(s) {
		pending = append(pending, s)
		if len(pending) > MaxMissedRecorded+1 {
			pending = pending[1:]
		}
	}
	d.Next = p.Next(now)
	if len(pending) == 0 {
		return d
	}
	latest := pending[len(pending)-1]
	older := pending[:len(pending)-1]
	switch {
	case now.Before(latest.Add(p.Jitter(latest))):
		// latest is not runnable yet; older ones were handled above.
		d.Missed = older
		d.Next = latest
		if p.catchUp == catalog.CatchUpLatest && len(older) > 0 {
			d.Run, d.Missed = older[len(older)-1], older[:len(older)-1]
		}
	case now.Before(latest.Add(p.startWindow)):
		d.Run, d.Missed = latest, older
	default:
		d.Missed = pending
		if p.catchUp == catalog.CatchUpLatest {
			d.Run, d.Missed = latest, older
		}
	}
	return d
}

// Interval is the shortest gap between two slots (for RPO checks), measured
// over the next year from t.
func (p *Plan) Interval(t time.Time) time.Duration {
	if p.cron == nil {
		return p.interval
	}
	minGap := time.Duration(1<<63 - 1)
	prev := p.Next(t)
	end := t.Add(366 * 24 * time.Hour)
	for i := 0; i < 10000 && prev.Before(end); i++ {
		n := p.Next(prev)
		if g := n.Sub(prev); g < minGap {
			minGap = g
		}
		prev = n
	}
	return minGap
}
