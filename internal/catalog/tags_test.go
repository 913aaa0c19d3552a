package catalog

import (
	"strings"
	"testing"
	"time"
)

// Tags with a prefix the daemon reserves for scheduled points are refused
// on a schedule; ordinary tags are kept.
func TestScheduleReservedTags(t *testing.T) {
	s := Schedule{Name: "n", Group: "g", Interval: time.Hour, Tags: []string{"daily"}}
	if err := ValidateSchedule(s); err != nil {
		t.Fatalf("ordinary tag refused: %v", err)
	}
	for _, tag := range []string{"schedule:other@1", "retry-of:run-1"} {
		s.Tags = []string{"daily", tag}
		if err := ValidateSchedule(s); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("tag %q: %v, want refused as reserved", tag, err)
		}
	}
}
