package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/postgres"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	pgtest "github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
)

// fakeRunner stands in for RunBackup where a test is about scheduling, not
// backups: it records the run like the engine does and captures nothing.
type fakeRunner struct {
	st      engine.Store
	now     func() time.Time
	mu      sync.Mutex
	calls   []engine.RunOptions
	started chan string // run ids, as runs start (buffered)
	// hold, when set, makes the runs of these schedules wait for release
	// or the end of their context.
	hold    map[string]bool
	release chan struct{}
	// gate, when set, makes the next run (one only) wait until it is closed.
	gate chan struct{}
}

func newFakeRunner(st engine.Store, now func() time.Time) *fakeRunner {
	return &fakeRunner{st: st, now: now, started: make(chan string, 1000), hold: map[string]bool{}, release: make(chan struct{})}
}

func (f *fakeRunner) run(ctx context.Context, o engine.RunOptions) (engine.RunReport, error) {
	f.mu.Lock()
	f.calls = append(f.calls, o)
	held := false
	for _, t := range o.Tags {
		name, _, _ := strings.Cut(strings.TrimPrefix(t, "schedule:"), "@")
		held = held || f.hold[name]
	}
	gate := f.gate
	f.gate = nil
	f.mu.Unlock()
	expected := []string{"db", "web"}
	if o.Only != nil {
		expected = o.Only
	}
	r := catalog.Run{ID: o.RunID, Group: o.Group, Master: engine.MasterEngine, Expected: expected, Status: catalog.RunRunning, StartedAt: f.now()}
	if err := f.st.CreateRun(context.WithoutCancel(ctx), r); err != nil {
		return engine.RunReport{}, err
	}
	f.started <- o.RunID
	if gate != nil {
		<-gate
	}
	if held {
		select {
		case <-ctx.Done():
		case <-f.release:
		}
	}
	r.Status, r.FinishedAt = catalog.RunSucceeded, f.now()
	if err := ctx.Err(); err != nil {
		r.Status, r.Error = catalog.RunFailed, "run cancelled: "+err.Error()
	}
	if err := f.st.UpdateRun(context.WithoutCancel(ctx), r); err != nil {
		return engine.RunReport{Run: r}, err
	}
	return engine.RunReport{Run: r}, nil
}

func (f *fakeRunner) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func waitStarted(t *testing.T, f *fakeRunner) string {
	t.Helper()
	select {
	case id := <-f.started:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("no run started within 10s")
		return ""
	}
}

func newTestDaemon(t *testing.T, st engine.Store, clk *fakeClock, id string, reg prometheus.Registerer) (*Daemon, *fakeRunner) {
	t.Helper()
	eng, err := engine.New(engine.Options{Store: st, Dial: engine.HTTPDialer(engine.HTTPDialerOptions{}), Now: clk.Now, Owner: id})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Engine: eng, Store: st, ID: id, Now: clk.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeRunner(st, clk.Now)
	d.SetRunner(f.run)
	t.Cleanup(d.Kill)
	return d, f
}

var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

func putSchedule(t *testing.T, st engine.Store, s catalog.Schedule) {
	t.Helper()
	s.CreatedAt, s.UpdatedAt = t0.Add(-time.Minute), t0.Add(-time.Minute)
	if err := st.PutSchedule(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func slotsOf(t *testing.T, st engine.Store, name string) []catalog.ScheduleSlot {
	t.Helper()
	sl, err := st.ListSlots(context.Background(), name, 0)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

// Two daemons tick on one catalog for two hours of one-minute slots; the
// leader dies half-way. Every slot is handled exactly once: one run per
// run slot, never two, and the follower takes over within TTL + Tick.
func TestTwoDaemonsRunEachSlotExactlyOnce(t *testing.T) {
	testTwoDaemonsExactlyOnce(t, newSchedStore())
}

// The same on a real PostgreSQL catalog.
func TestTwoDaemonsRunEachSlotExactlyOnceOnPostgreSQL(t *testing.T) {
	srv := pgtest.Start(t)
	st, err := postgres.Open(context.Background(), srv.CreateDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatalf("open the PostgreSQL catalog: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	// Runs belong to a group of a cluster in SQL catalogs.
	ctx := context.Background()
	if err := st.PutCluster(ctx, catalog.Cluster{Name: "c", SharedVolume: "/srv", Nodes: []catalog.Node{{Name: "n1", Endpoint: "http://127.0.0.1:1"}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutRepository(ctx, catalog.Repository{Name: "r", URL: t.TempDir(), Password: "long enough password"}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "r", Workloads: []string{"web"}}); err != nil {
		t.Fatal(err)
	}
	testTwoDaemonsExactlyOnce(t, st)
}

func testTwoDaemonsExactlyOnce(t *testing.T, st engine.Store) {
	ctx := context.Background()
	clk := newFakeClock(t0.Add(5 * time.Second))
	putSchedule(t, st, catalog.Schedule{Name: "minutely", Group: "g", Interval: time.Minute, StartWindow: 30 * time.Second})
	d1, f1 := newTestDaemon(t, st, clk, "d1", nil)
	d2, f2 := newTestDaemon(t, st, clk, "d2", nil)
	var d1DeadAt time.Time
	d1.Tick(ctx)               // d1 leads first
	for i := 0; i < 240; i++ { // 2 hours of 30-second steps
		// Both tick at once: claims race in the catalog.
		var wg sync.WaitGroup
		if i < 120 {
			wg.Add(1)
			go func() { defer wg.Done(); d1.Tick(ctx) }()
		} else if d1DeadAt.IsZero() {
			d1DeadAt = clk.Now()
		}
		d2.Tick(ctx)
		wg.Wait()
		d1.WaitIdle()
		d2.WaitIdle()
		if i >= 120 && !d2.Health().Leader && clk.Now().Sub(d1DeadAt) > DefaultLeaderTTL+DefaultTick+30*time.Second {
			t.Fatalf("d2 still not leader %s after d1 died", clk.Now().Sub(d1DeadAt))
		}
		clk.Add(30 * time.Second)
	}
	if !d2.Health().Leader || d1.Health().Leader && d1.Health().Token == d2.Health().Token {
		t.Fatalf("leadership: d1 %+v d2 %+v", d1.Health(), d2.Health())
	}
	slots := slotsOf(t, st, "minutely")
	seen := map[string]bool{}
	runs := 0
	for _, s := range slots {
		switch s.State {
		case catalog.SlotSucceeded:
			runs++
			if s.RunID == "" || seen[s.RunID] {
				t.Fatalf("slot %s: run id %q empty or reused", s.Slot, s.RunID)
			}
			seen[s.RunID] = true
		case catalog.SlotMissed:
			if s.Reason == "" {
				t.Fatalf("missed slot %s without a reason", s.Slot)
			}
		default:
			t.Fatalf("slot %s left %s (%s)", s.Slot, s.State, s.Reason)
		}
	}
	if got := f1.callCount() + f2.callCount(); got != runs {
		t.Fatalf("%d runs for %d run slots", got, runs)
	}
	if f1.callCount() == 0 || f2.callCount() == 0 {
		t.Fatalf("runs by d1 %d, by d2 %d: the leader was not replaced", f1.callCount(), f2.callCount())
	}
	if len(slots) < 115 {
		t.Fatalf("only %d slots over two hours of one-minute slots", len(slots))
	}
}

// Slots the daemon could not start are recorded as missed, with why: no
// daemon was leading, or the group was busy with another schedule's run.
func TestMissedSlotsRecordedWithReasons(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(5 * time.Minute))
	reg := prometheus.NewRegistry()
	d, f := newTestDaemon(t, st, clk, "d1", reg)
	putSchedule(t, st, catalog.Schedule{Name: "a", Group: "g", Interval: time.Hour, StartWindow: 10 * time.Minute, CatchUp: catalog.CatchUpSkip})
	putSchedule(t, st, catalog.Schedule{Name: "b", Group: "g", Interval: time.Hour, StartWindow: 10 * time.Minute, CatchUp: catalog.CatchUpSkip})
	// a's first run lasts until the tick has looked at b too, so b finds
	// the group busy whatever the scheduling.
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	d.Tick(ctx) // 10:05: a runs, b waits for the group
	waitStarted(t, f)
	f.mu.Lock()
	f.hold["a"] = true
	f.mu.Unlock()
	close(gate)
	d.WaitIdle()
	if n := f.callCount(); n != 1 {
		t.Fatalf("%d runs after the first tick, want 1 (one run per group at a time)", n)
	}
	clk.Add(4*time.Hour + 55*time.Minute) // 15:00: 11..14 missed (daemon down)
	d.Tick(ctx)
	waitStarted(t, f)           // a's 15:00 slot (held)
	for i := 0; i < 11*6; i++ { // ticks every 10s: b's start window ends while a runs
		clk.Add(10 * time.Second)
		d.Tick(ctx)
	}
	close(f.release)
	d.WaitIdle()

	for _, name := range []string{"a", "b"} {
		for _, s := range slotsOf(t, st, name) {
			h := s.Slot.Hour()
			switch {
			case h >= 11 && h <= 14:
				if s.State != catalog.SlotMissed || !strings.Contains(s.Reason, "not run: no engine daemon was leading then, or the schedule was paused") {
					t.Errorf("%s %s: %s %q, want missed because no daemon led", name, s.Slot, s.State, s.Reason)
				}
			case (h == 15 || h == 10) && name == "b":
				if s.State != catalog.SlotMissed || !strings.Contains(s.Reason, `group "g" was busy with a run of schedule "a"`) {
					t.Errorf("%s %s: %s %q, want missed because the group was busy", name, s.Slot, s.State, s.Reason)
				}
			case h == 15 && name == "a":
				if s.State != catalog.SlotSucceeded {
					t.Errorf("%s %s: %s %q, want succeeded", name, s.Slot, s.State, s.Reason)
				}
			}
		}
	}
	if n := len(slotsOf(t, st, "a")); n != 6 {
		t.Fatalf("schedule a has %d slots, want 6 (10:00 to 15:00)", n)
	}
	// a: 11..14; b: 10:00 (waited for a's run, then the daemon was down),
	// 11..14, and 15:00 (waited for a's run).
	if got := testutil.ToFloat64(d.metrics.failures.WithLabelValues("g", causeMissed)); got != 10 {
		t.Fatalf("missed-slot failures metric = %v, want 10", got)
	}
}

// A run still going at the end of its completion window is cancelled and
// its slot fails with the reason.
func TestCompletionWindowCancelsRun(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Second))
	reg := prometheus.NewRegistry()
	d, f := newTestDaemon(t, st, clk, "d1", reg)
	f.hold["slow"] = true
	putSchedule(t, st, catalog.Schedule{Name: "slow", Group: "g", Interval: time.Hour, CompletionWindow: 200 * time.Millisecond})
	d.Tick(ctx)
	d.WaitIdle() // returns only because the window cancelled the held run
	s := slotsOf(t, st, "slow")
	if len(s) != 1 || s[0].State != catalog.SlotFailed || !strings.Contains(s[0].Reason, "completion window (200ms)") {
		t.Fatalf("slots %+v, want one failed at the end of its completion window", s)
	}
	if got := testutil.ToFloat64(d.metrics.failures.WithLabelValues("g", causeCompletionWindow)); got != 1 {
		t.Fatalf("completion-window failures = %v, want 1", got)
	}
}

// A stopping daemon lets its run go for the grace period, then cancels it:
// the slot stays running with the run id, leadership is released and the
// daemon record deleted, and the next leader retries the slot at once.
func TestStopHandsTheSlotToTheNextLeader(t *testing.T) {
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Second))
	eng, err := engine.New(engine.Options{Store: st, Dial: engine.HTTPDialer(engine.HTTPDialerOptions{}), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	d1, err := New(Options{Engine: eng, ID: "d1", Now: clk.Now, Tick: 10 * time.Millisecond, LeaderTTL: time.Second, StopGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f1 := newFakeRunner(st, clk.Now)
	f1.hold["s"] = true
	d1.SetRunner(f1.run)
	putSchedule(t, st, catalog.Schedule{Name: "s", Group: "g", Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d1.Run(ctx) }()
	runID := waitStarted(t, f1)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context's end")
	}
	s := slotsOf(t, st, "s")
	if len(s) != 1 || s[0].State != catalog.SlotRunning || s[0].RunID != runID {
		t.Fatalf("slot after stop: %+v, want running with run %s", s, runID)
	}
	if l, err := st.GetLeadership(context.Background(), RoleScheduler); err != nil || l.Holder != "" {
		t.Fatalf("leadership after stop: %+v %v, want released", l, err)
	}
	if ds, _ := st.ListDaemons(context.Background()); len(ds) != 0 {
		t.Fatalf("daemon records after stop: %+v", ds)
	}

	d2, f2 := newTestDaemon(t, st, clk, "d2", nil)
	d2.Tick(context.Background())
	d2.WaitIdle()
	s = slotsOf(t, st, "s")
	if len(s) != 1 || s[0].State != catalog.SlotSucceeded || s[0].Daemon != "d2" || !strings.HasPrefix(s[0].Reason, "retry of run "+runID) {
		t.Fatalf("slot after takeover: %+v, want succeeded by d2 as a retry of %s", s, runID)
	}
	if len(f2.calls) != 1 || !slices.Contains(f2.calls[0].Tags, "retry-of:"+runID) {
		t.Fatalf("d2 runs: %+v, want one retry tagged retry-of:%s", f2.calls, runID)
	}
	old, err := st.GetRun(context.Background(), runID)
	if err != nil || old.Status != catalog.RunFailed {
		t.Fatalf("interrupted run: %+v %v", old, err)
	}
	// No second retry, no new run on later ticks within the hour.
	clk.Add(time.Minute)
	d2.Tick(context.Background())
	d2.WaitIdle()
	if len(f2.calls) != 1 {
		t.Fatalf("d2 made %d runs, want 1", len(f2.calls))
	}
}

// A deposed leader that is still alive (heartbeat fresh, lease lost) keeps
// its run: the new leader neither retries the slot nor runs it again, and
// completes it from the run record once the run ended (the old leader's own
// slot write is refused).
func TestDeposedLeaderAliveRunIsNotDuplicated(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Second))
	d1, f1 := newTestDaemon(t, st, clk, "d1", nil)
	d2, f2 := newTestDaemon(t, st, clk, "d2", nil)
	f1.hold["s"] = true
	putSchedule(t, st, catalog.Schedule{Name: "s", Group: "g", Interval: time.Hour})
	d1.Tick(ctx)
	runID := waitStarted(t, f1)
	// d1 is cut off from leadership but alive: it only heartbeats.
	for i := 0; i < 4; i++ {
		clk.Add(5 * time.Second)
		if err := d1.heartbeat(ctx, clk.Now()); err != nil {
			t.Fatal(err)
		}
		d2.Tick(ctx)
	}
	if !d2.Health().Leader {
		t.Fatal("d2 did not take over an expired lease")
	}
	if n := f2.callCount(); n != 0 {
		t.Fatalf("d2 started %d runs while d1's run was alive", n)
	}
	if s := slotsOf(t, st, "s"); len(s) != 1 || s[0].State != catalog.SlotRunning || s[0].RunID != runID {
		t.Fatalf("slot while d1 runs: %+v", s)
	}
	close(f1.release)
	d1.WaitIdle()
	if s := slotsOf(t, st, "s"); s[0].State != catalog.SlotRunning {
		t.Fatalf("the deposed leader recorded its slot's end: %+v", s)
	}
	d2.Tick(ctx)
	d2.WaitIdle()
	s := slotsOf(t, st, "s")
	if len(s) != 1 || s[0].State != catalog.SlotSucceeded || s[0].RunID != runID || f2.callCount() != 0 {
		t.Fatalf("slot after d1's run ended: %+v (d2 runs %d), want succeeded with d1's run", s, f2.callCount())
	}
}

// A schedule with VerifyEvery verifies its group's repository when due,
// once per period; the result is in Health and the metrics, and a failed
// verification counts as a failure.
func TestScheduledVerification(t *testing.T) {
	ctx := context.Background()
	st := newSchedStore()
	clk := newFakeClock(t0.Add(time.Second))
	reg := prometheus.NewRegistry()
	d, _ := newTestDaemon(t, st, clk, "d1", reg)
	repoDir := filepath.Join(t.TempDir(), "repo")
	if _, err := d.eng.CreateRepository(ctx, catalog.Repository{Name: "r", URL: repoDir, Password: "long enough password"}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "r", Workloads: []string{"web"}}); err != nil {
		t.Fatal(err)
	}
	putSchedule(t, st, catalog.Schedule{Name: "s", Group: "g", Interval: 24 * time.Hour, VerifyEvery: time.Hour})
	d.Tick(ctx)
	d.WaitIdle()
	v, ok := d.Health().Verifications["s"]
	if !ok || !v.OK || v.Repository != "r" || !v.At.Equal(t0.Add(time.Second)) {
		t.Fatalf("verification after the first tick: %+v %v", v, ok)
	}
	if got := testutil.ToFloat64(d.metrics.verifyOK.WithLabelValues("r")); got != 1 {
		t.Fatalf("verify_ok = %v", got)
	}
	clk.Add(30 * time.Minute) // not due again yet
	d.Tick(ctx)
	d.WaitIdle()
	if v2 := d.Health().Verifications["s"]; !v2.At.Equal(v.At) {
		t.Fatalf("verified again before VerifyEvery: %+v", v2)
	}
	// The repository is gone: the next verification fails and says why.
	if err := os.RemoveAll(repoDir); err != nil {
		t.Fatal(err)
	}
	clk.Add(31 * time.Minute)
	d.Tick(ctx)
	d.WaitIdle()
	v = d.Health().Verifications["s"]
	if v.OK || !strings.Contains(v.Summary, `repository "r"`) {
		t.Fatalf("verification of a missing repository: %+v", v)
	}
	if got := testutil.ToFloat64(d.metrics.failures.WithLabelValues("g", causeVerify)); got != 1 {
		t.Fatalf("verify failures = %v, want 1", got)
	}
}
