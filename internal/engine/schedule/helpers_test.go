package schedule

import (
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

func mustParse(t testing.TB, s catalog.Schedule) *Plan {
	t.Helper()
	if s.Name == "" {
		s.Name = "nightly"
	}
	p, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%+v): %v", s, err)
	}
	return p
}

// at parses an RFC 3339 time; offsets in the literal make DST cases readable.
func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("bad time %q: %v", s, err)
	}
	return v
}

// slots returns the n slots after from.
func slots(p *Plan, from time.Time, n int) []time.Time {
	var out []time.Time
	for s := from; len(out) < n; {
		s = p.Next(s)
		if s.IsZero() {
			break
		}
		out = append(out, s)
	}
	return out
}
