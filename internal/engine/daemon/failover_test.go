package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/schedule"
)

// pollUntil polls cond until it holds or 10s passed.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(time.Millisecond) // polling, not synchronisation
	}
}

// A daemon stopping gracefully keeps heartbeating and renewing its lease
// while its run finishes, however long past LeaderTTL and the abandoned
// bound: the other daemon neither leads nor retries the run, and the
// stopping daemon records its slot's end itself.
func TestGracefulStopKeepsLeaseAndHeartbeat(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Second))
	eng, err := engine.New(engine.Options{Store: st, Dial: engine.HTTPDialer(engine.HTTPDialerOptions{}), Now: clk.Now, Owner: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	ttl := 3 * time.Second
	d1, err := New(Options{Engine: eng, ID: "d1", Now: clk.Now, Tick: 5 * time.Millisecond, LeaderTTL: ttl, StopGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f1 := newFakeRunner(st, clk.Now)
	f1.hold["s"] = true
	d1.SetRunner(f1.run)
	d2, f2 := newTestDaemon(t, st, clk, "d2", nil)
	putSchedule(t, st, catalog.Schedule{Name: "s", Group: "g", Interval: time.Hour, StartWindow: time.Hour})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d1.Run(runCtx) }()
	runID := waitStarted(t, f1)
	cancel() // graceful stop: the run is held past LeaderTTL and AbandonedAfter
	end := clk.Now().Add(engine.AbandonedAfter + 3*ttl)
	for clk.Now().Before(end) {
		clk.Add(ttl / 3)
		now := clk.Now()
		pollUntil(t, "d1 heartbeats and renews while stopping", func() bool {
			ds, err := st.ListDaemons(ctx)
			fresh := false
			for _, x := range ds {
				fresh = fresh || x.ID == "d1" && x.SeenAt.Equal(now)
			}
			if err != nil || !fresh {
				return false
			}
			l, err := st.GetLeadership(ctx, RoleScheduler)
			return err == nil && l.Holder == "d1" && l.ExpiresAt.Equal(now.Add(ttl))
		})
		d2.Tick(ctx)
		if d2.Health().Leader || f2.callCount() != 0 {
			t.Fatalf("d2 leads (%v) or ran %d runs while d1 was finishing its run", d2.Health().Leader, f2.callCount())
		}
	}
	close(f1.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its run's end")
	}
	s := slotsOf(t, st, "s")
	if len(s) != 1 || s[0].State != catalog.SlotSucceeded || s[0].RunID != runID || s[0].Daemon != "d1" {
		t.Fatalf("slot: %+v, want succeeded by d1's run %s", s, runID)
	}
}

// A run whose daemon record is stale but whose own heartbeat is fresh is
// alive: it is not retried. Once its heartbeat is AbandonedAfter old the
// run is taken from its owner (ClaimRun), so the owner's next heartbeat is
// refused and it stops.
func TestFreshRunHeartbeatIsNotRetried(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Second))
	d1, f1 := newTestDaemon(t, st, clk, "d1", nil)
	d2, f2 := newTestDaemon(t, st, clk, "d2", nil)
	f1.hold["s"] = true
	putSchedule(t, st, catalog.Schedule{Name: "s", Group: "g", Interval: time.Hour, StartWindow: time.Hour})
	d1.Tick(ctx)
	runID := waitStarted(t, f1)
	beat := func() error {
		_, err := st.ClaimRun(ctx, runID, "", "", time.Time{}, clk.Now())
		return err
	}
	// d1's daemon loop is stuck (no heartbeat, no renewal); its run's
	// engine still refreshes the run's heartbeat.
	for i := 0; i < 12; i++ {
		clk.Add(5 * time.Second)
		if err := beat(); err != nil {
			t.Fatal(err)
		}
		d2.Tick(ctx)
	}
	if !d2.Health().Leader {
		t.Fatal("d2 did not take over an expired lease")
	}
	if n := f2.callCount(); n != 0 {
		t.Fatalf("d2 retried a run whose heartbeat was fresh (%d runs)", n)
	}
	if s := slotsOf(t, st, "s"); s[0].State != catalog.SlotRunning || s[0].RunID != runID {
		t.Fatalf("slot while the run beats: %+v", s)
	}
	// The run's engine stops beating: after AbandonedAfter it is taken over.
	clk.Add(engine.AbandonedAfter + time.Second)
	d2.Tick(ctx)
	d2.WaitIdle()
	if n := f2.callCount(); n != 1 {
		t.Fatalf("d2 made %d runs, want one retry", n)
	}
	old, err := st.GetRun(ctx, runID)
	if err != nil || old.Status != catalog.RunFailed || old.Owner != "d2" {
		t.Fatalf("interrupted run: %+v %v, want failed and owned by d2", old, err)
	}
	if err := beat(); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("the old owner's heartbeat after the take-over: %v, want a conflict (it stops)", err)
	}
	close(f1.release)
}

// Recover runs in the background: one that hangs (a node that does not
// answer) holds up neither the tick nor the lease renewal.
func TestRecoverDoesNotBlockTheTick(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Second))
	eng, err := engine.New(engine.Options{Store: st, Dial: engine.HTTPDialer(engine.HTTPDialerOptions{}), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	unblock := make(chan struct{})
	calls := make(chan struct{}, 10)
	d, err := New(Options{Engine: eng, ID: "d1", Now: clk.Now, Recover: func(ctx context.Context) error {
		calls <- struct{}{}
		select {
		case <-unblock:
		case <-ctx.Done():
		}
		return errors.New("node n3 did not answer")
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Kill)
	ticked := make(chan struct{})
	go func() {
		d.Tick(ctx)
		clk.Add(DefaultLeaderTTL / 2)
		d.Tick(ctx) // renews
		close(ticked)
	}()
	select {
	case <-ticked:
	case <-time.After(10 * time.Second):
		close(unblock)
		t.Fatal("a hanging Recover held up the tick")
	}
	<-calls
	l, err := st.GetLeadership(ctx, RoleScheduler)
	if err != nil || !l.ExpiresAt.Equal(clk.Now().Add(DefaultLeaderTTL)) {
		t.Fatalf("leadership: %+v %v, want renewed at %s", l, err, clk.Now())
	}
	close(unblock)
	d.WaitIdle()
	d.Tick(ctx)
	if h := d.Health(); !strings.Contains(h.LastError, "node n3 did not answer") {
		t.Fatalf("health after a failed Recover: %q, want its error", h.LastError)
	}
}

// A new leader keeps one run per group: while a run of the group left by
// the previous leader is still going, another schedule of the group waits.
func TestOneRunPerGroupAcrossFailover(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Second))
	d1, f1 := newTestDaemon(t, st, clk, "d1", nil)
	d2, f2 := newTestDaemon(t, st, clk, "d2", nil)
	f1.hold["s"] = true
	putSchedule(t, st, catalog.Schedule{Name: "s", Group: "g", Interval: time.Hour, StartWindow: time.Hour})
	d1.Tick(ctx)
	runID := waitStarted(t, f1)
	putSchedule(t, st, catalog.Schedule{Name: "s2", Group: "g", Interval: time.Hour, StartWindow: time.Hour})
	for i := 0; i < 5; i++ { // d1's loop is stuck; its run beats
		clk.Add(5 * time.Second)
		if _, err := st.ClaimRun(ctx, runID, "", "", time.Time{}, clk.Now()); err != nil {
			t.Fatal(err)
		}
		d2.Tick(ctx)
	}
	if !d2.Health().Leader {
		t.Fatal("d2 did not take over an expired lease")
	}
	if s := slotsOf(t, st, "s2"); len(s) != 0 || d2.Health().Running != 0 {
		t.Fatalf("d2 started a run in group g (slots of s2: %+v) while d1's run of it was going", s)
	}
	close(f1.release)
	d1.WaitIdle()
	d2.Tick(ctx) // completes s's slot from its run, then starts s2
	d2.WaitIdle()
	if n := f2.callCount(); n != 1 {
		t.Fatalf("d2 made %d runs after the group was free, want 1 (s2)", n)
	}
}

// A take-over that finds the queue full changes nothing and retries the
// slot once the queue frees up (it is not completed as failed).
func TestTakeOverQueuedIsRetriedLater(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Second))
	d1, f1 := newTestDaemon(t, st, clk, "d1", nil)
	eng, err := engine.New(engine.Options{Store: st, Dial: engine.HTTPDialer(engine.HTTPDialerOptions{}), Now: clk.Now, Owner: "d2"})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := New(Options{Engine: eng, ID: "d2", Now: clk.Now, MaxConcurrentRuns: 1})
	if err != nil {
		t.Fatal(err)
	}
	f2 := newFakeRunner(st, clk.Now)
	f2.hold["t"] = true
	d2.SetRunner(f2.run)
	t.Cleanup(d2.Kill)
	f1.hold["s"] = true
	putSchedule(t, st, catalog.Schedule{Name: "s", Group: "g", Interval: time.Hour, StartWindow: time.Hour})
	d1.Tick(ctx)
	runID := waitStarted(t, f1)
	putSchedule(t, st, catalog.Schedule{Name: "t", Group: "g2", Interval: time.Hour, StartWindow: time.Hour})
	// d1 dies; d2 leads and starts t (its only run slot).
	clk.Add(DefaultLeaderTTL + DefaultTick)
	d2.Tick(ctx)
	waitStarted(t, f2)
	// s's run is abandoned now, but the queue is full.
	clk.Add(engine.AbandonedAfter)
	d2.Tick(ctx)
	if r, err := st.GetRun(ctx, runID); err != nil || r.Status != catalog.RunRunning {
		t.Fatalf("interrupted run changed while its retry was queued: %+v %v", r, err)
	}
	close(f2.release)
	pollUntil(t, "t's run ends", func() bool { return d2.Health().Running == 0 })
	d2.Tick(ctx)
	d2.WaitIdle()
	var s catalog.ScheduleSlot
	for _, x := range slotsOf(t, st, "s") {
		s = x
	}
	if s.State != catalog.SlotSucceeded || !strings.HasPrefix(s.Reason, "retry of run "+runID) {
		t.Fatalf("slot of s: %+v, want succeeded as a retry of %s", s, runID)
	}
	d1.Kill()
}

// Slots that passed while the leader saw the schedule paused are recorded
// missed because it was paused, not because no daemon led.
func TestMissedWhilePausedSaysPaused(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Minute))
	d, _ := newTestDaemon(t, st, clk, "d1", nil)
	s := catalog.Schedule{Name: "p", Group: "g", Interval: time.Hour, StartWindow: 10 * time.Minute, CatchUp: catalog.CatchUpSkip, Paused: true}
	putSchedule(t, st, s)
	for i := 0; i < 3*6; i++ { // 10:01 to 13:01, paused
		d.Tick(ctx)
		clk.Add(10 * time.Minute)
	}
	s.Paused = false
	s.CreatedAt, s.UpdatedAt = t0.Add(-time.Minute), clk.Now()
	if err := st.PutSchedule(ctx, s); err != nil {
		t.Fatal(err)
	}
	d.Tick(ctx)
	d.WaitIdle()
	missed := 0
	for _, sl := range slotsOf(t, st, "p") {
		if sl.State == catalog.SlotMissed {
			missed++
			if !strings.Contains(sl.Reason, "not run: the schedule was paused") {
				t.Errorf("slot %s: reason %q, want that the schedule was paused", sl.Slot, sl.Reason)
			}
		}
	}
	if missed == 0 {
		t.Fatal("no missed slot recorded after the pause")
	}
}

// A deposed leader that does not know it yet (its renewals stopped) applies
// no retention after its run: the catalog says another daemon leads.
func TestDeposedLeaderAppliesNoRetention(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Second))
	var logs syncBuffer
	eng, err := engine.New(engine.Options{Store: st, Dial: engine.HTTPDialer(engine.HTTPDialerOptions{}), Now: clk.Now, Owner: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	d1, err := New(Options{Engine: eng, ID: "d1", Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d1.Kill)
	f1 := newFakeRunner(st, clk.Now)
	f1.hold["s"] = true
	d1.SetRunner(func(ctx context.Context, o engine.RunOptions) (engine.RunReport, error) {
		rep, err := f1.run(ctx, o)
		rep.Steps = []catalog.Step{{RunID: o.RunID, Workload: "db", Outcome: catalog.StepSucceeded}}
		return rep, err
	})
	d2, _ := newTestDaemon(t, st, clk, "d2", nil)
	putSchedule(t, st, catalog.Schedule{Name: "s", Group: "g", Interval: time.Hour, StartWindow: time.Hour})
	d1.Tick(ctx)
	waitStarted(t, f1)
	clk.Add(DefaultLeaderTTL + DefaultTick)
	d2.Tick(ctx)
	if !d2.Health().Leader || !d1.Health().Leader {
		t.Fatalf("want d2 leading in the catalog while d1 still believes it leads: d1 %v d2 %v", d1.Health().Leader, d2.Health().Leader)
	}
	close(f1.release)
	d1.WaitIdle()
	out := logs.String()
	if !strings.Contains(out, "retention skipped") || strings.Contains(out, "retention not applied") {
		t.Fatalf("deposed leader's log:\n%s\nwant retention skipped, not attempted", out)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A schedule created again under a deleted one's name tags its points
// differently, so its retention tier never counts the old one's points.
func TestScheduleTagIncludesCreation(t *testing.T) {
	old := catalog.Schedule{Name: "n", CreatedAt: t0}
	renewed := catalog.Schedule{Name: "n", CreatedAt: t0.Add(time.Hour)}
	if scheduleTag(old) == scheduleTag(renewed) {
		t.Fatalf("two schedules named n created at different times share the tag %q", scheduleTag(old))
	}
	if !strings.HasPrefix(scheduleTag(old), "schedule:n@") {
		t.Fatalf("tag %q", scheduleTag(old))
	}
}

// A daemon that loses leadership stops exporting the leader's gauges (last
// success, RPO met, token): the new leader's are the only ones.
func TestFollowerDropsLeaderGauges(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Second))
	reg := prometheus.NewRegistry()
	d1, _ := newTestDaemon(t, st, clk, "d1", reg)
	d2, _ := newTestDaemon(t, st, clk, "d2", nil)
	d1.Tick(ctx)
	d1.noteSuccess("g", "db", clk.Now())
	d1.metrics.setRPO("g", time.Hour)
	d1.updateRPO(ctx, clk.Now())
	if n := testutil.CollectAndCount(d1.metrics.rpoMet); n != 1 {
		t.Fatalf("%d RPO series while leading, want 1", n)
	}
	clk.Add(DefaultLeaderTTL + DefaultTick)
	d2.Tick(ctx)
	d1.Tick(ctx) // its renewal is refused: follower
	if d1.Health().Leader {
		t.Fatal("d1 still leads")
	}
	if n := testutil.CollectAndCount(d1.metrics.rpoMet) + testutil.CollectAndCount(d1.metrics.lastSuccess); n != 0 {
		t.Fatalf("follower exports %d leader-only series, want 0", n)
	}
	if v := testutil.ToFloat64(d1.metrics.leaderToken); v != 0 {
		t.Fatalf("follower's token gauge = %v, want 0", v)
	}
}

// A slot is retried only within the planner's start window (slot + start
// window, jitter included in it), not start window after the jitter.
func TestRetryWindowIsThePlanners(t *testing.T) {
	st := newSchedStore()
	clk := newFakeClock(t0)
	d, _ := newTestDaemon(t, st, clk, "d1", nil)
	s := catalog.Schedule{Name: "j", Group: "g", Interval: time.Hour, StartWindow: 20 * time.Minute, Jitter: 10 * time.Minute, CatchUp: catalog.CatchUpSkip}
	p, err := schedule.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	slot := t0
	for p.Jitter(slot) == 0 {
		slot = slot.Add(time.Hour)
	}
	_, closes := p.Window(slot)
	sl := catalog.ScheduleSlot{Schedule: "j", Slot: slot}
	if why := d.noRetry(context.Background(), s, sl, closes.Add(-time.Second)); why != "" {
		t.Fatalf("just before the window closes: not retried (%s)", why)
	}
	if why := d.noRetry(context.Background(), s, sl, closes); why == "" {
		t.Fatalf("at %s (window closed at %s, jitter %s): retried", closes, closes, p.Jitter(slot))
	}
}
