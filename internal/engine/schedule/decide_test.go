package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

func TestDecide(t *testing.T) {
	hourly := catalog.Schedule{Interval: time.Hour, StartWindow: 30 * time.Minute}
	skip := hourly
	skip.CatchUp = catalog.CatchUpSkip
	created := catalog.Schedule{Interval: time.Hour, StartWindow: 30 * time.Minute, CreatedAt: at(t, "2026-05-01T10:20:00Z")}
	type want struct {
		run      string
		late     bool
		missed   []string
		reason   string // substring of every missed reason
		next     string
		truncate bool
	}
	cases := []struct {
		name             string
		s                catalog.Schedule
		now, lastHandled string
		want             want
	}{
		{"nothing pending", hourly, "2026-05-01T10:40:00Z", "2026-05-01T10:00:00Z",
			want{next: "2026-05-01T11:00:00Z"}},
		{"slot due at its start", hourly, "2026-05-01T11:00:00Z", "2026-05-01T10:00:00Z",
			want{run: "2026-05-01T11:00:00Z", next: "2026-05-01T12:00:00Z"}},
		{"last instant of the start window", hourly, "2026-05-01T11:29:59.999999999Z", "2026-05-01T10:00:00Z",
			want{run: "2026-05-01T11:00:00Z", next: "2026-05-01T12:00:00Z"}},
		{"window closed, catch-up latest runs it late", hourly, "2026-05-01T11:30:00Z", "2026-05-01T10:00:00Z",
			want{run: "2026-05-01T11:00:00Z", late: true, next: "2026-05-01T12:00:00Z"}},
		{"window closed, catch-up skip records it missed", skip, "2026-05-01T11:30:00Z", "2026-05-01T10:00:00Z",
			want{missed: []string{"2026-05-01T11:00:00Z"}, reason: "catch-up is skip", next: "2026-05-01T12:00:00Z"}},
		{"downtime, newest in its window: one run, older missed", hourly, "2026-05-01T15:10:00Z", "2026-05-01T10:00:00Z",
			want{run: "2026-05-01T15:00:00Z", next: "2026-05-01T16:00:00Z",
				missed: []string{"2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z", "2026-05-01T13:00:00Z", "2026-05-01T14:00:00Z"},
				reason: "not started within its start window (30m0s)"}},
		{"downtime, catch-up latest: one late run, never a burst", hourly, "2026-05-01T15:45:00Z", "2026-05-01T10:00:00Z",
			want{run: "2026-05-01T15:00:00Z", late: true, next: "2026-05-01T16:00:00Z",
				missed: []string{"2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z", "2026-05-01T13:00:00Z", "2026-05-01T14:00:00Z"},
				reason: "catch-up runs only the latest slot"}},
		{"downtime, catch-up skip: all missed", skip, "2026-05-01T13:45:00Z", "2026-05-01T10:00:00Z",
			want{missed: []string{"2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z", "2026-05-01T13:00:00Z"},
				reason: "catch-up is skip", next: "2026-05-01T14:00:00Z"}},
		{"new schedule: slots before CreatedAt are history", created, "2026-05-01T10:25:00Z", "",
			want{next: "2026-05-01T11:00:00Z"}},
		{"new schedule: first slot after CreatedAt runs", created, "2026-05-01T11:05:00Z", "",
			want{run: "2026-05-01T11:00:00Z", next: "2026-05-01T12:00:00Z"}},
		{"new schedule down since creation: counted from CreatedAt", created, "2026-05-01T13:10:00Z", "",
			want{run: "2026-05-01T13:00:00Z", next: "2026-05-01T14:00:00Z",
				missed: []string{"2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z"}, reason: "start window"}},
		{"no CreatedAt and nothing handled: only the current window", hourly, "2026-05-01T11:10:00Z", "",
			want{run: "2026-05-01T11:00:00Z", next: "2026-05-01T12:00:00Z"}},
		{"no CreatedAt and nothing handled, window passed: nothing", hourly, "2026-05-01T11:40:00Z", "",
			want{next: "2026-05-01T12:00:00Z"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, c.s)
			var last time.Time
			if c.lastHandled != "" {
				last = at(t, c.lastHandled)
			}
			now, err := time.Parse(time.RFC3339Nano, c.now)
			if err != nil {
				t.Fatal(err)
			}
			d := p.Decide(now, last)
			checkDecision(t, d, c.want.run, c.want.late, c.want.missed, c.want.next)
			for i, r := range d.MissedReasons {
				if !strings.Contains(r, c.want.reason) {
					t.Errorf("reason of %s = %q, want it to contain %q", d.Missed[i], r, c.want.reason)
				}
			}
			if d.MissedTruncated != c.want.truncate {
				t.Errorf("MissedTruncated = %v", d.MissedTruncated)
			}
		})
	}
}

func checkDecision(t *testing.T, d Decision, run string, late bool, missed []string, next string) {
	t.Helper()
	var wantRun time.Time
	if run != "" {
		wantRun = at(t, run)
	}
	if !d.Run.Equal(wantRun) || d.Late != late {
		t.Errorf("Run = %s (late %v), want %q (late %v)", d.Run, d.Late, run, late)
	}
	if len(d.Missed) != len(missed) || len(d.MissedReasons) != len(d.Missed) {
		t.Fatalf("Missed = %v (%d reasons), want %v", d.Missed, len(d.MissedReasons), missed)
	}
	for i, m := range missed {
		if !d.Missed[i].Equal(at(t, m)) {
			t.Errorf("Missed[%d] = %s, want %s", i, d.Missed[i], m)
		}
	}
	if !d.Next.Equal(at(t, next)) {
		t.Errorf("Next = %s, want %s", d.Next, next)
	}
}

// TestDecideJitterEdges: a slot becomes runnable at slot+jitter exactly, and
// is waited for (Next is the slot) before that.
func TestDecideJitterEdges(t *testing.T) {
	p := mustParse(t, catalog.Schedule{Name: "jittered", Interval: time.Hour, StartWindow: 30 * time.Minute, Jitter: 10 * time.Minute})
	last := at(t, "2026-05-01T10:00:00Z")
	// Find a slot with a non-zero jitter (almost all of them).
	slot := at(t, "2026-05-01T11:00:00Z")
	for p.Jitter(slot) == 0 {
		last, slot = slot, slot.Add(time.Hour)
	}
	j := p.Jitter(slot)
	opens, closes := p.Window(slot)
	if !opens.Equal(slot.Add(j)) || !closes.Equal(slot.Add(30*time.Minute)) {
		t.Fatalf("Window(%s) = [%s, %s), want [slot+%s, slot+30m)", slot, opens, closes, j)
	}
	d := p.Decide(opens.Add(-time.Nanosecond), last)
	if !d.Run.IsZero() || !d.Next.Equal(slot) || len(d.Missed) != 0 {
		t.Errorf("before slot+jitter: %+v, want no run and Next = the slot", d)
	}
	if d := p.Decide(opens, last); !d.Run.Equal(slot) || d.Late {
		t.Errorf("at slot+jitter: %+v, want it to run", d)
	}
	if d := p.Decide(closes.Add(-time.Nanosecond), last); !d.Run.Equal(slot) || d.Late {
		t.Errorf("just before the window closes: %+v, want it to run", d)
	}
	if d := p.Decide(closes, last); !d.Run.Equal(slot) || !d.Late {
		t.Errorf("when the window closes: %+v, want a late catch-up run", d)
	}
	// Downtime ending inside the newest slot's jitter: older slots are
	// missed and the newest is waited for, not run together with an old one.
	d = p.Decide(opens.Add(-time.Nanosecond), slot.Add(-5*time.Hour))
	if !d.Run.IsZero() || !d.Next.Equal(slot) || len(d.Missed) != 4 {
		t.Errorf("downtime ending in the jitter delay: %+v, want 4 missed, wait for %s", d, slot)
	}
}

// TestDowntimeOneRun replays a daemon that records every decision, polled
// every minute over a downtime and after it: each slot is handled once, and
// only one run happens for the downtime.
func TestDowntimeOneRun(t *testing.T) {
	for _, policy := range []string{catalog.CatchUpLatest, catalog.CatchUpSkip} {
		t.Run(policy, func(t *testing.T) {
			p := mustParse(t, catalog.Schedule{Cron: "0 * * * *", TimeZone: "Europe/Berlin", StartWindow: 20 * time.Minute, CatchUp: policy})
			last := at(t, "2026-03-29T00:00:00+01:00")
			handled := map[time.Time]string{}
			record := func(s time.Time, what string) {
				if prev, dup := handled[s]; dup {
					t.Fatalf("slot %s handled twice (%s, then %s)", s, prev, what)
				}
				handled[s] = what
				last = s
			}
			runs := 0
			// Down from 00:30 until 06:40 local; then polled every minute until 09:00.
			for now := at(t, "2026-03-29T06:40:00+02:00"); now.Before(at(t, "2026-03-29T09:00:00+02:00")); now = now.Add(time.Minute) {
				d := p.Decide(now, last)
				for _, m := range d.Missed {
					record(m, "missed")
				}
				if !d.Run.IsZero() {
					record(d.Run, "run")
					runs++
				}
			}
			// 01:00 CET, then 03:00..08:00 CEST (02:00 does not exist).
			if len(handled) != 7 {
				t.Errorf("handled %d slots: %v", len(handled), handled)
			}
			wantRuns := 3 // 07:00, 08:00 on time; 06:00 caught up late
			if policy == catalog.CatchUpSkip {
				wantRuns = 2
			}
			if runs != wantRuns {
				t.Errorf("%d runs, want %d: %v", runs, wantRuns, handled)
			}
		})
	}
}

// TestDecideLongDowntimeIsBounded: a one-minute schedule down for a thousand
// years reports the newest MaxMissedRecorded slots without visiting the
// others (visiting 525 million slots would take minutes).
func TestDecideLongDowntimeIsBounded(t *testing.T) {
	for _, s := range []catalog.Schedule{
		{Interval: time.Minute, CatchUp: catalog.CatchUpSkip},
		{Cron: "* * * * *", TimeZone: "Europe/Berlin", CatchUp: catalog.CatchUpSkip},
	} {
		p := mustParse(t, s)
		now := at(t, "2026-05-01T12:00:30Z")
		last := now.AddDate(-1000, 0, 0)
		if s.Cron != "" {
			last = now.AddDate(-1, 0, 0)
		}
		start := time.Now()
		d := p.Decide(now, last)
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("%s%s: Decide took %s", s.Cron, s.Interval, elapsed)
		}
		// The default start window is the one-minute gap: 12:00 runs.
		if len(d.Missed) != MaxMissedRecorded || !d.MissedTruncated || !d.Run.Equal(at(t, "2026-05-01T12:00:00Z")) {
			t.Fatalf("%s%s: %d missed (truncated %v, run %s), want the newest %d, truncated, and 12:00 run", s.Cron, s.Interval, len(d.Missed), d.MissedTruncated, d.Run, MaxMissedRecorded)
		}
		if newest := d.Missed[len(d.Missed)-1]; !newest.Equal(at(t, "2026-05-01T11:59:00Z")) {
			t.Errorf("newest missed = %s", newest)
		}
		if oldest := d.Missed[0]; !oldest.Equal(at(t, "2026-05-01T10:20:00Z")) {
			t.Errorf("oldest listed = %s, want the 100th newest", oldest)
		}
	}
}

func BenchmarkDecideYearDowntimeEveryMinute(b *testing.B) {
	p := mustParse(b, catalog.Schedule{Cron: "* * * * *", TimeZone: "Europe/Berlin"})
	now := time.Date(2026, 5, 1, 12, 0, 30, 0, time.UTC)
	for b.Loop() {
		p.Decide(now, now.AddDate(-1, 0, 0))
	}
}

func BenchmarkDecideDailyOnTime(b *testing.B) {
	p := mustParse(b, catalog.Schedule{Cron: "30 2 * * *", TimeZone: "Europe/Berlin"})
	now := time.Date(2026, 5, 1, 0, 40, 0, 0, time.UTC)
	for b.Loop() {
		p.Decide(now, now.Add(-24*time.Hour))
	}
}

// TestDecideAcrossSpringForward: a daily 02:30 Berlin schedule may keep a
// 24h start window (the clock-face gap), although the spring-forward brings
// its slots 23.5h apart once a year. If both are pending, the newer
// supersedes the older: one run.
func TestDecideAcrossSpringForward(t *testing.T) {
	p := mustParse(t, catalog.Schedule{Cron: "30 2 * * *", TimeZone: "Europe/Berlin", StartWindow: 24 * time.Hour})
	d := p.Decide(at(t, "2026-03-29T03:10:00+02:00"), at(t, "2026-03-27T02:30:00+01:00"))
	checkDecision(t, d, "2026-03-29T03:00:00+02:00", false, []string{"2026-03-28T02:30:00+01:00"}, "2026-03-30T02:30:00+02:00")
	if len(d.MissedReasons) == 1 && !strings.Contains(d.MissedReasons[0], "superseded by the newer slot 2026-03-29T01:00:00Z") {
		t.Errorf("reason %q", d.MissedReasons[0])
	}
	// Before the shifted slot: the previous day's slot is still in its window and runs.
	d = p.Decide(at(t, "2026-03-29T01:59:00+01:00"), at(t, "2026-03-27T02:30:00+01:00"))
	checkDecision(t, d, "2026-03-28T02:30:00+01:00", false, nil, "2026-03-29T03:00:00+02:00")
}

func TestWithNotBefore(t *testing.T) {
	p := mustParse(t, catalog.Schedule{Interval: time.Hour, StartWindow: 30 * time.Minute, CreatedAt: at(t, "2026-05-01T08:00:00Z")})
	q := p.WithNotBefore(at(t, "2026-05-01T10:20:00Z"))
	if !p.NotBefore().Equal(at(t, "2026-05-01T08:00:00Z")) || !q.NotBefore().Equal(at(t, "2026-05-01T10:20:00Z")) {
		t.Fatalf("NotBefore: %s, %s", p.NotBefore(), q.NotBefore())
	}
	now := at(t, "2026-05-01T11:10:00Z")
	checkDecision(t, q.Decide(now, time.Time{}), "2026-05-01T11:00:00Z", false, nil, "2026-05-01T12:00:00Z")
	checkDecision(t, p.Decide(now, time.Time{}), "2026-05-01T11:00:00Z", false, []string{"2026-05-01T09:00:00Z", "2026-05-01T10:00:00Z"}, "2026-05-01T12:00:00Z")
}
