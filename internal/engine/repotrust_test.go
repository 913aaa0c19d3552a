package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
)

// recordingAgents wraps the fake cluster's agents: it keeps every backup,
// node-backup and restore request body as the HTTP client would send it,
// and lets a test change the repositories a node reports.
type recordingAgents struct {
	mu     sync.Mutex
	bodies []string
	repos  map[string][]api.RepositoryFact // node -> reported repositories, when set
	// resultID, when set, replaces the repository id in backup results (an
	// agent that wrote into another repository than the one named); "-"
	// removes it.
	resultID string
}

type recordingAgent struct {
	AgentClient
	node string
	rec  *recordingAgents
}

func (r *recordingAgents) dial(f *fakeCluster) Dialer {
	return func(node, endpoint string) (AgentClient, error) {
		a, err := f.dial(node, endpoint)
		return &recordingAgent{AgentClient: a, node: node, rec: r}, err
	}
}

func (r *recordingAgents) record(v any) {
	b, _ := json.Marshal(v)
	r.mu.Lock()
	r.bodies = append(r.bodies, string(b))
	r.mu.Unlock()
}

func (a *recordingAgent) Node(ctx context.Context) (api.NodeFacts, error) {
	f, err := a.AgentClient.Node(ctx)
	a.rec.mu.Lock()
	defer a.rec.mu.Unlock()
	if repos, ok := a.rec.repos[a.node]; ok {
		f.Repositories = repos
	}
	return f, err
}

func (a *recordingAgent) Backup(ctx context.Context, w string, req api.BackupRequest) (api.BackupResult, error) {
	a.rec.record(req)
	res, err := a.AgentClient.Backup(ctx, w, req)
	a.rec.mu.Lock()
	switch a.rec.resultID {
	case "":
	case "-":
		res.RepositoryID = ""
	default:
		res.RepositoryID = a.rec.resultID
	}
	a.rec.mu.Unlock()
	return res, err
}

func (a *recordingAgent) NodeBackup(ctx context.Context, req api.NodeBackupRequest) (api.NodeBackupResult, error) {
	a.rec.record(req)
	return a.AgentClient.NodeBackup(ctx, req)
}

func (a *recordingAgent) Restore(ctx context.Context, w string, req api.RestoreRequest) (api.RestoreResult, error) {
	a.rec.record(req)
	return a.AgentClient.Restore(ctx, w, req)
}

// trustFixture is a fake three-node cluster, a real repository "r" whose
// catalog record carries every kind of secret, and an engine whose agent
// calls are recorded.
type trustFixture struct {
	eng    *Engine
	store  *memstore.Store
	f      *fakeCluster
	rec    *recordingAgents
	repo   catalog.Repository
	repoID string
}

func newTrustFixture(t *testing.T) *trustFixture {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	const password = "pw-Secret-1"
	r, err := repository.Init(ctx, be, password, repository.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fx := &trustFixture{repoID: r.ID(), rec: &recordingAgents{repos: map[string][]api.RepositoryFact{}}, store: memstore.New(),
		f: newFakeCluster([]string{"n1", "n2", "n3"}, map[string]string{"a": "n1", "b": "n2"})}
	r.Close()
	be.Close()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fx.eng, err = New(Options{Store: fx.store, Dial: fx.rec.dial(fx.f), Now: func() time.Time { return clock },
		Wait: func(context.Context, time.Duration) error { return nil }, Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	for i, n := range fx.f.nodes {
		nodes[n] = fmt.Sprintf("http://127.0.0.1:%d", 7001+i)
	}
	if _, err := fx.eng.RegisterCluster(ctx, ClusterSpec{Name: "c", SharedVolume: "/vol", Nodes: nodes, MasterPolicy: MasterFixed, MasterNode: "n1", JoinOrder: JoinParallel}); err != nil {
		t.Fatal(err)
	}
	// Every secret a repository record can hold; none may reach an agent.
	fx.repo = catalog.Repository{Name: "r", URL: dir, Password: password, AccessKeyID: "AKIA-Secret-4", SecretAccessKey: "sk-Secret-2", SessionToken: "st-Secret-3", Endpoint: "minio.example:9000"}
	if err := fx.store.PutRepository(ctx, fx.repo); err != nil {
		t.Fatal(err)
	}
	return fx
}

func (fx *trustFixture) putGroup(t *testing.T, extractAt string) error {
	t.Helper()
	return fx.eng.PutGroup(context.Background(), catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "r", Workloads: []string{"a", "b"},
		Consistency: api.ConsistencyApplication, NodeOrder: OrderMasterLast, ExtractAt: extractAt})
}

// H1: backup, node-backup and restore requests name the repository and
// carry the engine's id for it, and no URL, endpoint, credential or password.
func TestAgentRequestsCarryNoRepositorySecret(t *testing.T) {
	t.Parallel()
	fx := newTrustFixture(t)
	ctx := context.Background()
	if err := fx.putGroup(t, ExtractAtBackup); err != nil {
		t.Fatal(err)
	}
	rep, err := fx.eng.RunBackup(ctx, RunOptions{Group: "g"})
	if err != nil || rep.Run.Status != catalog.RunSucceeded {
		t.Fatalf("backup: %v %+v", err, rep.Run)
	}
	if err := fx.putGroup(t, ExtractAtRestore); err != nil {
		t.Fatal(err)
	}
	_, _ = fx.eng.RunBackup(ctx, RunOptions{Group: "g"}) // the fake refuses node backups; the request is what counts
	spec := restoreSpec(TargetActiveNode, "")
	_, _ = fx.eng.RunRestore(ctx, spec, nil, RestoreHooks{}) // likewise
	fx.rec.mu.Lock()
	bodies := fx.rec.bodies
	fx.rec.mu.Unlock()
	var kinds []string
	for _, b := range bodies {
		switch {
		case strings.Contains(b, `"operation_id"`):
			kinds = append(kinds, "restore")
		case strings.Contains(b, `"workloads"`):
			kinds = append(kinds, "node-backup")
		default:
			kinds = append(kinds, "backup")
		}
		if !strings.Contains(b, `"repository":"r"`) || !strings.Contains(b, `"repository_id":"`+fx.repoID+`"`) {
			t.Errorf("request %s does not name repository r with id %s", b, fx.repoID)
		}
		for _, secret := range []string{fx.repo.Password, fx.repo.SecretAccessKey, fx.repo.SessionToken, fx.repo.AccessKeyID, fx.repo.URL, fx.repo.Endpoint, "password", "url"} {
			if strings.Contains(b, secret) {
				t.Errorf("request carries %q: %s", secret, b)
			}
		}
	}
	for _, want := range []string{"backup", "node-backup", "restore"} {
		if !strings.Contains(strings.Join(kinds, " "), want) {
			t.Errorf("no %s request recorded (recorded: %v)", want, kinds)
		}
	}
}

// A protection group whose repository some node's agent has no block for
// is refused when it is written and when it runs, naming the node and the
// block to add.
func TestGroupRepositoryMustBeOnEveryNode(t *testing.T) {
	t.Parallel()
	fx := newTrustFixture(t)
	ctx := context.Background()
	fx.rec.repos["n2"] = []api.RepositoryFact{{Name: "other"}}
	err := fx.putGroup(t, ExtractAtBackup)
	var rerr *RepositoryNotOnNodesError
	if !errors.As(err, &rerr) || len(rerr.Nodes) != 1 || rerr.Nodes[0].Node != "n2" || rerr.Nodes[0].Problem != ProblemRepositoryMissing {
		t.Fatalf("PutGroup with n2 lacking the repository: %v, want a RepositoryNotOnNodesError for n2", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `repository "r" {`) || !strings.Contains(msg, "defines: other") {
		t.Errorf("message %q should show the block to add and what n2 has", msg)
	}
	if _, err := fx.eng.GetGroup(ctx, "g"); err == nil {
		t.Error("the refused group was recorded")
	}

	delete(fx.rec.repos, "n2")
	if err := fx.putGroup(t, ExtractAtBackup); err != nil {
		t.Fatal(err)
	}
	fx.rec.repos["n3"] = nil // the block was removed from n3 since
	if _, err := fx.eng.RunBackup(ctx, RunOptions{Group: "g"}); !errors.As(err, &rerr) || rerr.Nodes[0].Node != "n3" {
		t.Fatalf("RunBackup with n3 lacking the repository: %v", err)
	}
	if len(fx.f.backups) != 0 {
		t.Errorf("backups %v ran although a node cannot use the repository", fx.f.backups)
	}

	// A node whose facts show another id (it last opened the repository
	// before it was re-created at the same location) is not refused: the
	// facts are stale, and the agent checks the id itself on each request.
	fx.rec.repos["n3"] = []api.RepositoryFact{{Name: "r", ID: "0123456789abcdef"}}
	if rep, err := fx.eng.RunBackup(ctx, RunOptions{Group: "g"}); err != nil || rep.Run.Status != catalog.RunSucceeded {
		t.Fatalf("RunBackup with n3's facts showing an old id of r: %v %+v", err, rep.Run)
	}
	if err := fx.putGroup(t, ExtractAtBackup); err != nil {
		t.Fatalf("PutGroup with n3's facts showing an old id of r: %v", err)
	}
	fx.rec.repos["n3"] = []api.RepositoryFact{{Name: "r", ID: fx.repoID}}
	if rep, err := fx.eng.RunBackup(ctx, RunOptions{Group: "g"}); err != nil || rep.Run.Status != catalog.RunSucceeded {
		t.Fatalf("RunBackup with every node right: %v %+v", err, rep.Run)
	}
}
