package agenttest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
)

// A file the workload rewrites in place at the same size within one
// timestamp tick of a backup keeps its size and time: the next backup
// through the mirror must still hold the new content (the mirror copies it
// again, and the repository reads it again).
func TestMirrorBackupOfAFileRewrittenWithinOneTick(t *testing.T) {
	repo := newRepo(t)
	c := Start(t, Options{Nodes: 1, Workloads: []string{"web"}, Repositories: []Repository{repo}, SnapshotMethod: "mirror"})
	dir := c.WorkloadDataDir("web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "page.db")
	old, fresh := bytes.Repeat([]byte("A"), 8192), bytes.Repeat([]byte("B"), 8192)
	if err := os.WriteFile(f, old, 0o644); err != nil {
		t.Fatal(err)
	}
	tick := time.Now().Truncate(4 * time.Millisecond)
	if err := os.Chtimes(f, tick, tick); err != nil {
		t.Fatal(err)
	}
	c.StartWorkload(t, "node-1", "web")
	ctx := context.Background()
	cl := c.Client(t, "node-1")
	if _, err := cl.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	backup := func(run string) api.BackupResult {
		t.Helper()
		res, err := cl.Backup(ctx, "web", api.BackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: run})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	backup("r1")
	if err := os.WriteFile(f, fresh, 0o644); err != nil { // in place: same inode and size
		t.Fatal(err)
	}
	if err := os.Chtimes(f, tick, tick); err != nil { // within the same tick
		t.Fatal(err)
	}
	res := backup("r2")

	be, err := local.Open(repo.URL)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Open(ctx, be, repo.Password, repository.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dst := t.TempDir()
	if _, err := r.Restore(ctx, res.SnapshotID, repository.RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	_ = filepath.WalkDir(dst, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Name() == "page.db" {
			got, err = os.ReadFile(p)
		}
		return err
	})
	if !bytes.Equal(got, fresh) {
		n := min(4, len(got))
		t.Fatalf("restored page.db %q..., want the rewritten content", got[:n])
	}
}
