package schedule

import (
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

func BenchmarkParseDaily(b *testing.B) {
	for b.Loop() {
		if _, err := Parse(catalog.Schedule{Name: "b", Cron: "30 2 * * *", TimeZone: "Europe/Berlin"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNextEveryMinute(b *testing.B) {
	p, _ := Parse(catalog.Schedule{Name: "b", Cron: "* * * * *", TimeZone: "Europe/Berlin"})
	t := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		t = p.Next(t)
	}
}

func BenchmarkNextDaily(b *testing.B) {
	p, _ := Parse(catalog.Schedule{Name: "b", Cron: "30 2 * * *", TimeZone: "Europe/Berlin"})
	t := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		p.Next(t)
	}
}

func BenchmarkNextFixedDense(b *testing.B) {
	p, _ := Parse(catalog.Schedule{Name: "b", Cron: "* 0-22 * * *", TimeZone: "Europe/Berlin"})
	t := time.Date(2026, 5, 1, 22, 30, 0, 0, time.UTC)
	for b.Loop() {
		p.Next(t)
	}
}

func BenchmarkMaxGapEveryMinute(b *testing.B) {
	p, _ := Parse(catalog.Schedule{Name: "b", Cron: "* * * * *", TimeZone: "Europe/Berlin"})
	t := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		p.MaxGap(t)
	}
}
