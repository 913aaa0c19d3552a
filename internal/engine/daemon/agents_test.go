package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/postgres"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	pgtest "github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
)

// agentFixture is a real two-node cluster (web active on node-1, db on
// node-2), a repository and a group "g" of both, in one catalog.
type agentFixture struct {
	c     *agenttest.Cluster
	st    engine.Store
	token string
}

func startAgents(t *testing.T) *agentFixture { return startAgentsOn(t, newSchedStore()) }

// startAgentsOn is startAgents on the given catalog.
func startAgentsOn(t *testing.T, st engine.Store) *agentFixture {
	t.Helper()
	repoDir := filepath.Join(t.TempDir(), "repo")
	const password = "long enough password"
	c := agenttest.Start(t, agenttest.Options{Nodes: 2, Workloads: []string{"web", "db"},
		Repositories: []agenttest.Repository{{Name: "r", URL: repoDir, Password: password}}})
	for _, w := range []string{"web", "db"} {
		if err := os.WriteFile(filepath.Join(c.WorkloadDataDir(w), "data"), []byte(w+" data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.StartWorkload(t, "node-1", "web")
	c.StartWorkload(t, "node-2", "db")
	fx := &agentFixture{c: c, st: st, token: c.Token}
	ctx := context.Background()
	eng := fx.engine(t, "setup")
	if _, err := eng.RegisterCluster(ctx, engine.ClusterSpec{Name: "c", SharedVolume: c.SharedVolume, Nodes: c.Endpoints(),
		MasterPolicy: engine.MasterFixed, MasterNode: "node-1", JoinOrder: engine.JoinParallel}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.CreateRepository(ctx, catalog.Repository{Name: "r", URL: repoDir, Password: password}); err != nil {
		t.Fatal(err)
	}
	if err := eng.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "r", Workloads: []string{"web", "db"},
		Consistency: "application", NodeOrder: engine.OrderMasterLast, ExtractAt: engine.ExtractAtBackup, RPO: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	return fx
}

// engine returns an engine on the fixture's catalog (each daemon has its own).
func (fx *agentFixture) engine(t *testing.T, owner string) *engine.Engine {
	return fx.engineOn(t, fx.st, owner, nil)
}

// engineOn returns an engine on st with clock now (nil: time.Now).
func (fx *agentFixture) engineOn(t *testing.T, st engine.Store, owner string, now func() time.Time) *engine.Engine {
	t.Helper()
	eng, err := engine.New(engine.Options{Store: st, Owner: owner, Now: now,
		Dial: engine.HTTPDialer(engine.HTTPDialerOptions{Token: fx.token, RequestTimeout: time.Minute}),
		Wait: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func (fx *agentFixture) points(t *testing.T) map[string][]catalog.RecoveryPoint {
	t.Helper()
	ps, err := fx.st.RecoveryPoints(context.Background(), catalog.RecoveryPointFilter{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]catalog.RecoveryPoint{}
	for _, p := range ps {
		out[p.Workload] = append(out[p.Workload], p)
	}
	return out
}

func (fx *agentFixture) snapshots(t *testing.T, eng *engine.Engine, tags ...string) []repository.Snapshot {
	t.Helper()
	repo, closeRepo, err := eng.OpenRepository(context.Background(), "r")
	if err != nil {
		t.Fatal(err)
	}
	defer closeRepo()
	snaps, err := repo.Snapshots(context.Background(), repository.SnapshotFilter{Group: "g", Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	return snaps
}

// A due schedule runs once through the engine on real agents, records its
// recovery points with the schedule's tags, applies its retention tier
// (only to its own points) and updates the metrics.
func TestScheduledRunOnRealAgents(t *testing.T) {
	fx := startAgents(t)
	ctx := context.Background()
	clk := newFakeClock(t0.Add(30 * time.Second))
	reg := prometheus.NewRegistry()
	eng := fx.engine(t, "d1")
	d, err := New(Options{Engine: eng, ID: "d1", Now: clk.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Kill)
	putSchedule(t, fx.st, catalog.Schedule{Name: "hourly", Group: "g", Interval: time.Hour, StartWindow: 10 * time.Minute,
		Tags: []string{"hourly"}, Retention: catalog.Retention{KeepLast: 1}})

	d.Tick(ctx)
	d.WaitIdle()
	slots := slotsOf(t, fx.st, "hourly")
	if len(slots) != 1 || slots[0].State != catalog.SlotSucceeded || slots[0].RunID == "" || !slots[0].Slot.Equal(t0) {
		t.Fatalf("slots after the first tick: %+v, want 10:00 succeeded with its run", slots)
	}
	first := slots[0].RunID
	run, err := fx.st.GetRun(ctx, first)
	if err != nil || run.Status != catalog.RunSucceeded {
		t.Fatalf("run %s: %+v %v", first, run, err)
	}
	pts := fx.points(t)
	if len(pts["web"]) != 1 || len(pts["db"]) != 1 || pts["web"][0].RunID != first {
		t.Fatalf("recovery points after one slot: %+v", pts)
	}
	if n := len(fx.snapshots(t, eng, "hourly", schedTag(t, fx.st, "hourly"))); n != 2 {
		t.Fatalf("%d snapshots carry the schedule's tags, want 2", n)
	}
	// The same slot is not run again.
	d.Tick(ctx)
	d.WaitIdle()
	if runs, _ := fx.st.ListRuns(ctx, "g", 0); len(runs) != 1 {
		t.Fatalf("%d runs after a second tick in the same slot, want 1", len(runs))
	}

	// A manual run's points are not the tier's to forget.
	if rep, err := eng.RunBackup(ctx, engine.RunOptions{Group: "g"}); err != nil || rep.Run.Status != catalog.RunSucceeded {
		t.Fatalf("manual run: %v %+v", err, rep.Run)
	}
	clk.Add(time.Hour)
	d.Tick(ctx)
	d.WaitIdle()
	slots = slotsOf(t, fx.st, "hourly")
	if len(slots) != 2 || slots[0].State != catalog.SlotSucceeded {
		t.Fatalf("slots after the second hour: %+v", slots)
	}
	second := slots[0].RunID
	tagged := fx.snapshots(t, eng, schedTag(t, fx.st, "hourly"))
	if len(tagged) != 2 || tagged[0].RunID != second || tagged[1].RunID != second {
		t.Fatalf("tagged snapshots after retention (keep last 1): %d, want the 2 of run %s", len(tagged), second)
	}
	if all := fx.snapshots(t, eng); len(all) != 4 {
		t.Fatalf("%d snapshots in the group, want 4 (2 manual, 2 of the newest slot)", len(all))
	}
	pts = fx.points(t)
	for _, w := range []string{"web", "db"} {
		if len(pts[w]) != 2 || slices.ContainsFunc(pts[w], func(p catalog.RecoveryPoint) bool { return p.RunID == first }) {
			t.Fatalf("index of %s after retention: %+v, want the manual and the newest scheduled point", w, pts[w])
		}
	}

	// Metrics, read back from the registry.
	if v := testutil.ToFloat64(d.metrics.lastSuccess.WithLabelValues("g", "web")); v < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Fatalf("last success of web = %v", v)
	}
	if v := testutil.ToFloat64(d.metrics.rpoMet.WithLabelValues("g", "db")); v != 1 {
		t.Fatalf("RPO met for db = %v, want 1", v)
	}
	if v := testutil.ToFloat64(d.metrics.leader); v != 1 {
		t.Fatalf("leader gauge = %v", v)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	var bytesRead float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				counts[mf.GetName()] += h.GetSampleCount()
			}
			if mf.GetName() == "clusterguard_backup_read_bytes_total" {
				bytesRead += m.GetCounter().GetValue()
			}
		}
	}
	if counts["clusterguard_backup_run_duration_seconds"] != 2 || counts["clusterguard_schedule_lag_seconds"] != 2 || counts["clusterguard_backup_step_duration_seconds"] != 4 {
		t.Fatalf("histogram sample counts: %v, want 2 runs, 2 lags, 4 steps", counts)
	}
	if bytesRead <= 0 {
		t.Fatal("no bytes read counted")
	}
}

// The leader dies mid-run after one node (its heartbeat and lease stop);
// the other daemon takes over within the lease TTL, marks the run failed
// and retries only the workload not captured: exactly one recovery point
// per workload for the slot. The dead daemon's run, cancelled later,
// writes nothing.
func TestLeaderKilledMidRunSlotRetriedOnce(t *testing.T) {
	testLeaderKilledMidRun(t, startAgents(t))
}

// The same on a real PostgreSQL catalog shared by both daemons: leadership,
// fenced slot claims and the take-over go through SQL transactions.
func TestLeaderKilledMidRunOnPostgreSQL(t *testing.T) {
	srv := pgtest.Start(t)
	st, err := postgres.Open(context.Background(), srv.CreateDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatalf("open the PostgreSQL catalog: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	testLeaderKilledMidRun(t, startAgentsOn(t, st))
}

func testLeaderKilledMidRun(t *testing.T, fx *agentFixture) {
	ctx := context.Background()
	clk := newFakeClock(t0.Add(30 * time.Second))
	// d1's engine stops refreshing its run's heartbeat when d1 "dies".
	dead := &deadStore{Store: fx.st}
	e1, e2 := fx.engineOn(t, dead, "d1", clk.Now), fx.engineOn(t, fx.st, "d2", clk.Now)
	d1, err := New(Options{Engine: e1, ID: "d1", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := New(Options{Engine: e2, ID: "d2", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d1.Kill)
	t.Cleanup(d2.Kill)
	afterFirstNode := make(chan string, 1)
	d1.SetRunner(func(ctx context.Context, o engine.RunOptions) (engine.RunReport, error) {
		o.Hooks.AfterNode = func(ctx context.Context, node string) {
			afterFirstNode <- node
			<-ctx.Done() // the process "hangs" here until it is killed
		}
		return e1.RunBackup(ctx, o)
	})
	putSchedule(t, fx.st, catalog.Schedule{Name: "s", Group: "g", Interval: time.Hour, StartWindow: 10 * time.Minute, Tags: []string{"hourly"}})

	d1.Tick(ctx)
	d2.Tick(ctx) // follower: the slot is d1's
	var node string
	select {
	case node = <-afterFirstNode:
	case <-time.After(2 * time.Minute):
		t.Fatal("d1's run did not finish its first node within 2m")
	}
	if d2.Health().Leader || !d1.Health().Leader {
		t.Fatalf("leaders: d1 %v d2 %v, want d1 only", d1.Health().Leader, d2.Health().Leader)
	}
	slot := slotsOf(t, fx.st, "s")[0]
	interrupted := slot.RunID

	// d1 is dead from here on: no heartbeat, no renewal.
	dead.dead.Store(true)
	clk.Add(DefaultLeaderTTL + DefaultTick)
	d2.Tick(ctx)
	d2.WaitIdle()
	if !d2.Health().Leader {
		t.Fatalf("d2 did not take over within LeaderTTL + Tick: %+v", d2.Health())
	}
	// The run's own heartbeat is not stale yet: it is left alone.
	if s := slotsOf(t, fx.st, "s"); s[0].State != catalog.SlotRunning || s[0].RunID != interrupted {
		t.Fatalf("slot retried before its run's heartbeat was %s old: %+v", engine.AbandonedAfter, s)
	}
	clk.Add(engine.AbandonedAfter)
	d2.Tick(ctx)
	d2.WaitIdle()
	slots := slotsOf(t, fx.st, "s")
	if len(slots) != 1 || slots[0].State != catalog.SlotSucceeded || slots[0].Daemon != "d2" || slots[0].RunID == interrupted ||
		!strings.HasPrefix(slots[0].Reason, "retry of run "+interrupted) {
		t.Fatalf("slot after takeover: %+v, want succeeded by d2's retry of %s", slots, interrupted)
	}
	old, err := fx.st.GetRun(ctx, interrupted)
	if err != nil || old.Status != catalog.RunFailed || !strings.Contains(old.Error, "daemon d1 stopped mid-run") {
		t.Fatalf("interrupted run: %+v %v", old, err)
	}
	retry, err := fx.st.GetRun(ctx, slots[0].RunID)
	if err != nil || retry.Status != catalog.RunSucceeded || len(retry.Expected) != 1 {
		t.Fatalf("retry run: %+v %v, want one workload (the one node %s did not have)", retry, err, node)
	}
	onePerWorkload := func(when string) {
		t.Helper()
		pts := fx.points(t)
		if len(pts["web"]) != 1 || len(pts["db"]) != 1 {
			t.Fatalf("%s: recovery points %+v, want exactly one per workload", when, pts)
		}
		if n := len(fx.snapshots(t, e2, schedTag(t, fx.st, "s"))); n != 2 {
			t.Fatalf("%s: %d snapshots of the schedule in the repository, want 2", when, n)
		}
	}
	onePerWorkload("after the retry")
	if n := len(fx.snapshots(t, e2, "retry-of:"+interrupted)); n != 1 {
		t.Fatalf("%d snapshots tagged as the retry, want 1", n)
	}

	// The dead process's goroutine ends (the process is killed): it records nothing.
	d1.Kill()
	onePerWorkload("after the dead daemon's run ended")
	if s := slotsOf(t, fx.st, "s")[0]; s.RunID != slots[0].RunID || s.State != catalog.SlotSucceeded {
		t.Fatalf("slot changed after the dead daemon's run ended: %+v", s)
	}
	// No second retry, no other run.
	clk.Add(time.Minute)
	d2.Tick(ctx)
	d2.WaitIdle()
	if runs, _ := fx.st.ListRuns(ctx, "g", 0); len(runs) != 2 {
		t.Fatalf("%d runs, want 2 (the interrupted one and its retry)", len(runs))
	}
}

// deadStore refuses the heartbeats of a "dead" process's engine.
type deadStore struct {
	engine.Store
	dead atomic.Bool
}

func (s *deadStore) ClaimRun(ctx context.Context, id, from, to string, staleBefore, now time.Time) (catalog.Run, error) {
	if s.dead.Load() {
		return catalog.Run{}, errors.New("the process is dead")
	}
	return s.Store.ClaimRun(ctx, id, from, to, staleBefore, now)
}

// schedTag is the tag the daemon puts on the points of schedule name.
func schedTag(t *testing.T, st engine.Store, name string) string {
	t.Helper()
	s, err := st.GetSchedule(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return scheduleTag(s)
}
