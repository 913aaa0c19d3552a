package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// Recovery of work a dead engine left, with real agents and the real test
// workload; the recovering engine (a daemon's) shares the catalog and has an
// injected clock, so a heartbeat can be made old without waiting.

// skewedClock is time.Now plus an offset the test moves.
type skewedClock struct{ offset atomic.Int64 }

func (c *skewedClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *skewedClock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func (fx *safetyFixture) recoverer(t *testing.T, owner string, clock *skewedClock) *Engine {
	t.Helper()
	eng, err := New(Options{Store: fx.store, Owner: owner, Now: clock.now, ProbeTimeout: 10 * time.Second,
		Dial: HTTPDialer(HTTPDialerOptions{Token: fx.c.Token, RequestTimeout: time.Minute, RetryMax: -1})})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// crashAfterStop runs a restore of web that dies right after stopping it,
// as a provider killed there would: web stopped, the operation running.
func (fx *safetyFixture) crashAfterStop(t *testing.T, spec RestoreSpec) catalog.RestoreOperation {
	t.Helper()
	crash := RestoreHooks{AfterDeactivate: func(context.Context, catalog.RestoreStep) error { return ErrSimulatedCrash }}
	rep, err := fx.eng.RunRestore(context.Background(), spec, nil, crash)
	if !errors.Is(err, ErrSimulatedCrash) {
		t.Fatalf("restore killed after the stop: %v", err)
	}
	if got := fx.activeOn(t, "web"); len(got) != 0 {
		t.Fatalf("after the killed restore web is active on %v, want stopped", got)
	}
	op, err := fx.store.GetRestore(context.Background(), rep.Operation.ID)
	if err != nil || op.Status != catalog.RestoreRunning || op.Owner != "safety-test" || op.HeartbeatAt.IsZero() {
		t.Fatalf("operation left by the killed restore: %+v, %v; want running, owned by safety-test, with a heartbeat", op, err)
	}
	return op
}

// A restore killed after stopping its workload: RecoverAbandoned leaves it
// alone while its heartbeat is fresh, then (from two engines at once) starts
// the workload again where it ran exactly once and marks the operation
// failed; re-applying the job finishes it.
func TestRecoverAbandonedRestoreRestartsStoppedWorkload(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 2, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.watchOverlaps(t, "web")
	fx.backup(t)
	op := fx.crashAfterStop(t, webSpec())
	ctx := context.Background()

	clock := &skewedClock{}
	a, b := fx.recoverer(t, "daemon-a", clock), fx.recoverer(t, "daemon-b", clock)
	rep, err := a.RecoverAbandoned(ctx)
	if err != nil || len(rep.Restores) != 0 || len(rep.Runs) != 0 {
		t.Fatalf("recovery while the operation's heartbeat is fresh: %+v, %v; want nothing done", rep, err)
	}
	if got, _ := fx.store.GetRestore(ctx, op.ID); got.Status != catalog.RestoreRunning || got.Owner != "safety-test" {
		t.Fatalf("a live operation was touched: %+v", got)
	}
	if got := fx.activeOn(t, "web"); len(got) != 0 {
		t.Fatalf("web was started (on %v) while its restore's owner is alive", got)
	}

	clock.advance(AbandonedAfter + time.Second)
	var wg sync.WaitGroup
	reps := make([]RecoveryReport, 2)
	errs := make([]error, 2)
	for i, eng := range []*Engine{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = eng.RecoverAbandoned(ctx)
		}()
	}
	wg.Wait()
	var got []RecoveredRestore
	for i := range reps {
		if errs[i] != nil {
			t.Fatalf("recovery %d: %v", i, errs[i])
		}
		got = append(got, reps[i].Restores...)
	}
	if len(got) != 1 {
		t.Fatalf("two engines recovering at once reported %d recoveries (%+v); want exactly one", len(got), got)
	}
	r := got[0]
	if r.ID != op.ID || !r.Failed || len(r.Restarted) != 1 || r.Restarted[0] != (WorkloadNode{Workload: "web", Node: "node-1"}) {
		t.Fatalf("recovery report: %+v; want web restarted on node-1 and the operation failed", r)
	}
	if on := fx.activeOn(t, "web"); !slices.Equal(on, []string{"node-1"}) {
		t.Fatalf("after recovery web is active on %v, want node-1", on)
	}
	failed, err := fx.store.GetRestore(ctx, op.ID)
	if err != nil || failed.Status != catalog.RestoreFailed {
		t.Fatalf("operation after recovery: %+v, %v; want failed", failed, err)
	}
	for _, want := range []string{"abandoned by safety-test", "workload web restarted on node node-1", "re-apply the restore job"} {
		if !strings.Contains(failed.Error, want) {
			t.Errorf("the failed operation's error %q does not say %q", failed.Error, want)
		}
	}

	// Re-applying the job resumes the operation and finishes it.
	rr, err := fx.eng.RunRestore(ctx, webSpec(), nil, RestoreHooks{})
	if err != nil || !rr.Resumed || rr.Operation.Status != catalog.RestoreSucceeded {
		t.Fatalf("re-apply after recovery: resumed=%v status=%s, %v; want the operation resumed and succeeded", rr.Resumed, rr.Operation.Status, err)
	}
	if on := fx.activeOn(t, "web"); !slices.Equal(on, []string{"node-1"}) {
		t.Fatalf("after the re-apply web is active on %v, want node-1", on)
	}
}

// While a node cannot be asked, the workload's state is unknown: recovery
// starts nothing, reports why, and leaves the operation abandoned for a
// later pass, which restarts the workload once the node answers again.
func TestRecoverAbandonedRestoreWithUnreachableNodeStartsNothing(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 3, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.watchOverlaps(t, "web")
	fx.backup(t)
	op := fx.crashAfterStop(t, webSpec())
	fx.c.StopAgent(t, "node-2")
	ctx := context.Background()

	clock := &skewedClock{}
	clock.advance(AbandonedAfter + time.Second)
	d := fx.recoverer(t, "daemon", clock)
	rep, err := d.RecoverAbandoned(ctx)
	if err != nil || len(rep.Restores) != 1 {
		t.Fatalf("recovery with node-2 down: %+v, %v; want one operation reported", rep, err)
	}
	r := rep.Restores[0]
	if r.Failed || len(r.Restarted) != 0 || len(r.NotRestarted) != 1 || !strings.Contains(r.NotRestarted[0].Reason, "node-2") {
		t.Fatalf("recovery report with node-2 down: %+v; want web not restarted, naming node-2, and the operation not failed", r)
	}
	if on := fx.activeOn(t, "web", "node-2"); len(on) != 0 {
		t.Fatalf("web was started on %v while node-2 could not be asked", on)
	}
	left, err := fx.store.GetRestore(ctx, op.ID)
	if err != nil || left.Status != catalog.RestoreRunning || left.Owner != "safety-test" || !left.HeartbeatAt.Equal(op.HeartbeatAt) {
		t.Fatalf("operation after a recovery that could do nothing: %+v, %v; want it handed back as it was", left, err)
	}

	fx.c.StartAgent(t, "node-2")
	rep, err = d.RecoverAbandoned(ctx)
	if err != nil || len(rep.Restores) != 1 || !rep.Restores[0].Failed || len(rep.Restores[0].Restarted) != 1 {
		t.Fatalf("recovery once node-2 answers: %+v, %v; want web restarted", rep, err)
	}
	if on := fx.activeOn(t, "web"); !slices.Equal(on, []string{"node-1"}) {
		t.Fatalf("after recovery web is active on %v, want node-1", on)
	}
}

// A backup run left running by a dead engine is marked failed, naming its
// owner; a run whose owner is alive is not touched.
func TestRecoverAbandonedRunMarkedFailed(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 1, "web")
	ctx := context.Background()
	clock := &skewedClock{}
	d := fx.recoverer(t, "daemon", clock)
	dead := catalog.Run{ID: "run-dead", Group: "g", Cluster: "c", Master: "node-1", Status: catalog.RunRunning,
		StartedAt: clock.now().Add(-time.Hour), Owner: "engine-gone", HeartbeatAt: clock.now().Add(-AbandonedAfter - time.Second)}
	live := catalog.Run{ID: "run-live", Group: "g", Cluster: "c", Master: "node-1", Status: catalog.RunRunning,
		StartedAt: clock.now().Add(-time.Hour), Owner: "engine-alive", HeartbeatAt: clock.now().Add(-HeartbeatInterval)}
	for _, r := range []catalog.Run{dead, live} {
		if err := fx.store.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := d.RecoverAbandoned(ctx)
	if err != nil || len(rep.Runs) != 1 || rep.Runs[0].ID != "run-dead" {
		t.Fatalf("recovery: %+v, %v; want run-dead only", rep, err)
	}
	got, err := fx.store.GetRun(ctx, "run-dead")
	if err != nil || got.Status != catalog.RunFailed || got.FinishedAt.IsZero() ||
		!strings.Contains(got.Error, "abandoned by engine-gone at "+dead.HeartbeatAt.UTC().Format(time.RFC3339)) {
		t.Fatalf("abandoned run after recovery: %+v, %v; want failed, abandoned by engine-gone at its last heartbeat", got, err)
	}
	if got, err := fx.store.GetRun(ctx, "run-live"); err != nil || got.Status != catalog.RunRunning || got.Owner != "engine-alive" {
		t.Fatalf("live run after recovery: %+v, %v; want untouched", got, err)
	}
}

// A running restore refreshes its heartbeat, so it never looks abandoned;
// if another engine takes it over anyway (it judged it dead), the old owner
// stops at its next heartbeat instead of going on beside the new one.
func TestRunningRestoreHeartbeatsAndStopsWhenTakenOver(t *testing.T) {
	t.Parallel()
	holdDir := t.TempDir()
	fx := newSafetyFixtureWith(t, 2, map[string]string{testworkload.HoldDirEnv: holdDir}, 0, "web")
	eng, err := New(Options{Store: fx.store, Owner: "slow-engine", ProbeTimeout: 10 * time.Second, HeartbeatInterval: 50 * time.Millisecond,
		Dial: HTTPDialer(HTTPDialerOptions{Token: fx.c.Token, RequestTimeout: time.Minute, RetryMax: -1})})
	if err != nil {
		t.Fatal(err)
	}
	fx.c.StartWorkload(t, "node-1", "web")
	fx.watchOverlaps(t, "web")
	fx.backup(t)
	ctx := context.Background()
	hold, held := testworkload.HoldFiles(holdDir, "web", "stop")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(hold) })
	type result struct {
		rep RestoreReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := eng.RunRestore(ctx, webSpec(), nil, RestoreHooks{})
		done <- result{rep, err}
	}()
	waitFor(t, time.Minute, "the restore to be stopping web", func() bool {
		_, err := os.Stat(held)
		return err == nil
	})
	ops, err := fx.store.RunningRestores(ctx)
	if err != nil || len(ops) != 1 {
		t.Fatalf("running restores: %+v, %v", ops, err)
	}
	first := ops[0].HeartbeatAt
	waitFor(t, 30*time.Second, "the heartbeat to be refreshed", func() bool {
		op, err := fx.store.GetRestore(ctx, ops[0].ID)
		return err == nil && op.HeartbeatAt.After(first)
	})

	// A daemon whose clock runs far ahead judges it abandoned and takes it.
	clock := &skewedClock{}
	clock.advance(time.Hour)
	if _, err := fx.store.ClaimRestore(ctx, ops[0].ID, "slow-engine", "daemon", clock.now().Add(-AbandonedAfter), clock.now()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the taken-over restore did not stop")
	}
	if res.err == nil || !strings.Contains(res.err.Error(), "taken over by another engine") {
		t.Fatalf("taken-over restore: %v; want it stopped, saying it was taken over", res.err)
	}
	op, err := fx.store.GetRestore(ctx, ops[0].ID)
	if err != nil || op.Owner != "daemon" || op.Status != catalog.RestoreRunning {
		t.Fatalf("operation after the old owner stopped: %+v, %v; want it left to its new owner, still running", op, err)
	}
}

// A new catalog over an old repository: listing recovery points (the
// data source) indexes the repository when the catalog has none, by group,
// by workload, and by cluster and repository.
func TestFindRecoveryPointsIndexesAnUnindexedRepository(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 1, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.backup(t)
	ctx := context.Background()
	want, err := fx.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Workload: "web"})
	if err != nil || len(want) != 1 {
		t.Fatalf("points after the backup: %v, %v", want, err)
	}
	for _, f := range []catalog.RecoveryPointFilter{{Group: "g"}, {Workload: "web"}, {Cluster: "c", Repository: "r"}} {
		eng, store := fx.newEngine(t, fx.c.Token)
		if err := store.PutRepository(ctx, catalog.Repository{Name: "r", URL: fx.repoDir, Password: "safety-test-password"}); err != nil {
			t.Fatal(err)
		}
		if err := store.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "r", Workloads: []string{"web"},
			Consistency: "application", NodeOrder: OrderMasterLast, ExtractAt: ExtractAtBackup}); err != nil {
			t.Fatal(err)
		}
		points, indexErr, err := eng.FindRecoveryPoints(ctx, f)
		if err != nil || indexErr != nil || len(points) != 1 || points[0].ID != want[0].ID {
			t.Fatalf("FindRecoveryPoints(%+v) on a new catalog: %v, %v, %v; want %s", f, points, indexErr, err, want[0].ID)
		}
	}
	// A group whose repository cannot be read: no points, and why.
	eng, store := fx.newEngine(t, fx.c.Token)
	if err := store.PutRepository(ctx, catalog.Repository{Name: "gone", URL: filepath.Join(t.TempDir(), "nothing"), Password: "safety-test-password"}); err != nil {
		t.Fatal(err)
	}
	if err := store.PutGroup(ctx, catalog.ProtectionGroup{Name: "g2", Cluster: "c", Repository: "gone", Workloads: []string{"web"},
		Consistency: "application", NodeOrder: OrderMasterLast, ExtractAt: ExtractAtBackup}); err != nil {
		t.Fatal(err)
	}
	points, indexErr, err := eng.FindRecoveryPoints(ctx, catalog.RecoveryPointFilter{Group: "g2"})
	if err != nil || len(points) != 0 || indexErr == nil || !strings.Contains(indexErr.Error(), `repository "gone"`) {
		t.Fatalf("FindRecoveryPoints with an unreadable repository: %v, %v, %v; want no points and an index error naming it", points, indexErr, err)
	}
}

// The agent of the restore node is killed between the write (the swap) and
// the activation, and the engine dies with it. While the agent is down the
// recovery starts nothing; once it is back the workload is started again
// where it ran, on the restored data, and never on two nodes.
func TestRecoverAbandonedAfterAgentKilledDuringSwap(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 2, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.watchOverlaps(t, "web")
	marker := filepath.Join(fx.c.WorkloadDataDir("web"), "marker")
	if err := os.WriteFile(marker, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.backup(t)
	if err := os.WriteFile(marker, []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kill := RestoreHooks{AfterWrite: func(context.Context, catalog.RestoreStep) error {
		fx.c.KillAgent(t, "node-1")
		return ErrSimulatedCrash
	}}
	rep, err := fx.eng.RunRestore(ctx, webSpec(), nil, kill)
	if !errors.Is(err, ErrSimulatedCrash) {
		t.Fatalf("restore whose node and engine died after the write: %v", err)
	}
	if fx.processRunning(t, "node-1", "web") || len(fx.activeOn(t, "web", "node-1")) != 0 {
		t.Fatal("web runs although the restore stopped it and died before starting it")
	}
	if got, _ := os.ReadFile(marker); string(got) != "v1" {
		t.Fatalf("marker after the write: %q, want the restored v1", got)
	}

	clock := &skewedClock{}
	clock.advance(AbandonedAfter + time.Second)
	d := fx.recoverer(t, "daemon", clock)
	rec, err := d.RecoverAbandoned(ctx)
	if err != nil || len(rec.Restores) != 1 || rec.Restores[0].Failed || len(rec.Restores[0].Restarted) != 0 {
		t.Fatalf("recovery while node-1's agent is down: %+v, %v; want nothing started and the operation left abandoned", rec, err)
	}
	if fx.processRunning(t, "node-1", "web") || len(fx.activeOn(t, "web", "node-1")) != 0 {
		t.Fatal("web was started while node-1 could not be asked")
	}

	fx.c.StartAgent(t, "node-1")
	rec, err = d.RecoverAbandoned(ctx)
	if err != nil || len(rec.Restores) != 1 || !rec.Restores[0].Failed || len(rec.Restores[0].Restarted) != 1 {
		t.Fatalf("recovery with node-1 back: %+v, %v; want web restarted", rec, err)
	}
	if on := fx.activeOn(t, "web"); !slices.Equal(on, []string{"node-1"}) {
		t.Fatalf("after recovery web is active on %v, want node-1", on)
	}
	if got, _ := os.ReadFile(marker); string(got) != "v1" {
		t.Fatalf("marker after recovery: %q, want the restored v1 kept in place", got)
	}
	op, err := fx.store.GetRestore(ctx, rep.Operation.ID)
	if err != nil || op.Status != catalog.RestoreFailed || !strings.Contains(op.Error, "workload web restarted on node node-1") {
		t.Fatalf("operation after recovery: %+v, %v", op, err)
	}
}

// An owner naming a process of this host is dead once that process exited,
// also while it is an unreaped zombie; a live one, this process, or another
// host's is not.
func TestOwnerProcessGone(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name:", err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("cannot start sleep:", err)
	}
	owner := fmt.Sprintf("%s/%d", host, cmd.Process.Pid)
	if ownerProcessGone(owner) {
		t.Fatal("a running process counts as gone")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the killed process to be a zombie or gone", func() bool { return ownerProcessGone(owner) })
	_ = cmd.Wait()
	if !ownerProcessGone(owner) {
		t.Fatal("a reaped process does not count as gone")
	}
	for _, o := range []string{fmt.Sprintf("%s/%d", host, os.Getpid()), fmt.Sprintf("other-host/%d", cmd.Process.Pid), "safety-test", ""} {
		if ownerProcessGone(o) {
			t.Errorf("owner %q counts as a gone process", o)
		}
	}
}

// beatFailingStore fails heartbeats of restore operations while fail is set,
// as a catalog the engine cannot reach would.
type beatFailingStore struct {
	*memstore.Store
	fail atomic.Bool
}

func (s *beatFailingStore) ClaimRestore(ctx context.Context, id, from, to string, staleBefore, now time.Time) (catalog.RestoreOperation, error) {
	if s.fail.Load() {
		return catalog.RestoreOperation{}, errors.New("catalog unreachable (injected)")
	}
	return s.Store.ClaimRestore(ctx, id, from, to, staleBefore, now)
}

// An engine that cannot refresh its heartbeat stops working on the restore
// before another engine could judge it abandoned.
func TestRestoreStopsWhenItsHeartbeatCannotBeRefreshed(t *testing.T) {
	t.Parallel()
	holdDir := t.TempDir()
	fx := newSafetyFixtureWith(t, 2, map[string]string{testworkload.HoldDirEnv: holdDir}, 0, "web")
	store := &beatFailingStore{Store: fx.store}
	eng, err := New(Options{Store: store, Owner: "cut-off-engine", ProbeTimeout: 10 * time.Second, HeartbeatInterval: 50 * time.Millisecond,
		Dial: HTTPDialer(HTTPDialerOptions{Token: fx.c.Token, RequestTimeout: time.Minute, RetryMax: -1})})
	if err != nil {
		t.Fatal(err)
	}
	fx.c.StartWorkload(t, "node-1", "web")
	fx.watchOverlaps(t, "web")
	fx.backup(t)
	hold, held := testworkload.HoldFiles(holdDir, "web", "stop")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(hold) })
	done := make(chan error, 1)
	go func() {
		_, err := eng.RunRestore(context.Background(), webSpec(), nil, RestoreHooks{})
		done <- err
	}()
	waitFor(t, time.Minute, "the restore to be stopping web", func() bool {
		_, err := os.Stat(held)
		return err == nil
	})
	store.fail.Store(true)
	var rerr error
	select {
	case rerr = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the restore went on although its heartbeat could not be refreshed")
	}
	if rerr == nil || !strings.Contains(rerr.Error(), "heartbeat could not be refreshed") {
		t.Fatalf("restore without heartbeats: %v; want it stopped, saying why", rerr)
	}
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
}
