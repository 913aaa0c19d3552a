package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/migrate"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/postgres"
	pgtest "github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
)

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t).CreateDatabase(t)

	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("Open on a fresh database: %v", err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != postgres.LatestSchemaVersion() {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, postgres.LatestSchemaVersion())
	}
	if _, err := s.AcquireLease(ctx, "prod", "a", "e", time.Minute, time.Unix(100, 0)); err != nil {
		t.Fatalf("AcquireLease: %v", err)
	}
	s.Close()

	// Re-open: nothing to apply, state kept.
	s, err = postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("re-open: %v", err)
	}
	l, err := s.AcquireLease(ctx, "prod", "a", "e", time.Minute, time.Unix(100, 0))
	if err != nil || l.Epoch != 2 {
		t.Errorf("AcquireLease after re-open = epoch %d, %v; want 2", l.Epoch, err)
	}
	s.Close()

	raw := rawDB(t, url)
	var rows int
	if err := raw.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != postgres.LatestSchemaVersion() {
		t.Errorf("schema_migrations rows = %d, %v; want %d", rows, err, postgres.LatestSchemaVersion())
	}

	// A newer release has been here.
	future := postgres.LatestSchemaVersion() + 1
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from_the_future', '2099-01-01T00:00:00Z')`, future); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, url, postgres.Options{})
	var newer *migrate.NewerSchemaError
	if !errors.As(err, &newer) || newer.Found != future {
		t.Fatalf("Open of a newer catalog = %v, want a *migrate.NewerSchemaError with Found %d", err, future)
	}
	if !strings.Contains(err.Error(), "upgrade the provider") {
		t.Errorf("error %q does not say to upgrade the provider", err)
	}
}

// TestConcurrentFirstOpen: several engines start against one empty database
// at once; the advisory lock lets exactly one apply each migration.
func TestConcurrentFirstOpen(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t).CreateDatabase(t)
	const engines = 5
	stores := make([]*postgres.Store, engines)
	errs := make([]error, engines)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = postgres.Open(ctx, url, postgres.Options{})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("engine %d: Open: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	var rows int
	if err := rawDB(t, url).QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != postgres.LatestSchemaVersion() {
		t.Errorf("schema_migrations rows = %d, %v; want %d", rows, err, postgres.LatestSchemaVersion())
	}

	// The engines then race for one lease, round after round.
	var last int64
	for round := 0; round < 5; round++ {
		now := time.Unix(int64(1000+round), 0)
		results := make([]error, engines)
		leases := make([]catalog.Lease, engines)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				leases[i], results[i] = s.AcquireLease(ctx, "prod", fmt.Sprintf("node-%d", i), fmt.Sprintf("engine-%d", i), time.Hour, now)
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range results {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: engines %d and %d both won", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, catalog.ErrConflict):
				t.Errorf("round %d: engine %d: %v", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no engine won", round)
		}
		if leases[winner].Epoch != last+1 {
			t.Errorf("round %d: epoch %d, want %d", round, leases[winner].Epoch, last+1)
		}
		last = leases[winner].Epoch
		if err := stores[(winner+1)%engines].ReleaseLease(ctx, "prod", last); err != nil {
			t.Fatalf("round %d: release from another engine: %v", round, err)
		}
	}
}

func TestSchemaProtectsEpochs(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t).CreateDatabase(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if _, err := s.AcquireLease(ctx, "prod", "a", "e", time.Minute, time.Unix(100, 0)); err != nil {
		t.Fatalf("AcquireLease: %v", err)
	}
	raw := rawDB(t, url)
	for _, stmt := range []string{
		`UPDATE lease_epochs SET epoch = 1 WHERE cluster_name = 'prod'`,
		`UPDATE lease_epochs SET epoch = 0 WHERE cluster_name = 'prod'`,
		`DELETE FROM lease_epochs`,
	} {
		if _, err := raw.Exec(stmt); err == nil || !strings.Contains(err.Error(), "epoch") {
			t.Errorf("%s: err = %v, want the schema to refuse it", stmt, err)
		}
	}
}

func TestOpenErrorsDoNotLeakPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens, the connection is refused at once.
	_, err := postgres.Open(ctx, "postgres://clusterguard:s3cret-pw@127.0.0.1:1/catalog?sslmode=disable&connect_timeout=5", postgres.Options{})
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error %q contains the password", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1/catalog") {
		t.Errorf("error %q does not name the server and database", err)
	}
	if _, err := postgres.Open(ctx, "postgres://u:s3cret-pw@[bad", postgres.Options{}); err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("Open of a malformed URL = %v, want an error without the password", err)
	}
}

func rawDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
