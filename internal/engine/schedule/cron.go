package schedule

import (
	"sort"
	"time"

	"github.com/robfig/cron/v3"
)

// starBit is robfig/cron's marker of a "*" (or "?") field: the day-of-month
// and day-of-week fields combine with AND when either is "*", with OR
// otherwise (like Vixie cron).
const starBit = 1 << 63

// searchDays bounds the search for a matching day: a schedule that matches
// at all matches within 9 years of any day (February 29 skips 2100).
const searchDays = 9 * 366

// cronSpec is a cron expression read in a time zone, with the DST rules
// described in doc.go. robfig/cron parses the expression; its own Next is
// not used because it silently skips wall-clock times a spring-forward
// removes (a daily backup would be lost once a year).
type cronSpec struct {
	loc                 *time.Location
	hours, minutes      []int // sorted, from the expression
	dom, month, dow     uint64
	everyHour           bool          // the hour field matches all 24 hours
	firstWall, lastWall int           // minutes after midnight of the day's first and last time
	intraMin, intraMax  time.Duration // shortest and longest gaps within a day (0 if one time a day)
	walls               int           // times per matching day
	dayGapMin           int           // fewest days between two matching days
	nominalMin          time.Duration // shortest gap on the clock face (no DST)
}

func newCronSpec(s *cron.SpecSchedule, loc *time.Location) (*cronSpec, bool) {
	c := &cronSpec{loc: loc, dom: s.Dom, month: s.Month, dow: s.Dow}
	for h := 0; h < 24; h++ {
		if s.Hour&(1<<uint(h)) != 0 {
			c.hours = append(c.hours, h)
		}
	}
	for m := 0; m < 60; m++ {
		if s.Minute&(1<<uint(m)) != 0 {
			c.minutes = append(c.minutes, m)
		}
	}
	if len(c.hours) == 0 || len(c.minutes) == 0 {
		return nil, false
	}
	c.everyHour = len(c.hours) == 24
	c.walls = len(c.hours) * len(c.minutes)
	c.firstWall = c.hours[0]*60 + c.minutes[0]
	c.lastWall = c.hours[len(c.hours)-1]*60 + c.minutes[len(c.minutes)-1]
	prev := -1
	for _, h := range c.hours {
		for _, m := range c.minutes {
			w := h*60 + m
			if prev >= 0 {
				g := time.Duration(w-prev) * time.Minute
				if c.intraMin == 0 || g < c.intraMin {
					c.intraMin = g
				}
				c.intraMax = max(c.intraMax, g)
			}
			prev = w
		}
	}
	// Day pattern, read in UTC (no DST): the nominal shortest gap between
	// slots. A gap of one day ends the scan early (daily schedules); others
	// scan 28 years from 2000, one full cycle of the Gregorian weekdays.
	day := time.Date(2000, 1, 1, 12, 0, 0, 0, time.UTC)
	last := -1
	for i := 0; i < 28*366 && c.dayGapMin != 1; i++ {
		if !c.dayMatches(day.Add(time.Duration(i) * 24 * time.Hour)) {
			continue
		}
		if last >= 0 && (c.dayGapMin == 0 || i-last < c.dayGapMin) {
			c.dayGapMin = i - last
		}
		last = i
	}
	if last < 0 {
		return nil, false // never matches (e.g. February 30)
	}
	c.nominalMin = c.intraMin
	if c.dayGapMin > 0 {
		span := time.Duration(c.lastWall-c.firstWall) * time.Minute
		if cross := time.Duration(c.dayGapMin)*24*time.Hour - span; c.nominalMin == 0 || cross < c.nominalMin {
			c.nominalMin = cross
		}
	}
	return c, true
}

// dayMatches reports whether the civil date of d (its year, month and day,
// whatever its location) matches the day fields.
func (c *cronSpec) dayMatches(d time.Time) bool {
	_, m, day := d.Date()
	if c.month&(1<<uint(m)) == 0 {
		return false
	}
	domMatch := c.dom&(1<<uint(day)) != 0
	dowMatch := c.dow&(1<<uint(d.Weekday())) != 0
	if c.dom&starBit != 0 || c.dow&starBit != 0 {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}

func (c *cronSpec) minuteMatches(m int) bool {
	i := sort.SearchInts(c.minutes, m)
	return i < len(c.minutes) && c.minutes[i] == m
}

// civil returns the civil date of t in c's zone, as noon UTC (so that
// AddDate steps whole days).
func (c *cronSpec) civil(t time.Time) time.Time {
	y, m, d := t.In(c.loc).Date()
	return time.Date(y, m, d, 12, 0, 0, 0, time.UTC)
}

// wallInstant returns the first instant whose local time is the civil date
// day at hh:mm, or, when the clock skipped that time (spring forward), the
// first instant after the gap.
func wallInstant(day time.Time, hh, mm int, loc *time.Location) time.Time {
	y, mo, d := day.Date()
	want := time.Date(y, mo, d, hh, mm, 0, 0, time.UTC)
	if occ := occurrences(want, loc); len(occ) > 0 {
		return occ[0]
	}
	a := time.Date(y, mo, d, hh, mm, 0, 0, loc)
	start, end := a.ZoneBounds()
	if wallOf(a).After(want) {
		return start // a is past the gap: the gap ends where a's zone begins
	}
	return end
}

// occurrences returns the instants (0, 1 or 2, ascending) whose local time
// in loc is want (a wall-clock time expressed in UTC).
func occurrences(want time.Time, loc *time.Location) []time.Time {
	y, mo, d := want.Date()
	a := time.Date(y, mo, d, want.Hour(), want.Minute(), want.Second(), 0, loc)
	_, off := a.Zone()
	offs := []int{off}
	start, end := a.ZoneBounds()
	if !start.IsZero() {
		_, o := start.Add(-time.Second).Zone()
		offs = append(offs, o)
	}
	if !end.IsZero() {
		_, o := end.In(loc).Zone()
		offs = append(offs, o)
	}
	var out []time.Time
	for _, o := range offs {
		i := want.Add(-time.Duration(o) * time.Second).In(loc)
		if _, got := i.Zone(); got != o {
			continue
		}
		dup := false
		for _, x := range out {
			dup = dup || x.Equal(i)
		}
		if !dup {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// wallOf returns t's local wall-clock time expressed in UTC.
func wallOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// dayStart returns the first instant of the civil date day in loc.
func dayStart(day time.Time, loc *time.Location) time.Time {
	return wallInstant(day, 0, 0, loc)
}

// next returns the first slot strictly after t, or the zero time if none
// is within searchDays.
func (c *cronSpec) next(t time.Time) time.Time {
	if c.everyHour {
		return c.nextEveryHour(t)
	}
	day := c.civil(t).AddDate(0, 0, -1)
	for i := 0; i < searchDays; i++ {
		d := day.AddDate(0, 0, i)
		if !c.dayMatches(d) {
			continue
		}
		// Slots of a day are in wall-clock order and never go back in time
		// (first occurrence; skipped times move to the end of the gap).
		if !c.wall(d, c.walls-1).After(t) {
			continue
		}
		k := sort.Search(c.walls, func(k int) bool { return c.wall(d, k).After(t) })
		return c.wall(d, k).UTC()
	}
	return time.Time{}
}

// prev returns the last slot at or before t, or the zero time.
func (c *cronSpec) prev(t time.Time) time.Time {
	if c.everyHour {
		return c.prevEveryHour(t)
	}
	day := c.civil(t).AddDate(0, 0, 1)
	for i := 0; i < searchDays; i++ {
		d := day.AddDate(0, 0, -i)
		if !c.dayMatches(d) || c.wall(d, 0).After(t) {
			continue
		}
		k := sort.Search(c.walls, func(k int) bool { return c.wall(d, k).After(t) })
		return c.wall(d, k-1).UTC()
	}
	return time.Time{}
}

// wall returns the instant of the k-th time of the day d (fixed hours).
func (c *cronSpec) wall(d time.Time, k int) time.Time {
	return wallInstant(d, c.hours[k/len(c.minutes)], c.minutes[k%len(c.minutes)], c.loc)
}

// nextEveryHour: when every hour matches, slots are the instants whose
// local time matches, so a skipped hour is simply not there and a repeated
// hour runs twice: the schedule keeps its real-time spacing.
func (c *cronSpec) nextEveryHour(t time.Time) time.Time {
	i := t.Truncate(time.Minute).Add(time.Minute)
	for n := 0; n < searchDays*2; n++ {
		l := i.In(c.loc)
		if !c.dayMatches(l) {
			s := dayStart(c.civil(i).AddDate(0, 0, 1), c.loc)
			if !s.After(i) {
				s = i.Add(time.Minute)
			}
			i = s
			continue
		}
		// Every hour matches: a matching minute is within the hour.
		for k := 0; k < 61; k++ {
			l = i.In(c.loc)
			if !c.dayMatches(l) {
				break
			}
			if c.minuteMatches(l.Minute()) {
				return i.UTC()
			}
			i = i.Add(time.Minute)
		}
	}
	return time.Time{}
}

func (c *cronSpec) prevEveryHour(t time.Time) time.Time {
	i := t.Truncate(time.Minute)
	for n := 0; n < searchDays*2; n++ {
		l := i.In(c.loc)
		if !c.dayMatches(l) {
			s := dayStart(c.civil(i), c.loc).Add(-time.Minute)
			if !s.Before(i) {
				s = i.Add(-time.Minute)
			}
			i = s
			continue
		}
		for k := 0; k < 61; k++ {
			l = i.In(c.loc)
			if !c.dayMatches(l) {
				break
			}
			if c.minuteMatches(l.Minute()) {
				return i.UTC()
			}
			i = i.Add(-time.Minute)
		}
	}
	return time.Time{}
}

// restOfUniformDay reports, when s is the first time of its local day and
// that day has no zone change, the instant of the day's last time: the
// gaps in between are the nominal ones (intraMin, intraMax).
func (c *cronSpec) restOfUniformDay(s time.Time) (time.Time, bool) {
	l := s.In(c.loc)
	if c.walls < 2 || l.Hour()*60+l.Minute() != c.firstWall {
		return time.Time{}, false
	}
	day := c.civil(s)
	zs, ze := l.ZoneBounds()
	if (!zs.IsZero() && zs.After(dayStart(day, c.loc))) || (!ze.IsZero() && ze.Before(dayStart(day.AddDate(0, 0, 1), c.loc))) {
		return time.Time{}, false
	}
	return wallInstant(day, c.lastWall/60, c.lastWall%60, c.loc).UTC(), true
}
