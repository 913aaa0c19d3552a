package schedule

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name  string
		s     catalog.Schedule
		field string
		says  []string // substrings of the message
	}{
		{"neither cron nor interval", catalog.Schedule{}, FieldCron, []string{"set cron", "or interval"}},
		{"both", catalog.Schedule{Cron: "@daily", Interval: time.Hour}, FieldInterval, []string{"not both"}},
		{"bad cron", catalog.Schedule{Cron: "61 * * * *"}, FieldCron, []string{`"61 * * * *" is not a valid cron expression`, "five fields", "30 2 * * *"}},
		{"six fields", catalog.Schedule{Cron: "0 30 2 * * *"}, FieldCron, []string{"five fields"}},
		{"CRON_TZ prefix", catalog.Schedule{Cron: "CRON_TZ=Europe/Berlin 30 2 * * *"}, FieldCron, []string{"remove the CRON_TZ=/TZ= prefix", "set time_zone", "Europe/Berlin"}},
		{"TZ prefix without a space", catalog.Schedule{Cron: "TZ=UTC"}, FieldCron, []string{"time_zone"}},
		{"@every", catalog.Schedule{Cron: "@every 5m"}, FieldCron, []string{"set interval"}},
		{"never matches", catalog.Schedule{Cron: "0 0 30 2 *"}, FieldCron, []string{"never matches"}},
		{"unknown zone", catalog.Schedule{Cron: "@daily", TimeZone: "Europe/Berlln"}, FieldTimeZone, []string{`"Europe/Berlln" is not a known IANA time zone`, `"Europe/Berlin"`}},
		{"Local zone", catalog.Schedule{Cron: "@daily", TimeZone: "Local"}, FieldTimeZone, []string{"each machine"}},
		{"zone with interval", catalog.Schedule{Interval: time.Hour, TimeZone: "Europe/Berlin"}, FieldTimeZone, []string{"cron schedules only", "Unix epoch"}},
		{"interval too short", catalog.Schedule{Interval: 30 * time.Second}, FieldInterval, []string{"minimum of 1m0s"}},
		{"interval negative", catalog.Schedule{Interval: -time.Hour}, FieldInterval, []string{"minimum"}},
		{"interval fraction of a second", catalog.Schedule{Interval: time.Minute + time.Millisecond}, FieldInterval, []string{"whole number of seconds", "1m0s"}},
		{"start window over the gap", catalog.Schedule{Interval: time.Hour, StartWindow: 2 * time.Hour}, FieldStartWindow, []string{"longer than the shortest gap between slots (1h0m0s)", "overlap", "at most 1h0m0s"}},
		{"start window over a cron gap", catalog.Schedule{Cron: "0 9,12 * * *", StartWindow: 4 * time.Hour}, FieldStartWindow, []string{"(3h0m0s)"}},
		{"start window over the overnight gap", catalog.Schedule{Cron: "0 1,23 * * *", StartWindow: 3 * time.Hour}, FieldStartWindow, []string{"(2h0m0s)"}},
		{"start window negative", catalog.Schedule{Interval: time.Hour, StartWindow: -time.Minute}, FieldStartWindow, []string{"negative"}},
		{"jitter negative", catalog.Schedule{Interval: time.Hour, Jitter: -time.Second}, FieldJitter, []string{"negative"}},
		{"jitter not below the start window", catalog.Schedule{Interval: time.Hour, StartWindow: 10 * time.Minute, Jitter: 10 * time.Minute}, FieldJitter, []string{"not shorter than the start window (10m0s", "less than 10m0s"}},
		{"jitter not below the default start window of a short gap", catalog.Schedule{Interval: 5 * time.Minute, Jitter: 5 * time.Minute}, FieldJitter, []string{"start window (5m0s"}},
		{"completion window negative", catalog.Schedule{Interval: time.Hour, CompletionWindow: -time.Hour}, FieldCompletionWindow, []string{"negative"}},
		{"catch-up unknown", catalog.Schedule{Interval: time.Hour, CatchUp: "all"}, FieldCatchUp, []string{`"all"`, `"latest"`, `"skip"`}},
		{"catch-up checked even when cron is wrong", catalog.Schedule{Cron: "nope", CatchUp: "all"}, FieldCatchUp, []string{`"all"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.s.Name = "s1"
			errs := Validate(c.s)
			var found *FieldError
			for _, e := range errs {
				if e.Field == c.field {
					found = e
				}
			}
			if found == nil {
				t.Fatalf("Validate = %v, want an error on %s", errs, c.field)
			}
			for _, w := range c.says {
				if !strings.Contains(found.Message, w) {
					t.Errorf("message %q does not say %q", found.Message, w)
				}
			}
			_, err := Parse(c.s)
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), `schedule "s1"`) || !strings.Contains(err.Error(), found.Error()) {
				t.Errorf("Parse error %q does not name the schedule and wrap %q", err, found)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, s := range []catalog.Schedule{
		{Cron: "30 2 * * *", TimeZone: "Europe/Berlin", StartWindow: 24 * time.Hour, Jitter: 23 * time.Hour},
		{Cron: "  @hourly  ", TimeZone: "UTC"},
		{Cron: "0 12 ? * 0"},
		{Cron: "0 0 29 2 *", TimeZone: "Etc/UTC"},
		{Interval: time.Minute, TimeZone: "UTC"},
		{Interval: 90 * time.Second, StartWindow: 90 * time.Second, Jitter: 89 * time.Second, CompletionWindow: time.Hour, CatchUp: catalog.CatchUpSkip},
	} {
		if errs := Validate(s); errs != nil {
			t.Errorf("Validate(%+v) = %v", s, errs)
		}
	}
}

func TestDefaults(t *testing.T) {
	p := mustParse(t, catalog.Schedule{Cron: "@daily"})
	if p.StartWindow() != DefaultStartWindow || p.CatchUp() != catalog.CatchUpLatest || p.CompletionWindow() != 0 || !p.CompletionDeadline(time.Now()).IsZero() {
		t.Errorf("defaults: start window %s, catch-up %q, completion %s", p.StartWindow(), p.CatchUp(), p.CompletionWindow())
	}
	// A default start window never overlaps the next slot.
	if p := mustParse(t, catalog.Schedule{Cron: "*/10 * * * *"}); p.StartWindow() != 10*time.Minute {
		t.Errorf("default start window of a 10-minute cron = %s", p.StartWindow())
	}
	p = mustParse(t, catalog.Schedule{Interval: time.Hour, CompletionWindow: 20 * time.Minute})
	start := at(t, "2026-05-01T10:00:05Z")
	if got := p.CompletionDeadline(start); !got.Equal(at(t, "2026-05-01T10:20:05Z")) {
		t.Errorf("CompletionDeadline = %s", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range []string{"30 2 * * *", "@daily", "TZ=", "CRON_TZ=Europe/Berlin", "*/0 * * * *", "0-59/100 * * * *", "@every 1s", "1-2-3 * * * *", "? ? ? ? ?", "0 0 31 2 1"} {
		f.Add(c, "Europe/Berlin", int64(0), int64(time.Hour), int64(0))
	}
	f.Add("", "", int64(time.Minute), int64(0), int64(time.Second))
	f.Fuzz(func(t *testing.T, expr, zone string, interval, window, jitter int64) {
		guard := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("slow input: %q %q %d %d %d", expr, zone, interval, window, jitter)) })
		defer guard.Stop()
		s := catalog.Schedule{Name: "f", Cron: expr, TimeZone: zone, Interval: time.Duration(interval), StartWindow: time.Duration(window), Jitter: time.Duration(jitter)}
		p, err := Parse(s)
		if (err == nil) != (len(Validate(s)) == 0) {
			t.Fatalf("Parse and Validate disagree: %v", err)
		}
		if err != nil {
			return
		}
		now := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
		n := p.Next(now)
		if !n.After(now) {
			t.Fatalf("Next(%s) = %s", now, n)
		}
		if pr := p.Prev(now); pr.IsZero() || pr.After(now) || !p.Next(pr).Equal(n) && !p.Next(pr).After(now) {
			t.Fatalf("Prev(%s) = %s, Next = %s", now, pr, n)
		}
		if j := p.Jitter(n); j < 0 || (p.jitter > 0 && j >= p.jitter) || j >= p.StartWindow() && p.jitter > 0 {
			t.Fatalf("jitter %s", j)
		}
		d := p.Decide(now, now.Add(-48*time.Hour))
		if len(d.Missed) > MaxMissedRecorded {
			t.Fatalf("%d missed", len(d.Missed))
		}
	})
}
