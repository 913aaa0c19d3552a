package postgresql

import (
	"context"
	"testing"
	"time"
)

// BenchmarkQuiesceThaw measures the stun window the driver adds to a
// backup: CHECKPOINT, freezing every server process, and continuing them,
// after each round of 10,000 new rows (so every checkpoint has work).
//
//	go test ./internal/agent/driver/postgresql -run '^$' -bench QuiesceThaw -benchtime 20x
func BenchmarkQuiesceThaw(b *testing.B) {
	d := newTestDriver(b, initDataDir(b))
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	query(b, d, "CREATE TABLE items (n int)")
	var quiesce, thaw time.Duration
	for b.Loop() {
		b.StopTimer()
		query(b, d, "INSERT INTO items SELECT generate_series(1, 10000)")
		b.StartTimer()
		start := time.Now()
		if err := d.Quiesce(ctx); err != nil {
			b.Fatal(err)
		}
		frozen := time.Now()
		if err := d.Thaw(ctx); err != nil {
			b.Fatal(err)
		}
		quiesce += frozen.Sub(start)
		thaw += time.Since(frozen)
	}
	b.ReportMetric(float64(quiesce.Microseconds())/float64(b.N)/1000, "quiesce-ms/op")
	b.ReportMetric(float64(thaw.Microseconds())/float64(b.N)/1000, "thaw-ms/op")
}
