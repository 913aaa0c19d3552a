package schedule

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// TestCronAcrossDST pins the slots around DST changes in several zones.
// Times are written with the offset in force, so "+02:00" after a
// spring-forward in Berlin reads as local summer time.
func TestCronAcrossDST(t *testing.T) {
	cases := []struct {
		name, cron, zone, from string
		want                   []string
	}{
		{
			name: "Berlin spring-forward: skipped 02:30 runs at 03:00",
			cron: "30 2 * * *", zone: "Europe/Berlin", from: "2026-03-28T00:00:00+01:00",
			want: []string{"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"},
		},
		{
			name: "Berlin fall-back: repeated 02:30 runs once, at its first occurrence",
			cron: "30 2 * * *", zone: "Europe/Berlin", from: "2026-10-24T00:00:00+02:00",
			want: []string{"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"},
		},
		{
			name: "Berlin spring-forward: several skipped times collapse into one slot",
			cron: "0,15,30,45 2 * * *", zone: "Europe/Berlin", from: "2026-03-28T23:00:00+01:00",
			want: []string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-30T02:15:00+02:00"},
		},
		{
			name: "Berlin spring-forward: a skipped time and 03:00 are one slot",
			cron: "0 2,3 * * *", zone: "Europe/Berlin", from: "2026-03-28T23:00:00+01:00",
			want: []string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-30T03:00:00+02:00"},
		},
		{
			name: "Berlin every hour: skipped hour is absent, no extra slot",
			cron: "30 * * * *", zone: "Europe/Berlin", from: "2026-03-29T01:00:00+01:00",
			want: []string{"2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-29T04:30:00+02:00"},
		},
		{
			name: "Berlin every hour: repeated hour runs twice (real-time spacing)",
			cron: "30 * * * *", zone: "Europe/Berlin", from: "2026-10-25T01:00:00+02:00",
			want: []string{"2026-10-25T01:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", "2026-10-25T03:30:00+01:00"},
		},
		{
			name: "New York spring-forward (second Sunday of March)",
			cron: "30 2 * * *", zone: "America/New_York", from: "2026-03-07T12:00:00-05:00",
			want: []string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"},
		},
		{
			name: "New York fall-back: 01:30 repeated, runs once",
			cron: "30 1 * * *", zone: "America/New_York", from: "2026-10-31T12:00:00-04:00",
			want: []string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"},
		},
		{
			name: "New York weekdays across spring-forward",
			cron: "0 9 * * 1-5", zone: "America/New_York", from: "2026-03-06T00:00:00-05:00",
			want: []string{"2026-03-06T09:00:00-05:00", "2026-03-09T09:00:00-04:00"},
		},
		{
			name: "Lord Howe spring-forward by 30 minutes: 02:15 runs at 02:30",
			cron: "15 2 * * *", zone: "Australia/Lord_Howe", from: "2026-10-03T00:00:00+10:30",
			want: []string{"2026-10-03T02:15:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"},
		},
		{
			name: "Lord Howe fall-back by 30 minutes: 01:45 repeated, runs once",
			cron: "45 1 * * *", zone: "Australia/Lord_Howe", from: "2026-04-04T12:00:00+11:00",
			want: []string{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"},
		},
		{
			name: "Lord Howe every half hour: skipped 02:00 absent",
			cron: "*/30 * * * *", zone: "Australia/Lord_Howe", from: "2026-10-04T01:00:00+10:30",
			want: []string{"2026-10-04T01:30:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T03:00:00+11:00"},
		},
		{
			name: "Samoa skipped 2011-12-30 entirely: its slot runs at the first instant after",
			cron: "0 12 * * *", zone: "Pacific/Apia", from: "2011-12-29T13:00:00-10:00",
			want: []string{"2011-12-31T00:00:00+14:00", "2011-12-31T12:00:00+14:00"},
		},
		{
			name: "UTC has no DST",
			cron: "30 2 * * *", zone: "", from: "2026-03-28T12:00:00Z",
			want: []string{"2026-03-29T02:30:00Z", "2026-03-30T02:30:00Z"},
		},
		{
			name: "descriptor @daily in a zone",
			cron: "@daily", zone: "Asia/Tokyo", from: "2026-06-01T12:00:00+09:00",
			want: []string{"2026-06-02T00:00:00+09:00", "2026-06-03T00:00:00+09:00"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, catalog.Schedule{Cron: c.cron, TimeZone: c.zone})
			got := slots(p, at(t, c.from), len(c.want))
			if len(got) != len(c.want) {
				t.Fatalf("got %d slots %v, want %v", len(got), got, c.want)
			}
			for i, w := range c.want {
				if !got[i].Equal(at(t, w)) {
					t.Errorf("slot %d = %s, want %s", i, got[i].In(p.Location()).Format(time.RFC3339), w)
				}
				if got[i].Location() != time.UTC {
					t.Errorf("slot %d is in %s, want UTC", i, got[i].Location())
				}
				if prev := p.Prev(got[i]); !prev.Equal(got[i]) {
					t.Errorf("Prev(slot %d) = %s, want the slot itself", i, prev)
				}
			}
		})
	}
}

// TestPrevNextConsistent walks the slots of a year in zones with DST and
// checks that Next and Prev agree: no slot between Prev(t) and Next(t).
func TestPrevNextConsistent(t *testing.T) {
	exprs := []string{"30 2 * * *", "*/20 * * * *", "0 0-3 * * *", "15,45 1,2 * * 0", "0 0 1 * *", "45 23 * * *", "0 12 29 2 *"}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Pacific/Apia"}
	for _, e := range exprs {
		for _, z := range zones {
			t.Run(e+" "+z, func(t *testing.T) {
				t.Parallel()
				p := mustParse(t, catalog.Schedule{Cron: e, TimeZone: z})
				from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				end := from.AddDate(1, 0, 0)
				if e == "0 12 29 2 *" {
					end = from.AddDate(8, 0, 0)
				}
				prev := time.Time{}
				for s := p.Next(from); s.Before(end); s = p.Next(s) {
					if !prev.IsZero() {
						if !s.After(prev) {
							t.Fatalf("Next(%s) = %s, not after it", prev, s)
						}
						mid := prev.Add(s.Sub(prev) / 2)
						if got := p.Prev(mid); !got.Equal(prev) {
							t.Fatalf("Prev(%s) = %s, want %s", mid, got, prev)
						}
						if got := p.Prev(s.Add(-time.Nanosecond)); !got.Equal(prev) {
							t.Fatalf("Prev(just before %s) = %s, want %s", s, got, prev)
						}
					}
					if got := p.Prev(s); !got.Equal(s) {
						t.Fatalf("Prev(%s) = %s, want itself", s, got)
					}
					if s.Second() != 0 || s.Nanosecond() != 0 {
						t.Fatalf("slot %s is not on a whole minute", s)
					}
					prev = s
				}
				if prev.IsZero() {
					t.Fatal("no slot")
				}
			})
		}
	}
}

// TestCronMatchesRobfigWithoutDST: in zones without DST, slots are exactly
// robfig/cron's (day-of-month/day-of-week OR and AND rules included).
func TestCronMatchesRobfigWithoutDST(t *testing.T) {
	exprs := []string{"* * * * *", "*/7 3-5 * * *", "0 0 1,15 * 1", "0 0 * * 1", "30 4 13 * 5", "0 22 * 2 *",
		"59 23 31 * *", "5 */3 * jan,jul mon-fri", "0 0 29 2 *", "@weekly", "@monthly", "@yearly", "@hourly", "0 12 ? * 0"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, e := range exprs {
		for _, z := range []string{"UTC", "Asia/Tokyo", "Asia/Kolkata"} {
			loc, err := time.LoadLocation(z)
			if err != nil {
				t.Fatal(err)
			}
			p := mustParse(t, catalog.Schedule{Cron: e, TimeZone: z})
			ref, err := cron.ParseStandard(e)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 300; i++ {
				from := time.Unix(rng.Int64N(2<<30)+1.5e9, rng.Int64N(1e9))
				want := ref.Next(from.In(loc)).UTC()
				if got := p.Next(from); !got.Equal(want) {
					t.Fatalf("%s in %s: Next(%s) = %s, robfig says %s", e, z, from.UTC(), got, want)
				}
			}
		}
	}
}

func TestIntervalSlotsOnUnixEpoch(t *testing.T) {
	cases := []struct {
		interval   time.Duration
		from, want string
	}{
		{time.Hour, "2026-05-01T10:20:00Z", "2026-05-01T11:00:00Z"},
		{time.Hour, "2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z"}, // strictly after
		{7 * time.Hour, "1970-01-01T01:00:00Z", "1970-01-01T07:00:00Z"},
		// 2026-05-01T00:00Z is 493776 hours after the epoch; 493780 = 7 * 70540.
		{7 * time.Hour, "2026-05-01T00:00:00Z", "2026-05-01T04:00:00Z"},
		{90 * time.Second, "2026-05-01T00:00:00Z", "2026-05-01T00:01:30Z"},
		{24 * time.Hour, "2026-05-01T10:00:00+02:00", "2026-05-02T00:00:00Z"},
	}
	for _, c := range cases {
		p := mustParse(t, catalog.Schedule{Interval: c.interval})
		from, want := at(t, c.from), at(t, c.want)
		got := p.Next(from)
		if !got.Equal(want) {
			t.Errorf("interval %s: Next(%s) = %s, want %s", c.interval, c.from, got, want)
		}
		if got.Unix()%int64(c.interval.Seconds()) != 0 {
			t.Errorf("interval %s: slot %s is not a multiple of the interval since the Unix epoch", c.interval, got)
		}
		if prev := p.Prev(got.Add(-time.Nanosecond)); got.Sub(prev) != c.interval {
			t.Errorf("interval %s: Prev before %s = %s", c.interval, got, prev)
		}
	}
}

func TestMaxGapAndInterval(t *testing.T) {
	from := at(t, "2026-01-01T00:00:00Z")
	cases := []struct {
		s                 catalog.Schedule
		shortest, longest time.Duration
	}{
		{catalog.Schedule{Interval: 6 * time.Hour}, 6 * time.Hour, 6 * time.Hour},
		{catalog.Schedule{Cron: "0 2 * * 1-5"}, 24 * time.Hour, 72 * time.Hour},
		{catalog.Schedule{Cron: "30 2 * * *"}, 24 * time.Hour, 24 * time.Hour},
		// DST: 23.5h into the spring-forward day (02:30 -> 03:00), 25h out of the fall-back day.
		{catalog.Schedule{Cron: "30 2 * * *", TimeZone: "Europe/Berlin"}, 23*time.Hour + 30*time.Minute, 25 * time.Hour},
		{catalog.Schedule{Cron: "0 8,20 * * *", TimeZone: "America/New_York"}, 11 * time.Hour, 13 * time.Hour},
		{catalog.Schedule{Cron: "*/15 * * * *", TimeZone: "Europe/Berlin"}, 15 * time.Minute, 15 * time.Minute},
		{catalog.Schedule{Cron: "* * * * *", TimeZone: "Australia/Lord_Howe"}, time.Minute, time.Minute},
		{catalog.Schedule{Cron: "0 0 1 * *"}, 28 * 24 * time.Hour, 31 * 24 * time.Hour},
		// The next February 29 after 2028 is 2032: the gap crossing the year's end counts.
		{catalog.Schedule{Cron: "0 0 29 2 *"}, 1461 * 24 * time.Hour, 1461 * 24 * time.Hour},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s%s %s", c.s.Cron, c.s.Interval, c.s.TimeZone), func(t *testing.T) {
			p := mustParse(t, c.s)
			if got := p.Interval(from); got != c.shortest {
				t.Errorf("Interval = %s, want %s", got, c.shortest)
			}
			if got := p.MaxGap(from); got != c.longest {
				t.Errorf("MaxGap = %s, want %s", got, c.longest)
			}
		})
	}
}
