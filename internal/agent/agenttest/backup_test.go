package agenttest

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// newRepo initialises a repository for a cluster's Options.Repositories.
func newRepo(t *testing.T) Repository {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(context.Background(), be, "pw", repository.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	repo.Close()
	return Repository{Name: "main", URL: dir, Password: "pw"}
}

// An agent holding an old epoch is refused when it tries to write, once
// another node was made coordinator (E3 fencing, over real processes).
func TestOldEpochRefusedAfterAnotherNodeClaims(t *testing.T) {
	repo := newRepo(t)
	c := Start(t, Options{Nodes: 2, Workloads: []string{"web"}, Repositories: []Repository{repo}})
	c.StartWorkload(t, "node-1", "web")
	ctx := context.Background()
	n1, n2 := c.Client(t, "node-1"), c.Client(t, "node-2")
	if _, err := n1.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	_, err := n1.Backup(ctx, "web", api.BackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"})
	if !client.IsStaleEpoch(err) || !strings.Contains(err.Error(), "node-2 has since claimed epoch 2") {
		t.Fatalf("backup with the old epoch: %v, want stale_epoch naming node-2", err)
	}
	if _, err := n1.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 2}); !client.IsStaleEpoch(err) {
		t.Fatalf("claiming an epoch another node holds: %v", err)
	}
}

// The agent releases a workload itself when the stun deadline passes, and
// refuses to store the copy made past it as consistent.
func TestStunDeadlineReleasesTheWorkload(t *testing.T) {
	repo := newRepo(t)
	c := Start(t, Options{Nodes: 1, Workloads: []string{"web"}, Repositories: []Repository{repo}})
	dir := c.WorkloadDataDir("web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 64<<20)
	_, _ = rand.Read(big)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	c.StartWorkload(t, "node-1", "web")
	ctx := context.Background()
	cl := c.Client(t, "node-1")
	if _, err := cl.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := cl.Backup(ctx, "web", api.BackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication,
		StunTimeoutMS: 1, Cluster: "c", Group: "g", RunID: "r"})
	if err == nil || !strings.Contains(err.Error(), "stun timeout") {
		t.Fatalf("backup past the stun deadline: %v, want an error about the stun timeout", err)
	}
	st := waitStatus(t, c.WorkloadStateDir("node-1", "web"), "thawed", func(s testworkload.Status) bool { return !s.Quiesced && s.Generated > 0 })
	if st.Quiesced {
		t.Fatal("the workload is still quiesced")
	}
}
