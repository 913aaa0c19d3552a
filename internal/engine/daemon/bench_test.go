package daemon

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

// BenchmarkSchedulerDueSlots: 1,000 schedules over 100 groups, all due at
// the same instant, run by one daemon through its real loop (timer, wake-ups,
// claims on the memory catalog) with an instant fake runner and 100
// concurrent runs. Each group's ten schedules run one after another, so the
// lag from due to start measures the scheduler plus that queue. Reported:
// p50 and p99 lag, CPU seconds of the process and peak RSS.
//
//	go test -run '^$' -bench BenchmarkSchedulerDueSlots -benchtime 1x ./internal/engine/daemon/
func BenchmarkSchedulerDueSlots(b *testing.B) {
	const schedules, groups = 1000, 100
	for i := 0; i < b.N; i++ {
		st := newSchedStore()
		due := time.Date(2026, 1, 5, 11, 0, 0, 0, time.UTC)
		// The daemon's clock runs at real speed, 200ms before the slot.
		offset := time.Until(due.Add(-200 * time.Millisecond))
		now := func() time.Time { return time.Now().Add(offset) }
		ctx := context.Background()
		for s := 0; s < schedules; s++ {
			if err := st.PutSchedule(ctx, catalog.Schedule{Name: fmt.Sprintf("s%04d", s), Group: fmt.Sprintf("g%03d", s%groups),
				Interval: time.Hour, StartWindow: 10 * time.Minute, CreatedAt: due.Add(-time.Minute), UpdatedAt: due.Add(-time.Minute)}); err != nil {
				b.Fatal(err)
			}
		}
		eng, err := engine.New(engine.Options{Store: st, Dial: engine.HTTPDialer(engine.HTTPDialerOptions{}), Now: now})
		if err != nil {
			b.Fatal(err)
		}
		d, err := New(Options{Engine: eng, ID: "bench", Now: now, MaxConcurrentRuns: groups})
		if err != nil {
			b.Fatal(err)
		}
		var ran atomic.Int64
		d.runFn = func(_ context.Context, o engine.RunOptions) (engine.RunReport, error) {
			ran.Add(1)
			return engine.RunReport{Run: catalog.Run{ID: o.RunID, Group: o.Group, Status: catalog.RunSucceeded}}, nil
		}
		cpu0 := cpuSeconds()
		b.StartTimer()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(runCtx) }()
		deadline := time.Now().Add(2 * time.Minute)
		for ran.Load() < schedules {
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d slots ran within 2m", ran.Load(), schedules)
			}
			time.Sleep(20 * time.Millisecond) // polling a benchmark's progress, not synchronising
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		var lags []time.Duration
		for s := 0; s < schedules; s++ {
			sl, err := st.ListSlots(ctx, fmt.Sprintf("s%04d", s), 0)
			if err != nil || len(sl) != 1 || sl[0].State != catalog.SlotSucceeded {
				b.Fatalf("schedule s%04d: slots %+v %v", s, sl, err)
			}
			lags = append(lags, sl[0].StartedAt.Sub(sl[0].Slot))
		}
		sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
		b.ReportMetric(lags[len(lags)/2].Seconds(), "p50-lag-s")
		b.ReportMetric(lags[len(lags)*99/100].Seconds(), "p99-lag-s")
		b.ReportMetric(cpuSeconds()-cpu0, "cpu-s")
		b.ReportMetric(peakRSSMiB(), "peak-rss-MiB")
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSSMiB reads VmHWM (peak resident set) from /proc (0 elsewhere).
func peakRSSMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
