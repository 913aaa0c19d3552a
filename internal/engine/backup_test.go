package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
)

// fakeCluster is an in-memory cluster of agents that records every backup:
// the harness for the orchestration logic (real agents are exercised by the
// provider's acceptance tests).
type fakeCluster struct {
	mu        sync.Mutex
	nodes     []string
	workloads []string
	active    map[string][]string // workload -> nodes it is active on
	down      map[string]bool
	epochs    map[string]int64 // node -> epoch it holds
	marker    int64
	backups   []string // "node/workload@epoch"
	onBackup  func(node, workload string)
}

func newFakeCluster(nodes []string, placement map[string]string) *fakeCluster {
	f := &fakeCluster{nodes: nodes, active: map[string][]string{}, down: map[string]bool{}, epochs: map[string]int64{}}
	for w, n := range placement {
		f.workloads = append(f.workloads, w)
		if n != "" {
			f.active[w] = []string{n}
		}
	}
	slices.Sort(f.workloads)
	return f
}

func (f *fakeCluster) move(w, to string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active[w] = []string{to}
}

func (f *fakeCluster) dial(node, endpoint string) (AgentClient, error) {
	return &fakeAgent{f: f, node: node, endpoint: endpoint}, nil
}

type fakeAgent struct {
	f              *fakeCluster
	node, endpoint string
}

func (a *fakeAgent) unreachable() error {
	if a.f.down[a.node] {
		return &client.Error{Node: a.node, Endpoint: a.endpoint, Err: syscall.ECONNREFUSED}
	}
	return nil
}

func (a *fakeAgent) Health(context.Context) (api.Health, error) {
	return api.Health{Status: "ok"}, a.unreachable()
}

func (a *fakeAgent) Node(context.Context) (api.NodeFacts, error) {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	if err := a.unreachable(); err != nil {
		return api.NodeFacts{}, err
	}
	return api.NodeFacts{Name: a.node, AgentVersion: "test", CPUCount: 2, MemFreeBytes: 1 << 30, SharedVolume: "/vol", SharedVolumeID: "v1",
		Repositories: []api.RepositoryFact{{Name: "r"}}}, nil
}

func (a *fakeAgent) Workloads(context.Context) (api.WorkloadList, error) {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	if err := a.unreachable(); err != nil {
		return api.WorkloadList{}, err
	}
	out := api.WorkloadList{Node: a.node}
	for _, w := range a.f.workloads {
		state := api.StateInactive
		if slices.Contains(a.f.active[w], a.node) {
			state = api.StateActive
		}
		out.Workloads = append(out.Workloads, api.Workload{Name: w, Driver: "exec", State: state, Paths: []string{"apps/" + w}})
	}
	return out, nil
}

func (a *fakeAgent) Action(context.Context, string, string) (api.ActionResult, error) {
	return api.ActionResult{}, errors.New("not used")
}

func (a *fakeAgent) ClaimCoordinator(_ context.Context, c api.CoordinatorClaim) (api.CoordinatorState, error) {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	if err := a.unreachable(); err != nil {
		return api.CoordinatorState{}, err
	}
	if c.Epoch <= a.f.marker {
		return api.CoordinatorState{}, &client.Error{Node: a.node, StatusCode: http.StatusConflict, Code: "stale_epoch"}
	}
	a.f.marker, a.f.epochs[a.node] = c.Epoch, c.Epoch
	return api.CoordinatorState{Node: a.node, Epoch: c.Epoch}, nil
}

func (a *fakeAgent) Backup(_ context.Context, w string, req api.BackupRequest) (api.BackupResult, error) {
	a.f.mu.Lock()
	if err := a.unreachable(); err != nil {
		a.f.mu.Unlock()
		return api.BackupResult{}, err
	}
	// Fencing as the real agent does it: the epoch must be this node's and
	// not older than the marker.
	if req.Epoch != a.f.epochs[a.node] || req.Epoch < a.f.marker {
		a.f.mu.Unlock()
		return api.BackupResult{}, &client.Error{Node: a.node, StatusCode: http.StatusConflict, Code: "stale_epoch"}
	}
	if !slices.Contains(a.f.active[w], a.node) {
		a.f.mu.Unlock()
		return api.BackupResult{}, &client.Error{Node: a.node, StatusCode: http.StatusConflict, Code: "not_active"}
	}
	a.f.backups = append(a.f.backups, fmt.Sprintf("%s/%s@%d", a.node, w, req.Epoch))
	hook := a.f.onBackup
	a.f.mu.Unlock()
	if hook != nil {
		hook(a.node, w)
	}
	now := time.Date(2026, 1, 1, 0, 0, len(a.f.backups), 0, time.UTC)
	// Like a real agent, whose block opens the repository the engine names.
	return api.BackupResult{Workload: w, Node: a.node, Epoch: req.Epoch, SnapshotID: fmt.Sprintf("snap-%s-%s", a.node, w), RepositoryID: req.RepositoryID,
		Consistency: req.Consistency, TotalBytes: 100, StunMS: 5, StartedAt: now, FinishedAt: now}, nil
}

func (a *fakeAgent) Restore(context.Context, string, api.RestoreRequest) (api.RestoreResult, error) {
	return api.RestoreResult{}, errors.New("not used")
}

func (a *fakeAgent) NodeBackup(context.Context, api.NodeBackupRequest) (api.NodeBackupResult, error) {
	return api.NodeBackupResult{}, errors.New("not used")
}

type runFixture struct {
	eng   *Engine
	store *memstore.Store
	f     *fakeCluster
}

func newRunFixture(t *testing.T, placement map[string]string, g catalog.ProtectionGroup) *runFixture {
	t.Helper()
	ctx := context.Background()
	f := newFakeCluster([]string{"n1", "n2", "n3"}, placement)
	store := memstore.New()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	eng, err := New(Options{Store: store, Dial: f.dial, Now: func() time.Time { return clock },
		Wait: func(context.Context, time.Duration) error { return nil }, Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	for i, n := range f.nodes {
		nodes[n] = fmt.Sprintf("http://127.0.0.1:%d", 7001+i)
	}
	if _, err := eng.RegisterCluster(ctx, ClusterSpec{Name: "c", SharedVolume: "/vol", Nodes: nodes, MasterPolicy: MasterFixed, MasterNode: "n1", JoinOrder: JoinParallel}); err != nil {
		t.Fatal(err)
	}
	// A real repository: every run opens it to learn the id it sends.
	repoDir := filepath.Join(t.TempDir(), "repo")
	if _, err := eng.CreateRepository(ctx, catalog.Repository{Name: "r", URL: repoDir, Password: "long enough password"}); err != nil {
		t.Fatal(err)
	}
	g.Name, g.Cluster, g.Repository = "g", "c", "r"
	if g.Consistency == "" {
		g.Consistency = api.ConsistencyApplication
	}
	if g.NodeOrder == "" {
		g.NodeOrder = OrderMasterLast
	}
	g.ExtractAt = ExtractAtBackup
	if err := eng.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	return &runFixture{eng: eng, store: store, f: f}
}

func TestRunBackupVisitsNodesInOrderWithFreshEpochs(t *testing.T) {
	t.Parallel()
	fx := newRunFixture(t, map[string]string{"a": "n1", "b": "n2", "c": "n3", "d": "n2", "idle": ""},
		catalog.ProtectionGroup{Selector: &catalog.Selector{NameRegex: ".*"}, Exclude: []string{"idle"}})
	rep, err := fx.eng.RunBackup(context.Background(), RunOptions{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Run.Status != catalog.RunSucceeded || rep.Run.Master != "n1" {
		t.Fatalf("run = %+v", rep.Run)
	}
	// master_last: n2, n3 then the master n1; one epoch per coordinator turn.
	want := []string{"n2/b@1", "n2/d@1", "n3/c@2", "n1/a@3"}
	if !slices.Equal(fx.f.backups, want) {
		t.Fatalf("backups = %v, want %v", fx.f.backups, want)
	}
	if got := strings.Join(rep.Run.NodeOrder, ","); got != "n2,n3,n1" {
		t.Fatalf("node order = %s", got)
	}
	points, _ := fx.store.RecoveryPoints(context.Background(), catalog.RecoveryPointFilter{Group: "g"})
	if len(points) != 4 {
		t.Fatalf("indexed %d recovery points, want 4", len(points))
	}
	stored, _ := fx.store.GetRun(context.Background(), rep.Run.ID)
	if stored.Status != catalog.RunSucceeded || stored.FinishedAt.IsZero() {
		t.Fatalf("stored run = %+v", stored)
	}
}

// A workload that moves from a node not yet visited to one already visited
// is found by verification (E8) and backed up where it runs now.
func TestRunBackupVerificationCatchesMigratedWorkload(t *testing.T) {
	t.Parallel()
	fx := newRunFixture(t, map[string]string{"a": "n1", "b": "n2", "c": "n3"}, catalog.ProtectionGroup{Workloads: []string{"a", "b", "c"}})
	hooks := RunHooks{BeforeNode: func(_ context.Context, node string, visited []string) {
		if node == "n3" { // c leaves n3 for n2, which was visited first
			fx.f.move("c", "n2")
		}
	}}
	rep, err := fx.eng.RunBackup(context.Background(), RunOptions{Group: "g", Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Run.Status != catalog.RunSucceeded {
		t.Fatalf("status = %s (%s)", rep.Run.Status, rep.Run.Error)
	}
	last := rep.Steps[len(rep.Steps)-1]
	if last.Workload != "c" || last.Phase != "verify" || last.Node != "n2" || last.Outcome != catalog.StepSucceeded {
		t.Fatalf("last step = %+v, want c backed up on n2 by verification", last)
	}
}

// A node that dies mid-run: its workload is reported with the reason, the
// run is partial, and what was captured stays indexed.
func TestRunBackupNodeDownIsPartialWithReason(t *testing.T) {
	t.Parallel()
	fx := newRunFixture(t, map[string]string{"a": "n1", "b": "n2", "c": "n3"}, catalog.ProtectionGroup{Workloads: []string{"a", "b", "c"}})
	hooks := RunHooks{BeforeNode: func(_ context.Context, node string, _ []string) {
		if node == "n3" {
			fx.f.mu.Lock()
			fx.f.down["n3"] = true
			fx.f.mu.Unlock()
		}
	}}
	rep, err := fx.eng.RunBackup(context.Background(), RunOptions{Group: "g", Hooks: hooks, VerifyAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Run.Status != catalog.RunPartial {
		t.Fatalf("status = %s, want partial", rep.Run.Status)
	}
	if len(rep.Missing) != 1 || rep.Missing[0].Name != "c" || !strings.Contains(rep.Missing[0].Reason, "n3") {
		t.Fatalf("missing = %+v, want c with a reason naming n3", rep.Missing)
	}
	skipped := rep.Steps[len(rep.Steps)-1]
	if skipped.Outcome != catalog.StepSkipped || skipped.Workload != "c" || skipped.Error == "" {
		t.Fatalf("last step = %+v, want a skipped step for c carrying the reason", skipped)
	}
}

func TestRunBackupConflictIsNotBackedUp(t *testing.T) {
	t.Parallel()
	fx := newRunFixture(t, map[string]string{"a": "n1", "b": "n2"}, catalog.ProtectionGroup{Workloads: []string{"a", "b"}})
	fx.f.active["b"] = []string{"n2", "n3"}
	rep, err := fx.eng.RunBackup(context.Background(), RunOptions{Group: "g", VerifyAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	// b has two writers: no copy of it can be trusted, so none is taken.
	for _, b := range fx.f.backups {
		if strings.Contains(b, "/b@") {
			t.Fatalf("b was backed up while active on two nodes: %v", fx.f.backups)
		}
	}
	if rep.Run.Status != catalog.RunPartial || len(rep.Missing) != 1 || !strings.Contains(rep.Missing[0].Reason, "n2, n3") {
		t.Fatalf("run %s, missing %+v: want partial naming both nodes of b", rep.Run.Status, rep.Missing)
	}
}

func TestRunBackupNothingSelectedFails(t *testing.T) {
	t.Parallel()
	fx := newRunFixture(t, map[string]string{"a": "n1"}, catalog.ProtectionGroup{Selector: &catalog.Selector{NameRegex: "^zzz"}})
	rep, err := fx.eng.RunBackup(context.Background(), RunOptions{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Run.Status != catalog.RunFailed || !strings.Contains(rep.Run.Error, "matches the selection") {
		t.Fatalf("run = %+v", rep.Run)
	}
}

func TestGroupStatusRPOAndUnprotected(t *testing.T) {
	t.Parallel()
	fx := newRunFixture(t, map[string]string{"a": "n1", "b": "n2"}, catalog.ProtectionGroup{Selector: &catalog.Selector{NameRegex: ".*"}, Workloads: []string{"ghost"}, RPO: time.Hour})
	ctx := context.Background()
	if err := fx.store.PutRecoveryPoint(ctx, catalog.RecoveryPoint{ID: "p1", Repository: "r", Cluster: "c", Group: "g", Workload: "a", CreatedAt: time.Date(2025, 12, 31, 23, 30, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	st, err := fx.eng.GroupStatus(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]ProtectedWorkload{}
	for _, w := range st.Workloads {
		byName[w.Name] = w
	}
	if w := byName["a"]; !w.RPOMet || w.Node != "n1" || w.LastRecoveryPoint != "p1" {
		t.Fatalf("a = %+v, want rpo met on n1 with p1", w)
	}
	if w := byName["b"]; w.RPOMet {
		t.Fatalf("b has no recovery point: rpo cannot be met")
	}
	if strings.Join(st.Unprotected, ",") != "b" || strings.Join(st.Missing, ",") != "ghost" {
		t.Fatalf("unprotected %v missing %v", st.Unprotected, st.Missing)
	}
}
