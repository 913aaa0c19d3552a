package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// Safety under faults, with real agents and the real test workload: each
// test injects one fault of the fault matrix (ARCHITECTURE.md, "Safety
// model") and checks what the engine does and where the workload runs.

type safetyFixture struct {
	c        *agenttest.Cluster
	eng      *Engine
	store    *memstore.Store
	repoDir  string
	leaseTTL time.Duration
}

func newSafetyFixture(t *testing.T, nodes int, workloads ...string) *safetyFixture {
	t.Helper()
	return newSafetyFixtureWith(t, nodes, nil, 0, workloads...)
}

// slowLeaseOwnership gives agents an ownership lease that outlives a few
// engine calls on a loaded machine, so a test can see it still binding.
var slowLeaseOwnership = agent.OwnershipConfig{RenewInterval: 200 * time.Millisecond, Expiry: 12 * time.Second, ClockSkewMargin: 500 * time.Millisecond}

// newSafetyFixtureOwnership is newSafetyFixture with the agents' ownership
// lease timing.
func newSafetyFixtureOwnership(t *testing.T, nodes int, own agent.OwnershipConfig, workloads ...string) *safetyFixture {
	t.Helper()
	return newSafetyFixtureWithOptions(t, nodes, nil, 0, own, workloads...)
}

// newSafetyFixtureWith passes env to the test workloads and leaseTTL to the
// engine (0: the default).
func newSafetyFixtureWith(t *testing.T, nodes int, env map[string]string, leaseTTL time.Duration, workloads ...string) *safetyFixture {
	t.Helper()
	return newSafetyFixtureWithOptions(t, nodes, env, leaseTTL, agent.OwnershipConfig{}, workloads...)
}

func newSafetyFixtureWithOptions(t *testing.T, nodes int, env map[string]string, leaseTTL time.Duration, own agent.OwnershipConfig, workloads ...string) *safetyFixture {
	t.Helper()
	repoDir := filepath.Join(t.TempDir(), "repo")
	c := agenttest.Start(t, agenttest.Options{Nodes: nodes, Workloads: workloads, WorkloadEnv: env, Ownership: own,
		Repositories: []agenttest.Repository{{Name: "r", URL: repoDir, Password: "safety-test-password"}}})
	fx := &safetyFixture{c: c, repoDir: repoDir, leaseTTL: leaseTTL}
	fx.eng, fx.store = fx.newEngine(t, c.Token)
	ctx := context.Background()
	if _, err := fx.eng.CreateRepository(ctx, catalog.Repository{Name: "r", URL: fx.repoDir, Password: "safety-test-password"}); err != nil {
		t.Fatal(err)
	}
	if err := fx.eng.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "r", Workloads: workloads,
		Consistency: api.ConsistencyApplication, NodeOrder: OrderMasterLast, ExtractAt: ExtractAtBackup}); err != nil {
		t.Fatal(err)
	}
	return fx
}

// newEngine is an engine with its own, empty catalog over the fixture's
// cluster, registered as "c".
func (fx *safetyFixture) newEngine(t *testing.T, token string) (*Engine, *memstore.Store) {
	t.Helper()
	store := memstore.New()
	eng, err := New(Options{Store: store, Owner: "safety-test", ProbeTimeout: 10 * time.Second, LeaseTTL: fx.leaseTTL,
		Dial: HTTPDialer(HTTPDialerOptions{Token: token, RequestTimeout: time.Minute, RetryMax: -1})})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutCluster(context.Background(), catalog.Cluster{Name: "c", SharedVolume: fx.c.SharedVolume, MasterPolicy: MasterFixed,
		MasterNode: "node-1", JoinOrder: JoinParallel, Nodes: fx.nodes()}); err != nil {
		t.Fatal(err)
	}
	return eng, store
}

func (fx *safetyFixture) nodes() []catalog.Node {
	var out []catalog.Node
	for i, n := range fx.c.Nodes {
		out = append(out, catalog.Node{Name: n.Name, Endpoint: n.Endpoint, Position: i})
	}
	return out
}

func (fx *safetyFixture) backup(t *testing.T) {
	t.Helper()
	rep, err := fx.eng.RunBackup(context.Background(), RunOptions{Group: "g", VerifyAttempts: 1})
	if err != nil || rep.Run.Status != catalog.RunSucceeded {
		t.Fatalf("backup: %v, run %s: %s", err, rep.Run.Status, rep.Run.Error)
	}
}

// activeOn asks every reachable agent where workload is active.
func (fx *safetyFixture) activeOn(t *testing.T, workload string, skip ...string) []string {
	t.Helper()
	var out []string
	for _, n := range fx.c.Nodes {
		if slices.Contains(skip, n.Name) {
			continue
		}
		w, err := fx.c.Client(t, n.Name).Workload(context.Background(), workload)
		if err != nil {
			t.Fatalf("asking %s about %s: %v", n.Name, workload, err)
		}
		if w.State == api.StateActive {
			out = append(out, n.Name)
		}
	}
	return out
}

// processRunning reports whether the test workload's process on node is
// alive, whatever its agent says (or whether it answers at all).
func (fx *safetyFixture) processRunning(t *testing.T, node, workload string) bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fx.c.WorkloadStateDir(node, workload), testworkload.PIDFile))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	return err == nil && testworkload.IsRunProcess(pid)
}

// lastRecordNode is the node that wrote workload's newest record.
func (fx *safetyFixture) lastRecordNode(t *testing.T, workload string) string {
	t.Helper()
	recs, err := testworkload.ReadRecords(fx.c.WorkloadDataDir(workload))
	if err != nil || len(recs) == 0 {
		t.Fatalf("records of %s: %d, %v", workload, len(recs), err)
	}
	return recs[len(recs)-1].Node
}

// watchOverlaps samples, until the test ends, where each workload is
// active: an agent's report, or, for a node whose agent does not answer,
// whether the workload's process is alive there. It fails the test if any
// sample finds a workload active on two nodes.
func (fx *safetyFixture) watchOverlaps(t *testing.T, workloads ...string) {
	t.Helper()
	stop, done := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var overlaps []string
	samples := 0
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, w := range workloads {
				var on []string
				for _, n := range fx.c.Nodes {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					wl, err := fx.c.Client(t, n.Name).Workload(ctx, w)
					cancel()
					if (err == nil && wl.State == api.StateActive) || (err != nil && fx.processRunning(t, n.Name, w)) {
						on = append(on, n.Name)
					}
				}
				mu.Lock()
				if len(on) > 1 {
					overlaps = append(overlaps, fmt.Sprintf("%s on %v", w, on))
				}
				mu.Unlock()
			}
			mu.Lock()
			samples++
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		if len(overlaps) > 0 {
			t.Errorf("a workload was active on two nodes at once (%d of %d samples): %v", len(overlaps), samples, overlaps[:min(len(overlaps), 5)])
		}
		if samples < 3 {
			t.Errorf("the overlap watch sampled only %d times", samples)
		}
	})
}

func webSpec() RestoreSpec {
	return RestoreSpec{Cluster: "c", Repository: "r", Verify: api.VerifyMetadata, ActivateAfter: true,
		Workloads: []RestoreWorkload{{Name: "web", RecoveryPoint: "latest", Target: TargetActiveNode, OnConflict: ConflictDeactivate}}}
}

// F1: the node running the workload is unreachable (agent killed, workload
// still running). Plan and apply refuse, naming the node and assume_down,
// and nothing starts elsewhere; the operator's assume_down lets the plan
// go on without it.
func TestSafetyF1UnreachableNodeBlocksRestore(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixtureOwnership(t, 3, slowLeaseOwnership, "web")
	fx.c.StartWorkload(t, "node-3", "web")
	fx.watchOverlaps(t, "web")
	fx.backup(t)
	fx.c.StopAgent(t, "node-3")
	ctx := context.Background()

	_, _, err := fx.eng.PreviewRestore(ctx, webSpec())
	var u *UnreachableNodesError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "node-3") || !strings.Contains(err.Error(), `assume_down = ["node-3"]`) {
		t.Fatalf("plan with node-3 unreachable: err = %v; want an UnreachableNodesError naming node-3 and assume_down", err)
	}
	_, err = fx.eng.RunRestore(ctx, webSpec(), nil, RestoreHooks{})
	if !errors.As(err, &u) {
		t.Fatalf("apply with node-3 unreachable: err = %v; want an UnreachableNodesError", err)
	}
	if got := fx.activeOn(t, "web", "node-3"); len(got) != 0 {
		t.Fatalf("web was started on %v while it still runs on unreachable node-3", got)
	}
	if !fx.processRunning(t, "node-3", "web") {
		t.Fatal("web's process on node-3 is gone; the test needs it running behind the dead agent")
	}

	spec := webSpec()
	spec.AssumeDown = []string{"node-3"}
	if RestoreKey(spec) != RestoreKey(webSpec()) {
		t.Error("assume_down changed the restore's key: confirming a node dead must resume the same job")
	}
	// node-3's ownership lease on web was renewed until its agent died:
	// the confirmation is not honoured before that lease has expired.
	_, _, err = fx.eng.PreviewRestore(ctx, spec)
	if !errors.As(err, &u) || u.Live["node-3"].IsZero() || !strings.Contains(err.Error(), "honoured only after") {
		t.Fatalf("plan with assume_down = [node-3] while its lease is live: err = %v; want a refusal naming the lease's expiry", err)
	}
	until := u.Live["node-3"]
	deadline := time.Now().Add(30 * time.Second)
	var plan RestorePlan
	for {
		plan, _, err = fx.eng.PreviewRestore(ctx, spec)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("plan with assume_down = [node-3] after its lease expired: %v", err)
	}
	if time.Now().Before(until) {
		t.Fatalf("assume_down was honoured at %s, before node-3's lease expired at %s", time.Now().UTC(), until.UTC())
	}
	if s := plan.Steps[0]; s.Node == "node-3" || s.Node == "" || s.DeactivateOn != "" {
		t.Fatalf("plan with node-3 assumed down = %+v; want a restore on a reachable node", s)
	}
}

// F2: the provider dies after stopping the workload; the operator starts
// it on another node; the next apply must not replay the recorded plan
// (restore and start on the old node) but stop, saying what changed.
func TestSafetyF2ResumedRestoreRechecksPlacement(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 2, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.watchOverlaps(t, "web")
	fx.backup(t)
	ctx := context.Background()
	crash := RestoreHooks{AfterDeactivate: func(context.Context, catalog.RestoreStep) error { return ErrSimulatedCrash }}
	if _, err := fx.eng.RunRestore(ctx, webSpec(), nil, crash); !errors.Is(err, ErrSimulatedCrash) {
		t.Fatalf("first apply: %v, want the simulated crash after the stop", err)
	}
	if got := fx.activeOn(t, "web"); len(got) != 0 {
		t.Fatalf("after the crash web is active on %v, want stopped", got)
	}
	fx.c.StartWorkload(t, "node-2", "web")

	_, resuming, err := fx.eng.PreviewRestore(ctx, webSpec())
	var changed *PlanChangedError
	if !resuming || !errors.As(err, &changed) || !strings.Contains(err.Error(), "now runs on node-2") {
		t.Fatalf("plan of the resumed job: resuming=%v err=%v; want a PlanChangedError saying web now runs on node-2", resuming, err)
	}
	rep, err := fx.eng.RunRestore(ctx, webSpec(), nil, RestoreHooks{})
	if !errors.As(err, &changed) || !strings.Contains(err.Error(), "right before writing it, web now runs on node-2") {
		t.Fatalf("resumed apply: err = %v; want it to stop before writing, saying web now runs on node-2", err)
	}
	if st := rep.Steps[len(rep.Steps)-1]; st.Epoch != 0 || st.BytesWritten != 0 {
		t.Fatalf("resumed step %+v claimed the coordinator role or wrote data under the live copy", st)
	}
	if got := fx.activeOn(t, "web"); !slices.Equal(got, []string{"node-2"}) {
		t.Fatalf("after the refused resume web is active on %v, want node-2 only", got)
	}
	// The live copy's data was not overwritten: node-2 keeps appending.
	waitFor(t, 20*time.Second, "node-2 appending to web's records", func() bool { return fx.lastRecordNode(t, "web") == "node-2" })
}

// F3: a restore fails after it stopped the workload (here the coordinator
// lease is held by a parallel job), also when the stop was done by an
// earlier apply that was killed: the workload is started again where it
// ran and the error says so. Once the cause is gone, apply completes.
func TestSafetyF3FailureAfterStopRestartsWorkload(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 2, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.watchOverlaps(t, "web")
	fx.backup(t)
	ctx := context.Background()
	// A parallel job holds the coordinator role on node-2.
	other, err := fx.store.AcquireLease(ctx, "c", "node-2", "other-engine", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	_, err = fx.eng.RunRestore(ctx, webSpec(), nil, RestoreHooks{})
	var se *RestoreStepError
	if !errors.As(err, &se) || !se.Restarted || !strings.Contains(err.Error(), "was started again there") || !strings.Contains(err.Error(), "node-2") {
		t.Fatalf("restore during a lease conflict: err = %v; want a RestoreStepError saying web was started again on node-1", err)
	}
	if got := fx.activeOn(t, "web"); !slices.Equal(got, []string{"node-1"}) {
		t.Fatalf("after the failed restore web is active on %v, want node-1", got)
	}

	// The provider is killed right after the stop; the next apply fails on
	// the lease too, and restarts what the killed one stopped.
	spec := webSpec()
	spec.Triggers = map[string]string{"attempt": "2"}
	crash := RestoreHooks{AfterDeactivate: func(context.Context, catalog.RestoreStep) error { return ErrSimulatedCrash }}
	if err := fx.store.ReleaseLease(ctx, "c", other.Epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.eng.RunRestore(ctx, spec, nil, crash); !errors.Is(err, ErrSimulatedCrash) {
		t.Fatalf("apply killed after the stop: %v", err)
	}
	if got := fx.activeOn(t, "web"); len(got) != 0 {
		t.Fatalf("after the killed apply web is active on %v, want stopped", got)
	}
	if other, err = fx.store.AcquireLease(ctx, "c", "node-2", "other-engine", time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err = fx.eng.RunRestore(ctx, spec, nil, RestoreHooks{})
	if !errors.As(err, &se) || !se.Restarted || se.StoppedOn != "node-1" {
		t.Fatalf("resumed apply during a lease conflict: err = %v; want web started again on node-1", err)
	}
	if got := fx.activeOn(t, "web"); !slices.Equal(got, []string{"node-1"}) {
		t.Fatalf("after the resumed, failed restore web is active on %v, want node-1", got)
	}

	if err := fx.store.ReleaseLease(ctx, "c", other.Epoch); err != nil {
		t.Fatal(err)
	}
	rep, err := fx.eng.RunRestore(ctx, spec, nil, RestoreHooks{})
	if err != nil || rep.Operation.Status != catalog.RestoreSucceeded {
		t.Fatalf("apply once the lease is free: %v", err)
	}
	if got := fx.activeOn(t, "web"); !slices.Equal(got, []string{"node-1"}) {
		t.Fatalf("after the restore web is active on %v, want node-1", got)
	}
}

// Item 8 messages: an unknown workload is unknown (not "run a backup
// first"); a recovery point of another workload says whose it is.
func TestSafetyRestoreMessages(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 1, "web", "db")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.c.StartWorkload(t, "node-1", "db")
	fx.backup(t)
	ctx := context.Background()
	spec := webSpec()
	spec.Workloads[0].Name = "ghost"
	if _, err := fx.eng.PlanRestore(ctx, spec); err == nil || !strings.Contains(err.Error(), `"ghost" is unknown`) || strings.Contains(err.Error(), "backup first") {
		t.Errorf("restore of an undefined workload: %v; want it called unknown", err)
	}
	points, err := fx.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Workload: "db"})
	if err != nil || len(points) != 1 {
		t.Fatalf("db's recovery points: %v %v", points, err)
	}
	spec = webSpec()
	spec.Workloads[0].RecoveryPoint = points[0].ID
	if _, err := fx.eng.PlanRestore(ctx, spec); err == nil || !strings.Contains(err.Error(), `belongs to workload "db"`) {
		t.Errorf("restore of web from db's recovery point: %v; want it to say the point belongs to db", err)
	}
}

// F4: a step's coordinator lease is short and renewed while it works, so
// it never lapses under a live engine; released by the break-glass (or
// taken over), the step is aborted, saying why.
func TestSafetyF4LeaseRenewedAndLossAborts(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	eng, err := New(Options{Store: store, Dial: newFakeCluster(nil, nil).dial, Owner: "renewer", LeaseTTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if DefaultLeaseTTL >= time.Minute {
		t.Errorf("DefaultLeaseTTL = %s: a dead engine's lease must expire in well under a minute", DefaultLeaseTTL)
	}
	ctx := context.Background()
	held, err := eng.holdLease(ctx, "c", "node-1", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer held.stop()
	// Well past three lease lifetimes, another node is still refused.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, err := store.AcquireLease(ctx, "c", "node-2", "other", time.Second, time.Now()); !errors.Is(err, catalog.ErrConflict) {
			t.Fatalf("another node acquired the lease %s after the grant: %v; the holder's renewal must keep it", time.Since(deadline.Add(-time.Second)), err)
		}
		if held.ctx.Err() != nil {
			t.Fatalf("step aborted while its lease was renewable: %v", context.Cause(held.ctx))
		}
		time.Sleep(20 * time.Millisecond) // pacing the probe, not synchronising
	}
	leases, err := eng.Leases(ctx)
	if err != nil || len(leases) != 1 || leases[0].Owner != "renewer" {
		t.Fatalf("Leases = %+v, %v", leases, err)
	}
	if _, err := eng.ReleaseLeaseOf(ctx, "c", 0); err != nil {
		t.Fatalf("break-glass release: %v", err)
	}
	select {
	case <-held.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the step went on for 5s after its lease was released")
	}
	if cause := leaseLost(held); cause == nil || !strings.Contains(cause.Error(), "lost the coordinator lease") {
		t.Fatalf("cause = %v; want it to say the lease was lost", cause)
	}
}

// F4 with real agents: the coordinator lease of a backup in flight (the
// workload's quiesce is held) is released by the break-glass; the step is
// aborted at once, saying the lease was lost, instead of running on
// without it.
func TestSafetyF4LostLeaseAbortsBackup(t *testing.T) {
	t.Parallel()
	holdDir := t.TempDir()
	fx := newSafetyFixtureWith(t, 1, map[string]string{testworkload.HoldDirEnv: holdDir}, 600*time.Millisecond, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.watchOverlaps(t, "web")
	hold, held := testworkload.HoldFiles(holdDir, "web", "quiesce")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(hold) })
	ctx := context.Background()
	type result struct {
		rep RunReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := fx.eng.RunBackup(ctx, RunOptions{Group: "g", RunID: "run-lost-lease", VerifyAttempts: 1})
		done <- result{rep, err}
	}()
	waitFor(t, 30*time.Second, "the backup's quiesce to be held", func() bool { _, err := os.Stat(held); return err == nil })
	if _, err := fx.eng.ReleaseLeaseOf(ctx, "c", 0); err != nil {
		t.Fatalf("break-glass release: %v", err)
	}
	// The step ends while its quiesce is still held: aborted, not waited out.
	var first catalog.Step
	waitFor(t, 10*time.Second, "the node step to fail", func() bool {
		steps, _ := fx.store.Steps(ctx, "run-lost-lease")
		if len(steps) > 0 {
			first = steps[0]
		}
		return len(steps) > 0
	})
	if first.Outcome != catalog.StepFailed || !strings.Contains(first.Error, "lost the coordinator lease") {
		t.Fatalf("first step = %+v; want it failed saying the lease was lost", first)
	}
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("run: %v", res.err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the run did not finish")
	}
}

// F7: a new catalog over a cluster whose agents have seen epoch 30 and a
// repository it never indexed: backups learn the epoch instead of failing
// with stale_epoch, and restores find the repository's recovery points.
func TestSafetyF7NewCatalogOldClusterAndRepository(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 2, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.backup(t)
	ctx := context.Background()
	if _, err := fx.c.Client(t, "node-2").ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 30, Owner: "old-catalog"}); err != nil {
		t.Fatal(err)
	}

	// Restore through a brand-new catalog: no recovery point indexed.
	eng, store := fx.newEngine(t, fx.c.Token)
	if err := store.PutRepository(ctx, catalog.Repository{Name: "r", URL: fx.repoDir, Password: "safety-test-password"}); err != nil {
		t.Fatal(err)
	}
	plan, err := eng.PlanRestore(ctx, webSpec())
	if err != nil {
		t.Fatalf("plan with a catalog that never indexed the repository: %v", err)
	}
	if plan.Steps[0].RecoveryPoint == "" {
		t.Fatal("no recovery point chosen")
	}
	if err := eng.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "r", Workloads: []string{"web"},
		Consistency: api.ConsistencyApplication, NodeOrder: OrderMasterLast, ExtractAt: ExtractAtBackup}); err != nil {
		t.Fatal(err)
	}
	fx.c.MoveWorkload(t, "web", "node-1", "node-2")
	rep, err := eng.RunBackup(ctx, RunOptions{Group: "g", VerifyAttempts: 1})
	if err != nil || rep.Run.Status != catalog.RunSucceeded {
		t.Fatalf("backup through a new catalog after the agents saw epoch 30: %v, %s: %s", err, rep.Run.Status, rep.Run.Error)
	}
	if rep.Steps[0].Epoch <= 30 {
		t.Fatalf("backup ran with epoch %d; want one above 30", rep.Steps[0].Epoch)
	}
}

// F10: every node refuses the token: the digest is an error naming the
// nodes, not an empty list.
func TestSafetyF10DigestWithoutAnswersFails(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 2, "web")
	eng, _ := fx.newEngine(t, "not-the-token-0123456789")
	_, err := eng.Digest(context.Background(), "c", DigestFilter{})
	var none *NoNodeAnsweredError
	if !errors.As(err, &none) || len(none.Nodes) != 2 || !strings.Contains(err.Error(), "token") {
		t.Fatalf("digest with a refused token: %v; want NoNodeAnsweredError over both nodes mentioning the token", err)
	}
	if d, err := fx.eng.Digest(context.Background(), "c", DigestFilter{}); err != nil || len(d.Workloads) != 1 {
		t.Fatalf("digest with the right token: %+v, %v", d, err)
	}
}

// Two operations on one workload at once (a backup run and a restore
// job): the agents' epoch fencing and per-workload lock serialise them;
// each either completes or fails saying why, and the workload ends active
// on one node with records that never clash.
func TestSafetyConcurrentBackupAndRestore(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 2, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.watchOverlaps(t, "web")
	fx.backup(t)
	ctx := context.Background()
	restorer, rstore := fx.newEngine(t, fx.c.Token)
	if err := rstore.PutRepository(ctx, catalog.Repository{Name: "r", URL: fx.repoDir, Password: "safety-test-password"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var backupErr, restoreErr error
	var run RunReport
	wg.Go(func() { run, backupErr = fx.eng.RunBackup(ctx, RunOptions{Group: "g", VerifyAttempts: 1}) })
	wg.Go(func() { _, restoreErr = restorer.RunRestore(ctx, webSpec(), nil, RestoreHooks{}) })
	wg.Wait()
	if backupErr != nil {
		t.Fatalf("backup run: %v", backupErr)
	}
	t.Logf("backup run: %s %s; restore: %v", run.Run.Status, run.Run.Error, restoreErr)
	if restoreErr != nil {
		var se *RestoreStepError
		if !errors.As(restoreErr, &se) || (se.StoppedOn != "" && !se.Restarted) {
			t.Fatalf("restore failed without putting web back: %v", restoreErr)
		}
	}
	if got := fx.activeOn(t, "web"); !slices.Equal(got, []string{"node-1"}) {
		t.Fatalf("afterwards web is active on %v, want node-1 only", got)
	}
	recs, err := testworkload.ReadRecords(fx.c.WorkloadDataDir("web"))
	if err != nil {
		t.Fatalf("web's records are damaged: %v", err)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Fatalf("records clash: seq %d after %d", recs[i].Seq, recs[i-1].Seq)
		}
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// stopReturnsEarly is an agent client whose stop answers at once with the
// workload still active, like a stop command that only asks for a stop.
type stopReturnsEarly struct{ AgentClient }

func (c stopReturnsEarly) Action(ctx context.Context, workload, action string) (api.ActionResult, error) {
	if action != "stop" {
		return c.AgentClient.Action(ctx, workload, action)
	}
	return api.ActionResult{Workload: workload, Action: action, State: api.StateActive}, nil
}

// A stop that returns while the workload still runs does not let the
// restore go on: nothing is written under the running copy.
func TestSafetyStopThatLeavesTheWorkloadRunningStopsTheRestore(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 2, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.watchOverlaps(t, "web")
	fx.backup(t)
	real := HTTPDialer(HTTPDialerOptions{Token: fx.c.Token, RequestTimeout: time.Minute, RetryMax: -1})
	eng, err := New(Options{Store: fx.store, Owner: "safety-test", ProbeTimeout: 10 * time.Second,
		Dial: func(node, endpoint string) (AgentClient, error) {
			cl, err := real(node, endpoint)
			return stopReturnsEarly{cl}, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	spec := webSpec()
	spec.Workloads[0].Target, spec.Workloads[0].Node = TargetNode, "node-2"
	_, err = eng.RunRestore(context.Background(), spec, nil, RestoreHooks{})
	if err == nil || !strings.Contains(err.Error(), "still reports web as active") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("restore after a stop that left web running: err = %v; want it refused, saying web still runs and nothing was written", err)
	}
	if got := fx.activeOn(t, "web"); !slices.Equal(got, []string{"node-1"}) {
		t.Fatalf("web is active on %v, want node-1 only", got)
	}
}
