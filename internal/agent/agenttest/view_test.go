package agenttest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/postgresql"
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
	// The recovery point names the view or mirror it was read from, not
	// the descriptor the agent read it through.
	if snap, err := r.Snapshot(ctx, res.SnapshotID); err != nil || strings.HasPrefix(snap.Root, "/proc/") || !strings.Contains(snap.Root, "web") {
		t.Errorf("recovery point root %q (%v), want the view's or mirror's path", snap.Root, err)
	}
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

// traversable opens every directory from dir up to the temporary
// directory to other users (0755), for a server running as postgres.
func traversable(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+string(filepath.Separator)); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func pgPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func pgOpen(t *testing.T, port int) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=10", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func pgExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// A PostgreSQL data directory that is a btrfs subvolume is backed up (with
// the freeze method; the online method copies while the server runs) from
// a read-only snapshot, without the running server's postmaster.pid; the
// restored directory starts as a server holding exactly the rows committed
// before the backup.
func TestPostgresBackupFromBtrfsSnapshot(t *testing.T) {
	if postgresql.FindBinDir() == "" {
		t.Skip("PostgreSQL server binaries not found: install the postgresql package (tools/test-deps.sh does)")
	}
	vol := testfs.Mount(t, "btrfs")
	traversable(t, vol)
	shared := filepath.Join(vol, "shared")
	data := filepath.Join(shared, "db", "data")
	if err := os.MkdirAll(filepath.Dir(data), 0o755); err != nil {
		t.Fatal(err)
	}
	testfs.Run(t, "btrfs", "subvolume", "create", data)
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Skipf("no postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o700); err != nil {
		t.Fatal(err)
	}
	port := pgPort(t)
	repo := newRepo(t)
	c := Start(t, Options{Nodes: 1, Repositories: []Repository{repo}, Traversable: true, SharedVolume: shared, ExtraWorkloads: []string{"db"},
		ExtraConfig: fmt.Sprintf("\nworkload \"db\" {\n  driver = \"postgresql\"\n  paths  = [\"db/data\"]\n  postgresql {\n    port = %d\n    listen_addresses = \"127.0.0.1\"\n    backup_method = \"freeze\"\n  }\n}\n", port)})
	setup, err := postgresql.New(postgresql.Config{Workload: "db", DataDir: data, Port: port, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.InitDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.StartWorkload(t, "node-1", "db")
	db := pgOpen(t, port)
	pgExec(t, db, "CREATE TABLE orders (id int PRIMARY KEY, item text)")
	pgExec(t, db, "INSERT INTO orders SELECT n, 'item ' || n FROM generate_series(1, 1000) n")
	ctx := context.Background()
	cl := c.Client(t, "node-1")
	if _, err := cl.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	res, err := cl.Backup(ctx, "db", api.BackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ViewMethod != agent.SnapshotBtrfs {
		t.Errorf("view %q (%s), want btrfs_snapshot for a data directory that is a subvolume", res.ViewMethod, res.ViewNote)
	}
	pgExec(t, db, "INSERT INTO orders SELECT n, 'late ' || n FROM generate_series(1001, 1500) n")

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
	traversable(t, target)
	if _, err := r.Restore(ctx, res.SnapshotID, repository.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(target, "db", "data")
	// The recovery point holds the path's parents as the agent's (0700),
	// as with the mirror; a restore through the agent swaps the path only.
	traversable(t, filepath.Dir(restored))
	if _, err := os.Stat(filepath.Join(restored, "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("postmaster.pid of the running server is in the recovery point: %v", err)
	}
	port2 := pgPort(t)
	check, err := postgresql.New(postgresql.Config{Workload: "restored", DataDir: restored, Port: port2, ListenAddresses: "127.0.0.1", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := check.Start(ctx); err != nil {
		t.Fatalf("start a server on the restored data: %v", err)
	}
	defer func() {
		if err := check.Stop(context.Background()); err != nil {
			t.Errorf("stop the restored server: %v", err)
		}
	}()
	var n, maxID int
	if err := pgOpen(t, port2).QueryRow("SELECT count(*), max(id) FROM orders").Scan(&n, &maxID); err != nil {
		t.Fatal(err)
	}
	if n != 1000 || maxID != 1000 {
		t.Errorf("restored server holds %d rows (max id %d), want the 1000 committed before the backup", n, maxID)
	}
}
