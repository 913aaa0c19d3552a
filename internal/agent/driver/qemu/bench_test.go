package qemu_test

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPauseResume measures the stun window the driver adds to a VM
// backup: QMP stop (vCPUs stopped, disk I/O drained and flushed) and cont.
//
//	go test ./internal/agent/driver/qemu -run '^$' -bench PauseResume -benchtime 50x
func BenchmarkPauseResume(b *testing.B) {
	d := NewTestVM(b)
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	var stop, cont time.Duration
	for b.Loop() {
		start := time.Now()
		if err := d.Quiesce(ctx); err != nil {
			b.Fatal(err)
		}
		paused := time.Now()
		if err := d.Thaw(ctx); err != nil {
			b.Fatal(err)
		}
		stop += paused.Sub(start)
		cont += time.Since(paused)
	}
	b.ReportMetric(float64(stop.Microseconds())/float64(b.N)/1000, "quiesce-ms/op")
	b.ReportMetric(float64(cont.Microseconds())/float64(b.N)/1000, "thaw-ms/op")
}
