package agenttest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/postgresql"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
)

// pgCluster is a two-node cluster with a PostgreSQL workload "db" running
// on node-1, with a table items (id int).
func pgCluster(t *testing.T) (*Cluster, Repository, int) {
	t.Helper()
	if postgresql.FindBinDir() == "" {
		t.Fatal("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin or on PATH: install the postgresql package (.ci/run does)")
	}
	port := pgFreePort(t)
	repo := newRepo(t)
	c := Start(t, Options{Nodes: 2, Repositories: []Repository{repo}, Traversable: true, ExtraWorkloads: []string{"db"}, ExtraConfig: fmt.Sprintf(`
workload "db" {
  driver = "postgresql"
  paths  = ["db/data"]
  postgresql {
    port             = %d
    listen_addresses = "127.0.0.1"
  }
}
`, port)})
	setup, err := postgresql.New(postgresql.Config{Workload: "db", DataDir: filepath.Join(c.SharedVolume, "db", "data"), Port: port, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.InitDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.StartWorkload(t, "node-1", "db")
	conn := pgConnect(t, port)
	if _, err := conn.Exec(context.Background(), "CREATE TABLE items (id int PRIMARY KEY, pad text)"); err != nil {
		t.Fatal(err)
	}
	return c, repo, port
}

func pgFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func pgConnect(t *testing.T, port int) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// An application-consistent backup of a PostgreSQL workload through a
// real agent is taken online while a writer commits: nothing is frozen
// (stun 0, the writer commits during the backup), and the recovery point
// restored on the other node starts and holds a gap-free prefix of the
// rows: all acknowledged before the backup was asked for, none sent after
// it returned.
func TestPostgresOnlineBackupThroughTheAgent(t *testing.T) {
	c, repo, port := pgCluster(t)
	ctx := context.Background()
	var sent, acked atomic.Int64
	done, werr := make(chan struct{}), make(chan error, 1)
	wconn := pgConnect(t, port)
	go func() {
		for i := int64(1); ; i++ {
			select {
			case <-done:
				werr <- nil
				return
			default:
			}
			sent.Store(i)
			if _, err := wconn.Exec(ctx, "INSERT INTO items VALUES ($1, 'row')", i); err != nil {
				werr <- err
				return
			}
			acked.Store(i)
		}
	}()
	if !proc.WaitUntil(ctx, 30*time.Second, func() bool { return acked.Load() >= 100 }) {
		t.Fatal("the writer did not start")
	}
	n1 := c.Client(t, "node-1")
	if _, err := n1.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	ackedBefore := acked.Load()
	res, err := n1.Backup(ctx, "db", api.BackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r1"})
	sentAfter := sent.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !proc.WaitUntil(ctx, 30*time.Second, func() bool { return acked.Load() >= sentAfter+20 }) {
		t.Fatal("the writer stopped after the backup")
	}
	close(done)
	if err := <-werr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if res.Method != "online" || res.StunMS != 0 || res.SnapshotID == "" {
		t.Fatalf("backup result: method %q, stun %d ms, snapshot %q; want online, 0, a snapshot", res.Method, res.StunMS, res.SnapshotID)
	}
	t.Logf("online backup: copy %d ms, upload %d ms, %d bytes", res.CopyMS, res.UploadMS, res.TotalBytes)
	// The recovery point describes itself like any other (extract mode,
	// agent version, the workload's definition), for a rebuilt catalog and
	// a break-glass restore.
	func() {
		be, err := local.Open(repo.URL)
		if err != nil {
			t.Fatal(err)
		}
		r, err := repository.Open(ctx, be, repo.Password, repository.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		snaps, err := r.Snapshots(ctx, repository.SnapshotFilter{Workload: "db"})
		if err != nil || len(snaps) != 1 {
			t.Fatalf("recovery points: %d, %v; want the online one", len(snaps), err)
		}
		for _, k := range []string{api.LabelExtractAt, api.LabelAgentVersion, api.LabelDefinitionPrefix + "db"} {
			if snaps[0].Labels[k] == "" {
				t.Errorf("online recovery point has no %q label (labels %v)", k, snaps[0].Labels)
			}
		}
	}()

	// A crash-consistent backup still freezes.
	crash, err := n1.Backup(ctx, "db", api.BackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyCrash, Cluster: "c", Group: "g", RunID: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	if crash.Method == "online" {
		t.Fatalf("a crash-consistent backup was taken online")
	}

	c.StopWorkload(t, "node-1", "db")
	n2 := c.Client(t, "node-2")
	if _, err := n2.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Restore(ctx, "db", api.RestoreRequest{Epoch: 2, OperationID: "op", Repository: repo.Name, SnapshotID: res.SnapshotID, Verify: api.VerifyNone}); err != nil {
		t.Fatal(err)
	}
	c.StartWorkload(t, "node-2", "db")
	var n, maxID int64
	if err := pgConnect(t, port).QueryRow(ctx, "SELECT count(*), coalesce(max(id), 0) FROM items").Scan(&n, &maxID); err != nil {
		t.Fatal(err)
	}
	t.Logf("restored %d rows, max %d; acknowledged before the request %d, sent when it returned %d", n, maxID, ackedBefore, sentAfter)
	if n != maxID || maxID < ackedBefore || maxID > sentAfter {
		t.Fatalf("restored %d rows with max id %d; want a gap-free prefix between %d and %d", n, maxID, ackedBefore, sentAfter)
	}
}

// The server killed while the agent copies it online: the backup fails,
// no recovery point is stored, and the repository stays valid.
func TestPostgresOnlineBackupServerKilledMidCopy(t *testing.T) {
	c, repo, port := pgCluster(t)
	ctx := context.Background()
	// Enough data that the copy takes a while.
	if _, err := pgConnect(t, port).Exec(ctx, "INSERT INTO items SELECT n, repeat(md5(n::text), 20) FROM generate_series(1, 300000) n"); err != nil {
		t.Fatal(err)
	}
	mon := pgConnect(t, port)
	var postmaster int
	if err := mon.QueryRow(ctx, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'").Scan(&postmaster); err != nil {
		t.Fatal(err)
	}
	postmaster = proc.Parent(postmaster)
	// Kill the server once its backup has started and the session waits:
	// the agent is copying the data directory.
	killed := make(chan bool, 1)
	go func() {
		ok := proc.WaitUntil(ctx, time.Minute, func() bool {
			var n int
			err := mon.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clusterguard backup' AND state = 'idle' AND query ILIKE '%pg_walfile_name%'").Scan(&n)
			return err == nil && n > 0
		})
		killed <- ok && syscall.Kill(postmaster, syscall.SIGKILL) == nil
	}()
	n1 := c.Client(t, "node-1")
	if _, err := n1.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := n1.Backup(ctx, "db", api.BackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r1"})
	if !<-killed {
		t.Fatal("the test did not see the backup start, or could not kill the server")
	}
	if err == nil {
		t.Fatal("the backup succeeded although the server was killed during it")
	}
	t.Logf("backup failed as expected: %v", err)
	be, err := local.Open(repo.URL)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Open(ctx, be, repo.Password, repository.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	snaps, err := r.Snapshots(ctx, repository.SnapshotFilter{Workload: "db"})
	if err != nil || len(snaps) != 0 {
		t.Fatalf("recovery points after the failed backup: %d, %v; want none", len(snaps), err)
	}
	rep, err := r.Verify(ctx, repository.VerifyOptions{})
	if err != nil {
		t.Fatalf("verify the repository: %v", err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("the repository has problems after the failed backup: %v", rep.Problems)
	}
}
