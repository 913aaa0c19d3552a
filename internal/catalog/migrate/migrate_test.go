package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	_ "modernc.org/sqlite"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/migrate"
)

var sqliteDialect = migrate.Dialect{Name: "SQLite", Placeholder: func(int) string { return "?" }}

var clock = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC) }

// Deliberately not idempotent (no IF NOT EXISTS): applying one twice fails.
var threeMigrations = fstest.MapFS{
	"m/0001_widgets.sql":      {Data: []byte("CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")},
	"m/0002_widget_color.sql": {Data: []byte("ALTER TABLE widgets ADD COLUMN color TEXT;\nCREATE INDEX widgets_color ON widgets (color);")},
	"m/0003_gadgets.sql":      {Data: []byte("CREATE TABLE gadgets (id INTEGER PRIMARY KEY);")},
}

func load(t *testing.T, fsys fstest.MapFS) []migrate.Migration {
	t.Helper()
	ms, err := migrate.Load(fsys, "m")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return ms
}

// openDB opens path with what the runner needs of SQLite: write transactions
// begin IMMEDIATE, and a busy writer waits rather than failing. (The
// catalog's WAL switch is tested in catalog/sqlite.)
func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	q := url.Values{"_txlock": {"immediate"}, "_busy_timeout": {"10000"}}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String())
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestLoad(t *testing.T) {
	ms := load(t, threeMigrations)
	if len(ms) != 3 {
		t.Fatalf("Load returned %d migrations, want 3", len(ms))
	}
	for i, want := range []string{"widgets", "widget_color", "gadgets"} {
		if ms[i].Version != i+1 || ms[i].Name != want {
			t.Errorf("migration %d = %d %q, want %d %q", i, ms[i].Version, ms[i].Name, i+1, want)
		}
	}
	if !strings.Contains(ms[1].SQL, "CREATE INDEX widgets_color") {
		t.Errorf("migration 2 SQL = %q, want the file's contents", ms[1].SQL)
	}
}

func TestLoadRejectsMalformedSets(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("SELECT 1;")}
	cases := map[string]struct {
		fs   fstest.MapFS
		want string
	}{
		"gap":          {fstest.MapFS{"m/0001_a.sql": sql, "m/0003_c.sql": sql}, "expected version 0002"},
		"duplicate":    {fstest.MapFS{"m/0001_a.sql": sql, "m/0001_b.sql": sql}, "expected version 0002"},
		"not from one": {fstest.MapFS{"m/0002_b.sql": sql}, "expected version 0001"},
		"bad name":     {fstest.MapFS{"m/0001_a.sql": sql, "m/2_b.sql": sql}, "2_b.sql"},
		"upper case":   {fstest.MapFS{"m/0001_Add.sql": sql}, "0001_Add.sql"},
		"empty file":   {fstest.MapFS{"m/0001_a.sql": {Data: nil}}, "empty"},
		"other file":   {fstest.MapFS{"m/0001_a.sql": sql, "m/README": sql}, "README"},
		"no files":     {fstest.MapFS{"m": {Mode: fs.ModeDir}}, "no migration files"},
		"missing dir":  {fstest.MapFS{"other/0001_a.sql": sql}, "\"m\""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := migrate.Load(c.fs, "m")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load = %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

func TestRunFreshThenReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	ms := load(t, threeMigrations)

	res, err := migrate.Run(ctx, openDB(t, path), sqliteDialect, ms, clock)
	if err != nil {
		t.Fatalf("Run on a fresh database: %v", err)
	}
	if res != (migrate.Result{From: 0, To: 3}) {
		t.Errorf("Run on a fresh database = %+v, want From 0 To 3", res)
	}

	// A second process opening the file later finds nothing to do.
	db := openDB(t, path)
	res, err = migrate.Run(ctx, db, sqliteDialect, ms, clock)
	if err != nil {
		t.Fatalf("Run again: %v", err)
	}
	if res != (migrate.Result{From: 3, To: 3}) {
		t.Errorf("Run again = %+v, want From 3 To 3", res)
	}
	if v, err := migrate.Version(ctx, db); err != nil || v != 3 {
		t.Errorf("Version = %d, %v; want 3", v, err)
	}
	assertRecorded(t, db, []string{"1 widgets", "2 widget_color", "3 gadgets"})
	if _, err := db.ExecContext(ctx, `INSERT INTO widgets (name, color) VALUES ('w', 'red'); INSERT INTO gadgets DEFAULT VALUES`); err != nil {
		t.Errorf("schema after migrations is not usable: %v", err)
	}
	var applied string
	if err := db.QueryRow(`SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&applied); err != nil || applied != clock().Format(time.RFC3339Nano) {
		t.Errorf("applied_at = %q, %v; want the injected clock's %q", applied, err, clock().Format(time.RFC3339Nano))
	}
}

func TestRunUpgradesStepByStep(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "c.db"))
	all := load(t, threeMigrations)
	// An older release knew only the first migration.
	if res, err := migrate.Run(ctx, db, sqliteDialect, all[:1], clock); err != nil || res.To != 1 {
		t.Fatalf("Run with one migration = %+v, %v", res, err)
	}
	res, err := migrate.Run(ctx, db, sqliteDialect, all, clock)
	if err != nil {
		t.Fatalf("upgrade Run: %v", err)
	}
	if res != (migrate.Result{From: 1, To: 3}) {
		t.Errorf("upgrade Run = %+v, want From 1 To 3", res)
	}
	assertRecorded(t, db, []string{"1 widgets", "2 widget_color", "3 gadgets"})
}

func TestRunRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "c.db"))
	all := load(t, threeMigrations)
	if _, err := migrate.Run(ctx, db, sqliteDialect, all, clock); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// This binary is older: it knows two migrations, the catalog has three.
	res, err := migrate.Run(ctx, db, sqliteDialect, all[:2], clock)
	var newer *migrate.NewerSchemaError
	if !errors.As(err, &newer) {
		t.Fatalf("Run with an older binary = %+v, %v; want a *NewerSchemaError", res, err)
	}
	if newer.Found != 3 || newer.Known != 2 {
		t.Errorf("NewerSchemaError = %+v, want Found 3 Known 2", newer)
	}
	if !migrate.IsNewerSchema(fmt.Errorf("wrapped: %w", err)) {
		t.Error("IsNewerSchema does not see through wrapping")
	}
	for _, want := range []string{"version 3", "up to 2", "upgrade the provider"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	assertRecorded(t, db, []string{"1 widgets", "2 widget_color", "3 gadgets"})
}

func TestRunRollsBackAFailedMigration(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "c.db"))
	broken := fstest.MapFS{
		"m/0001_widgets.sql": threeMigrations["m/0001_widgets.sql"],
		// The first statement works, the second does not: neither may stay.
		"m/0002_half.sql": {Data: []byte("CREATE TABLE half (id INTEGER);\nALTER TABLE no_such_table ADD COLUMN x TEXT;")},
	}
	_, err := migrate.Run(ctx, db, sqliteDialect, load(t, broken), clock)
	if err == nil || !strings.Contains(err.Error(), "0002_half") {
		t.Fatalf("Run with a broken migration = %v, want an error naming 0002_half", err)
	}
	assertRecorded(t, db, []string{"1 widgets"})
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("table from the failed migration: count %d, %v; want it rolled back", n, err)
	}
}

// TestRunConcurrentFirstOpen starts many migrators on a fresh file at once,
// each with its own connection pool as separate processes would have. The
// migrations are not idempotent, so applying any twice would fail.
func TestRunConcurrentFirstOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	ms := load(t, threeMigrations)
	const migrators = 6
	dbs := make([]*sql.DB, migrators)
	for i := range dbs {
		dbs[i] = openDB(t, path)
	}
	start := make(chan struct{})
	errs := make([]error, migrators)
	results := make([]migrate.Result, migrators)
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = migrate.Run(ctx, dbs[i], sqliteDialect, ms, clock)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		} else if results[i].To != 3 {
			t.Errorf("migrator %d ended at version %d, want 3", i, results[i].To)
		}
	}
	assertRecorded(t, dbs[0], []string{"1 widgets", "2 widget_color", "3 gadgets"})
}

func assertRecorded(t *testing.T, db *sql.DB, want []string) {
	t.Helper()
	rows, err := db.Query(`SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			t.Fatalf("scan schema_migrations: %v", err)
		}
		got = append(got, fmt.Sprintf("%d %s", v, name))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("schema_migrations = %v, want %v", got, want)
	}
}
