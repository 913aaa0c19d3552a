package agenttest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testfs"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// holdBuffered keeps every record in the workload's memory until it is
// quiesced, so a backup that did not quiesce it would hold none.
var holdBuffered = map[string]string{"CLUSTERGUARD_TESTWORKLOAD_INTERVAL": "5ms", "CLUSTERGUARD_TESTWORKLOAD_FLUSH_EVERY": "1000000"}

// backupAndRestore backs web up on node-1 and restores the recovery point
// into a new directory, returning the result and the restored data dir.
func backupAndRestore(t *testing.T, c *Cluster, repo Repository, run string) (api.BackupResult, string) {
	t.Helper()
	ctx := context.Background()
	res, err := c.Client(t, "node-1").Backup(ctx, "web", api.BackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication,
		Cluster: "c", Group: "g", RunID: run})
	if err != nil {
		t.Fatal(err)
	}
	be, err := local.Open(repo.URL)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Open(ctx, be, repo.Password, repository.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	target := t.TempDir()
	if _, err := r.Restore(ctx, res.SnapshotID, repository.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	return res, filepath.Join(target, "apps", "web")
}

// checkRecords asserts the restored records are 1..n with n >= atLeast.
func checkRecords(t *testing.T, dir string, atLeast int64) {
	t.Helper()
	recs, err := testworkload.ReadRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(recs)) < atLeast {
		t.Fatalf("restored %d records, want at least the %d generated before the backup (flushed on quiesce)", len(recs), atLeast)
	}
	for i, r := range recs {
		if r.Seq != int64(i+1) {
			t.Fatalf("restored record %d has seq %d: records are missing", i, r.Seq)
		}
	}
}

// A backup of an exec workload on XFS reads a reflink view: the records
// the workload flushed when quiesced are all in the restored data, the
// view is gone afterwards, and an agent that starts removes the views a
// crashed run left behind.
func TestReflinkBackupOnXFS(t *testing.T) {
	vol := testfs.Mount(t, "xfs")
	repo := newRepo(t)
	c := Start(t, Options{Nodes: 1, Workloads: []string{"web"}, Repositories: []Repository{repo}, WorkloadEnv: holdBuffered,
		SharedVolume: filepath.Join(vol, "shared")})
	c.StartWorkload(t, "node-1", "web")
	if _, err := c.Client(t, "node-1").ClaimCoordinator(context.Background(), api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	before := waitStatus(t, c.WorkloadStateDir("node-1", "web"), "buffered records", func(s testworkload.Status) bool { return s.Generated >= 20 })
	res, dir := backupAndRestore(t, c, repo, "r1")
	if res.ViewMethod != agent.SnapshotReflink || res.ViewNote != "" {
		t.Errorf("view %q (%s), want reflink on XFS", res.ViewMethod, res.ViewNote)
	}
	checkRecords(t, dir, before.Generated)
	views := filepath.Join(c.SharedVolume, agent.ViewsDir, "node-1")
	if left, _ := os.ReadDir(filepath.Join(views, "web")); len(left) != 0 {
		t.Errorf("views left after the backup: %v", left)
	}
	// The second backup's view has new inodes: unchanged files are still
	// reused from the parent (only records.log changed).
	res2, dir2 := backupAndRestore(t, c, repo, "r2")
	if res2.ParentID != res.SnapshotID || res2.BytesRead > res.BytesRead+1<<20 {
		t.Errorf("second backup: parent %q (want %q), read %d bytes", res2.ParentID, res.SnapshotID, res2.BytesRead)
	}
	checkRecords(t, dir2, before.Generated)

	// A crashed run's view is removed when the agent starts again.
	crashed := filepath.Join(views, "web", "crashed-run", "apps", "web")
	if err := os.MkdirAll(crashed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crashed, "records.log"), []byte("seq=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.StopAgent(t, "node-1")
	c.StartAgent(t, "node-1")
	if _, err := os.Stat(filepath.Join(views, "web", "crashed-run")); !os.IsNotExist(err) {
		t.Errorf("the crashed run's view survived the agent's start: %v", err)
	}
}

// On ext4 the backup falls back to the mirror, says so in the result of
// every backup and once in the agent's log, and still holds every record.
func TestMirrorFallbackOnExt4(t *testing.T) {
	vol := testfs.Mount(t, "ext4")
	repo := newRepo(t)
	c := Start(t, Options{Nodes: 1, Workloads: []string{"web"}, Repositories: []Repository{repo}, WorkloadEnv: holdBuffered,
		SharedVolume: filepath.Join(vol, "shared")})
	c.StartWorkload(t, "node-1", "web")
	if _, err := c.Client(t, "node-1").ClaimCoordinator(context.Background(), api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	before := waitStatus(t, c.WorkloadStateDir("node-1", "web"), "buffered records", func(s testworkload.Status) bool { return s.Generated >= 20 })
	for _, run := range []string{"r1", "r2"} {
		res, dir := backupAndRestore(t, c, repo, run)
		if res.ViewMethod != agent.SnapshotMirror || !strings.Contains(res.ViewNote, "cannot clone") {
			t.Errorf("backup %s: view %q (%q), want mirror with the reason", run, res.ViewMethod, res.ViewNote)
		}
		checkRecords(t, dir, before.Generated)
	}
	log, err := os.ReadFile(c.Node("node-1").LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "no reflink or snapshot on the shared volume"); n != 1 {
		t.Errorf("the agent log says %d times that it falls back to the mirror, want once", n)
	}
}
