package provider

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/postgresql"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// TestAccPostgresWorkload protects a real PostgreSQL server whose data
// directory is on the shared volume: an application-consistent backup
// (online: pg_backup_start/pg_backup_stop, nothing frozen) while it takes writes,
// more rows after the backup, then a restore that migrates the database to
// the other node. The restored server starts there and holds exactly the
// rows committed before the backup.
func TestAccPostgresWorkload(t *testing.T) {
	testAccPreCheck(t)
	if postgresql.FindBinDir() == "" {
		t.Fatal("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin or on PATH: install the postgresql package (.ci/run does)")
	}
	port := freeTCPPort(t)
	repo := testRepository(t)
	c := agenttest.Start(t, agenttest.Options{Nodes: 2, Repositories: []agenttest.Repository{repo}, Traversable: true, ExtraWorkloads: []string{"db"}, ExtraConfig: fmt.Sprintf(`
workload "db" {
  driver = "postgresql"
  paths  = ["db/data"]
  postgresql {
    port             = %d
    listen_addresses = "127.0.0.1"
  }
}
`, port)})
	e := &testEnv{cluster: c, catalog: filepath.Join(t.TempDir(), "catalog.db"), repoDir: repo.URL}
	setup, err := postgresql.New(postgresql.Config{Workload: "db", DataDir: filepath.Join(c.SharedVolume, "db", "data"), Port: port,
		StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.InitDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.StartWorkload(t, "node-1", "db")
	db := openPostgres(t, port)
	pgExec(t, db, "CREATE TABLE orders (id int PRIMARY KEY, item text)")
	pgExec(t, db, "INSERT INTO orders SELECT n, 'item ' || n FROM generate_series(1, 1000) n")

	repoDir := e.repoDir
	backup := testAccBackupConfig(e, repoDir, `  workloads   = ["db"]
  consistency = "application"`, `  triggers = { n = "1" }`)
	restore := testAccRepoConfig(e, repoDir) + restoreJob(`  workloads = [{ name = "db", target = "node", node = "node-2", on_conflict = "migrate" }]`)
	watch := watchOverlaps(t, e)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{
				Config: backup,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("db").AtMapKey("node"), knownvalue.StringExact("node-1")),
				},
				Check: func(*terraform.State) error {
					// The copy holds the data, not the running server's lock file.
					repo, done := e.openRepo(t)
					defer done()
					snaps, err := repo.Snapshots(context.Background(), repository.SnapshotFilter{Workload: "db"})
					if err != nil || len(snaps) != 1 {
						return fmt.Errorf("recovery points of db: %d, %v", len(snaps), err)
					}
					for file, want := range map[string]bool{"db/data/PG_VERSION": true, "db/data/postmaster.pid": false, "db/data/backup_label": true} {
						rc, _, err := repo.OpenFile(context.Background(), snaps[0].ID, file)
						if err == nil {
							rc.Close()
						}
						if (err == nil) != want {
							return fmt.Errorf("%s in the recovery point: %v, want present=%v", file, err, want)
						}
					}
					// Written after the recovery point: must not come back.
					pgExec(t, db, "INSERT INTO orders SELECT n, 'late ' || n FROM generate_series(1001, 1500) n")
					pgExec(t, db, "UPDATE orders SET item = 'changed' WHERE id <= 10")
					return nil
				},
			},
			{
				Config: restore,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
				},
				Check: resource.ComposeTestCheckFunc(expectActiveOn(t, e, "db", "node-2"), func(*terraform.State) error {
					restored := openPostgres(t, port) // the server now runs on node-2
					var n, changed int
					var maxID int
					if err := restored.QueryRow("SELECT count(*), max(id), count(*) FILTER (WHERE item = 'changed') FROM orders").Scan(&n, &maxID, &changed); err != nil {
						return fmt.Errorf("query the restored database: %w", err)
					}
					if n != 1000 || maxID != 1000 || changed != 0 {
						return fmt.Errorf("restored database has %d rows (max id %d, %d changed), want the 1000 rows of the backup, unchanged", n, maxID, changed)
					}
					return nil
				}),
			},
		},
	})
	watch.check(t)
}

func openPostgres(t *testing.T, port int) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=10", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("connect to PostgreSQL on port %d: %v", port, err)
	}
	return db
}

func pgExec(t *testing.T, db *sql.DB, stmt string) {
	t.Helper()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
