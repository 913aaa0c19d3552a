package schedule

import (
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

func TestJitter(t *testing.T) {
	s := catalog.Schedule{Name: "db-hourly", Interval: time.Hour, StartWindow: 30 * time.Minute, Jitter: 10 * time.Minute}
	a, b := mustParse(t, s), mustParse(t, s)
	s.Name = "web-hourly"
	other := mustParse(t, s)
	distinct := map[time.Duration]bool{}
	sameAsOther := 0
	var sum time.Duration
	const n = 10000
	slot := at(t, "2026-01-01T00:00:00Z")
	for i := 0; i < n; i++ {
		slot = a.Next(slot)
		j := a.Jitter(slot)
		if j < 0 || j >= 10*time.Minute {
			t.Fatalf("Jitter(%s) = %s, out of [0, 10m)", slot, j)
		}
		if jb := b.Jitter(slot); jb != j {
			t.Fatalf("two plans of one schedule disagree on %s: %s and %s", slot, j, jb)
		}
		if a.Jitter(slot.In(time.FixedZone("x", 3600))) != j {
			t.Fatalf("jitter depends on the slot's location")
		}
		if other.Jitter(slot) == j {
			sameAsOther++
		}
		distinct[j] = true
		sum += j
	}
	if len(distinct) < n*9/10 {
		t.Errorf("only %d distinct delays over %d slots", len(distinct), n)
	}
	if sameAsOther > 10 {
		t.Errorf("%d slots have the same delay for two schedules", sameAsOther)
	}
	// Spread: the mean of a uniform [0, 10m) is 5m.
	if mean := sum / n; mean < 4*time.Minute+30*time.Second || mean > 5*time.Minute+30*time.Second {
		t.Errorf("mean delay %s, want about 5m", mean)
	}
	none := mustParse(t, catalog.Schedule{Interval: time.Hour})
	if j := none.Jitter(slot); j != 0 {
		t.Errorf("no jitter configured: %s", j)
	}
}
