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

// TestUpgradeFromVersion4 opens a catalog as the release before owners and
// heartbeats left it (0001-0004, a run and a restore operation running) and
// checks that Open adds them by 0005: the old records read back with no
// owner and no heartbeat, and can be taken over.
func TestUpgradeFromVersion4(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t).CreateDatabase(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := migrate.Run(ctx, db, dialect, migrations[:4], time.Now); err != nil {
		t.Fatalf("apply 0001-0004 only: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO restore_operations (id, key, cluster, repository, spec, status, error, started_at) VALUES ('op', 'k', 'prod', 'nfs', '{}', 'running', '', 1)`,
		`INSERT INTO runs (id, group_name, cluster, master, node_order, expected, status, error, started_at) VALUES ('run', 'g', 'prod', 'engine', '[]', '[]', 'running', '', 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatalf("Open of a version 4 catalog: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if v, err := s.SchemaVersion(ctx); err != nil || v != LatestSchemaVersion() || v < 5 {
		t.Fatalf("SchemaVersion after upgrade = %d, %v; want %d", v, err, LatestSchemaVersion())
	}
	op, err := s.GetRestore(ctx, "op")
	if err != nil || op.Owner != "" || !op.HeartbeatAt.IsZero() {
		t.Fatalf("restore operation after upgrade = %+v, %v; want no owner, no heartbeat", op, err)
	}
	run, err := s.GetRun(ctx, "run")
	if err != nil || run.Owner != "" || !run.HeartbeatAt.IsZero() {
		t.Fatalf("run after upgrade = %+v, %v; want no owner, no heartbeat", run, err)
	}
	now := time.Unix(100, 0)
	if got, err := s.ClaimRun(ctx, "run", "", "daemon", now, now); err != nil || got.Owner != "daemon" {
		t.Fatalf("take-over of the old run: %+v, %v", got, err)
	}
	if ops, err := s.RunningRestores(ctx); err != nil || len(ops) != 1 || ops[0].ID != "op" {
		t.Fatalf("RunningRestores after upgrade = %+v, %v", ops, err)
	}
}
