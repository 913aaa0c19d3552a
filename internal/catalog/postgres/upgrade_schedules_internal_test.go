package postgres

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/migrate"
	pgtest "github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
)

// TestUpgradeFromVersion3 opens a catalog as the release before schedules
// left it (migrations 0001-0003, with a restore operation) and checks that
// Open adds the schedule tables of 0004 and keeps the old records.
func TestUpgradeFromVersion3(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t).CreateDatabase(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := migrate.Run(ctx, db, dialect, migrations[:3], time.Now); err != nil {
		t.Fatalf("apply 0001-0003 only: %v", err)
	}
	if _, err := db.Exec(`INSERT INTO restore_operations (id, key, cluster, repository, spec, status, error, started_at)
VALUES ('op', 'k', 'prod', 'nfs', '{}', 'running', '', 1)`); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatalf("Open of a version 3 catalog: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if v, err := s.SchemaVersion(ctx); err != nil || v != LatestSchemaVersion() || v < 4 {
		t.Fatalf("SchemaVersion after upgrade = %d, %v; want %d", v, err, LatestSchemaVersion())
	}
	if op, err := s.GetRestore(ctx, "op"); err != nil || op.Key != "k" {
		t.Errorf("restore operation after upgrade = %+v, %v", op, err)
	}
	now := time.Unix(1000, 0)
	if err := s.PutSchedule(ctx, catalog.Schedule{Name: "nightly", Group: "pg", Cron: "0 2 * * *"}); err != nil {
		t.Fatalf("PutSchedule after upgrade: %v", err)
	}
	l, err := s.AcquireLeadership(ctx, catalog.RoleScheduler, "daemon-a", time.Minute, now)
	if err != nil || l.Token != 1 {
		t.Fatalf("AcquireLeadership after upgrade = %+v, %v; want token 1", l, err)
	}
	if err := s.ClaimSlot(ctx, catalog.ScheduleSlot{Schedule: "nightly", Slot: now, State: catalog.SlotRunning, Daemon: "daemon-a", Token: l.Token}, now); err != nil {
		t.Errorf("ClaimSlot after upgrade: %v", err)
	}
	// The token history is guarded by the schema itself.
	if _, err := s.db.ExecContext(ctx, `UPDATE leaderships SET highest_token = 0, token = 0 WHERE role = $1`, catalog.RoleScheduler); err == nil {
		t.Error("the schema let highest_token decrease")
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM leaderships`); err == nil {
		t.Error("the schema let a leadership row be deleted")
	}
}
