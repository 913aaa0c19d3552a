package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/migrate"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlite"
)

func TestOpenCreatesPrivateFileAndDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "clusterguard", "state")
	path := filepath.Join(dir, "catalog.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, filepath.Dir(dir): 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	// A write creates the WAL file, which must be as private as the catalog.
	if err := s.PutCluster(context.Background(), catalog.Cluster{Name: "c"}); err != nil {
		t.Fatalf("PutCluster: %v", err)
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatalf("stat WAL file (is the catalog in WAL mode?): %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("WAL file has mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestOpenRejectsNegativeBusyTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	if _, err := sqlite.Open(context.Background(), path, sqlite.Options{BusyTimeout: -time.Second}); err == nil {
		t.Error("Open with a negative busy timeout succeeded, want an error")
	}
}

func TestForeignKeysEnforced(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	if err := s.PutCluster(ctx, catalog.Cluster{Name: "c", Nodes: []catalog.Node{{Name: "n1"}, {Name: "n2"}}}); err != nil {
		t.Fatalf("PutCluster: %v", err)
	}
	if err := s.DeleteCluster(ctx, "c"); err != nil {
		t.Fatalf("DeleteCluster: %v", err)
	}
	// ON DELETE CASCADE only works with foreign_keys on: re-creating the
	// cluster without nodes must not resurrect the old ones.
	if err := s.PutCluster(ctx, catalog.Cluster{Name: "c"}); err != nil {
		t.Fatalf("PutCluster: %v", err)
	}
	var n int
	if err := rawDB(t, s.Path()).QueryRow(`SELECT count(*) FROM cluster_nodes`).Scan(&n); err != nil || n != 0 {
		t.Errorf("cluster_nodes rows after delete and re-create = %d, %v; want 0", n, err)
	}
}

func TestReopenKeepsClustersAndEpochs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	now := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	want := catalog.Cluster{Name: "prod", SharedVolume: "/v", Nodes: []catalog.Node{{Name: "b", Endpoint: "http://b"}, {Name: "a", Endpoint: "http://a", Position: 1}}, CreatedAt: now}
	if err := s.PutCluster(ctx, want); err != nil {
		t.Fatalf("PutCluster: %v", err)
	}
	l, err := s.AcquireLease(ctx, "prod", "a", "e1", time.Minute, now)
	if err != nil {
		t.Fatalf("AcquireLease: %v", err)
	}
	if err := s.ReleaseLease(ctx, "prod", l.Epoch); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if v, err := s.SchemaVersion(ctx); err != nil || v != sqlite.LatestSchemaVersion() {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, sqlite.LatestSchemaVersion())
	}
	got, err := s.GetCluster(ctx, "prod")
	if err != nil {
		t.Fatalf("GetCluster after reopen: %v", err)
	}
	if len(got.Nodes) != 2 || got.Nodes[0].Name != "b" || !got.CreatedAt.Equal(now) {
		t.Errorf("cluster after reopen = %+v, want %+v", got, want)
	}
	l2, err := s.AcquireLease(ctx, "prod", "b", "e2", time.Minute, now)
	if err != nil {
		t.Fatalf("AcquireLease after reopen: %v", err)
	}
	if l2.Epoch != l.Epoch+1 {
		t.Errorf("epoch after reopen = %d, want %d", l2.Epoch, l.Epoch+1)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Errorf("IntegrityCheck: %v", err)
	}
}

// The schema itself refuses to move an epoch backwards or forget it, so
// not even a hand-edit through the sqlite3 shell can re-issue an epoch.
func TestSchemaProtectsEpochs(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	if _, err := s.AcquireLease(ctx, "prod", "a", "e", time.Minute, time.Unix(100, 0)); err != nil {
		t.Fatalf("AcquireLease: %v", err)
	}
	db := rawDB(t, s.Path())
	for _, stmt := range []string{
		`UPDATE lease_epochs SET epoch = 0 WHERE cluster_name = 'prod'`,
		`UPDATE lease_epochs SET epoch = 1 WHERE cluster_name = 'prod'`,
		`DELETE FROM lease_epochs`,
	} {
		if _, err := db.Exec(stmt); err == nil || !strings.Contains(err.Error(), "epoch") {
			t.Errorf("%s: err = %v, want the schema to refuse it", stmt, err)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.Close()
	future := sqlite.LatestSchemaVersion() + 1
	// What a later release would leave behind.
	if _, err := rawDB(t, path).Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future', '2099-01-01T00:00:00Z')`, future); err != nil {
		t.Fatalf("record a future migration: %v", err)
	}
	_, err = sqlite.Open(ctx, path, sqlite.Options{})
	var newer *migrate.NewerSchemaError
	if !errors.As(err, &newer) {
		t.Fatalf("Open of a newer catalog = %v, want a *migrate.NewerSchemaError", err)
	}
	if newer.Found != future || newer.Known != sqlite.LatestSchemaVersion() {
		t.Errorf("NewerSchemaError = %+v, want Found %d Known %d", newer, future, sqlite.LatestSchemaVersion())
	}
	for _, want := range []string{path, "upgrade the provider"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestOpenRejectsNonDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("this is not an SQLite database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a text file = %v, want an error naming %s", err, path)
	}
}

func TestOpenRejectsEmptyPath(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), "", sqlite.Options{}); err == nil {
		t.Fatal("Open(\"\") succeeded, want an error")
	}
}

// TestConcurrentFirstOpen opens one fresh file from many goroutines at once,
// each with its own Store (its own connection pool, as a separate process
// would have). See multiprocess_test.go for real processes.
func TestConcurrentFirstOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	const openers = 6
	stores := make([]*sqlite.Store, openers)
	errs := make([]error, openers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = sqlite.Open(ctx, path, sqlite.Options{})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("opener %d: %v", i, err)
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		return
	}
	var rows int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != sqlite.LatestSchemaVersion() {
		t.Errorf("schema_migrations has %d rows, %v; want %d (each migration applied once)", rows, err, sqlite.LatestSchemaVersion())
	}
	// All stores see each other's writes.
	for i, s := range stores {
		if err := s.PutCluster(ctx, catalog.Cluster{Name: string(rune('a' + i))}); err != nil {
			t.Fatalf("store %d PutCluster: %v", i, err)
		}
	}
	all, err := stores[0].ListClusters(ctx)
	if err != nil || len(all) != openers {
		t.Errorf("ListClusters = %d clusters, %v; want %d", len(all), err, openers)
	}
}

// rawDB opens path directly, bypassing the store, to inspect or tamper.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=10000&_foreign_keys=on")
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Characters that mean something in a URI must reach the file system as-is.
func TestOpenPathWithURICharacters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "my state", "cat?alog#1 %20.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	defer s.Close()
	if err := s.PutCluster(ctx, catalog.Cluster{Name: "c"}); err != nil {
		t.Fatalf("PutCluster: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("catalog file at %q: %v", path, err)
	}
	if fi.Size() == 0 {
		t.Fatalf("catalog file at %q is empty: the driver wrote to another file", path)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "cat?alog#1 %20.db") {
			t.Errorf("unexpected file %q beside the catalog", e.Name())
		}
	}
}
