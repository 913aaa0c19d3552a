package postgres

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/migrate"
	pgtest "github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
)

// TestUpgradeFromVersion1 builds a catalog as the release that only knew
// migration 0001 left it, with a cluster and a granted epoch, and checks that
// Open upgrades it in place: the old records survive and the tables of 0002
// exist.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t).CreateDatabase(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := migrate.Run(ctx, db, dialect, migrations[:1], time.Now); err != nil {
		t.Fatalf("apply 0001 only: %v", err)
	}
	for _, stmt := range []string{
		`INSERT INTO clusters (name, shared_volume, shared_volume_id, master_policy, master_node, join_order) VALUES ('prod', '/v', 'vol', 'random', '', 'parallel')`,
		`INSERT INTO cluster_nodes (cluster_name, ordinal, name, endpoint, position) VALUES ('prod', 0, 'n1', 'http://n1', 0)`,
		`INSERT INTO lease_epochs (cluster_name, epoch) VALUES ('prod', 7)`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatalf("Open of a version 1 catalog: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if v, err := s.SchemaVersion(ctx); err != nil || v != LatestSchemaVersion() || v < 2 {
		t.Fatalf("SchemaVersion after upgrade = %d, %v; want %d", v, err, LatestSchemaVersion())
	}
	c, err := s.GetCluster(ctx, "prod")
	if err != nil || len(c.Nodes) != 1 || c.Nodes[0].Name != "n1" {
		t.Errorf("cluster after upgrade = %+v, %v; want prod with node n1", c, err)
	}
	l, err := s.AcquireLease(ctx, "prod", "n1", "e", time.Minute, time.Unix(100, 0))
	if err != nil || l.Epoch != 8 {
		t.Errorf("AcquireLease after upgrade = epoch %d, %v; want 8", l.Epoch, err)
	}
	for _, table := range []string{"repositories", "protection_groups", "runs", "run_steps", "recovery_points"} {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != 0 {
			t.Errorf("table %s after upgrade: %d rows, %v; want an empty table", table, n, err)
		}
	}
}
