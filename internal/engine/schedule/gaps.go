package schedule

import "time"

// gapYear is the span MaxGap and Interval look at.
const gapYear = 366 * 24 * time.Hour

// shortestNominalGap is the shortest gap between slots on the clock face,
// ignoring DST (the expression read in UTC): the bound for start windows
// and jitter. A DST change may bring two slots closer once a year (see
// doc.go); Decide then supersedes the older one.
func (p *Plan) shortestNominalGap() time.Duration {
	if p.cron == nil {
		return p.interval
	}
	return p.cron.nominalMin
}

// Interval is the shortest gap between two consecutive slots over the year
// after t, in real time (a DST change can shorten it once a year).
func (p *Plan) Interval(t time.Time) time.Duration {
	shortest, _ := p.gaps(t)
	return shortest
}

// MaxGap is the longest gap between two consecutive slots over the year
// after from, in real time: the longest a group goes without a scheduled
// backup (3 days for a weekday-only daily cron; 25 hours for a daily cron
// across a fall-back DST change). Compare it with a group's RPO.
func (p *Plan) MaxGap(from time.Time) time.Duration {
	_, longest := p.gaps(from)
	return longest
}

// gaps returns the shortest and longest gaps between consecutive slots
// from the first slot after from until the first slot more than a year
// after from.
func (p *Plan) gaps(from time.Time) (shortest, longest time.Duration) {
	if p.cron == nil {
		return p.interval, p.interval
	}
	end := from.Add(gapYear)
	prev := p.Next(from)
	for !prev.IsZero() {
		if last, ok := p.cron.restOfUniformDay(prev); ok {
			// A day without a zone change has the clock-face gaps: skip to
			// its last slot instead of visiting every one.
			if shortest == 0 || p.cron.intraMin < shortest {
				shortest = p.cron.intraMin
			}
			longest = max(longest, p.cron.intraMax)
			prev = last
		}
		n := p.Next(prev)
		if n.IsZero() {
			break
		}
		g := n.Sub(prev)
		if shortest == 0 || g < shortest {
			shortest = g
		}
		longest = max(longest, g)
		if n.After(end) {
			break
		}
		prev = n
	}
	return shortest, longest
}
