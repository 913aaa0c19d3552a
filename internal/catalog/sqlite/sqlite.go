// Package sqlite is the embedded catalog: the engine's durable state in one
// SQLite file, through the pure-Go modernc.org/sqlite driver (no cgo).
//
// Several processes may open the same file at once (two terraform runs, a
// provider and an engine daemon). They stay consistent because the file is in
// WAL mode (readers never block the writer), every write transaction begins
// IMMEDIATE (it takes the write lock up front, so two writers queue instead of
// deadlocking on a lock upgrade), and a busy timeout makes a writer wait for
// the lock instead of failing with "database is locked".
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sqlitedriver "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/migrate"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations are loaded once; a malformed file is a build defect that every
// test of this package reports.
var migrations, migrationsErr = migrate.Load(migrationFiles, "migrations")

var dialect = migrate.Dialect{
	Name:        "SQLite",
	Placeholder: func(int) string { return "?" },
}

// DefaultBusyTimeout is how long a statement waits for another process's
// write lock when Options.BusyTimeout is zero.
const DefaultBusyTimeout = 10 * time.Second

// Options tune Open. The zero value is ready to use.
type Options struct {
	// BusyTimeout bounds how long a write waits for another connection or
	// process holding the write lock before failing. Default
	// DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Now stamps applied migrations (diagnostics only). Default time.Now.
	Now func() time.Time
}

// Store is the SQLite catalog. It is safe for concurrent use by many
// goroutines and, through SQLite's file locks, by many processes.
type Store struct {
	*sqlstore.Store
	db   *sql.DB
	path string
}

// queries is how the shared catalog code speaks to SQLite. Every write
// transaction begins IMMEDIATE (see dsn) and one at a time per process
// (OneWriter: goroutines queue in Go, honouring their context, rather than
// polling SQLite's busy handler); other processes are excluded by the
// file lock and the busy timeout. No row locks: a writer excludes all.
var queries = sqlstore.Dialect{
	Name:      "sqlite",
	ByteOrder: "BINARY",
	ReadTx:    &sql.TxOptions{ReadOnly: true},
	OneWriter: true,
}

// LatestSchemaVersion is the schema version this binary creates and expects.
func LatestSchemaVersion() int { return len(migrations) }

// Open opens the catalog at path, creating the file (mode 0600) and its
// parent directory (mode 0700) if missing, and migrates it to the latest
// schema. It refuses a catalog written by a newer release (see
// migrate.NewerSchemaError).
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	if migrationsErr != nil {
		return nil, fmt.Errorf("sqlite catalog: embedded migrations are invalid: %w", migrationsErr)
	}
	if path == "" {
		return nil, errors.New("sqlite catalog: empty path: set the provider's catalog to a file path")
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.BusyTimeout < 0 {
		return nil, fmt.Errorf("sqlite catalog %s: busy timeout %s is negative", path, o.BusyTimeout)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog %s: resolve path: %w", path, err)
	}
	if err := createFile(abs); err != nil {
		return nil, err
	}

	db, err := sql.Open("sqlite", dsn(abs, o.BusyTimeout))
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog %s: open: %w", abs, err)
	}
	// Readers run in parallel under WAL; writers queue on writeSlot. A small
	// pool bounds open file descriptors.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(time.Minute)

	s := &Store{Store: sqlstore.New(db, abs, queries), db: db, path: abs}
	if err := s.enableWAL(ctx, o.BusyTimeout); err != nil {
		db.Close()
		return nil, err
	}
	if _, err := migrate.Run(ctx, db, dialect, migrations, o.Now); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite catalog %s: %w", abs, err)
	}
	return s, nil
}

// dsn builds the driver's URI. The pragmas are applied to every pooled
// connection and take no locks. WAL mode is not among them: it is a property
// of the file, set once by enableWAL.
func dsn(abs string, busy time.Duration) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	q.Set("_synchronous", "NORMAL") // with WAL never corrupts; a power cut may lose only the last commits
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate") // read-only transactions still begin DEFERRED
	q.Set("_dqs", "0")            // a misspelt column name is an error, not a string
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // file:///C:/... on Windows
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// createFile makes the parent directory and an empty database file with
// owner-only permissions before SQLite opens it (SQLite would create 0644).
// The -wal and -shm files SQLite creates later copy the file's mode. An
// existing file keeps the permissions its owner chose.
func createFile(abs string) error {
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return fmt.Errorf("sqlite catalog %s: create directory: %w", abs, err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite catalog %s: create file: %w (check the directory's permissions or choose another catalog path)", abs, err)
	}
	return f.Close()
}

// enableWAL switches the file to WAL mode, which is persistent, and fails
// early with a clear message when path is not an SQLite database or cannot
// use WAL. Two processes converting a fresh file at once both hold a shared
// lock and want an exclusive one; SQLite breaks that deadlock by failing one
// of them at once with SQLITE_BUSY, without waiting, so that is retried here
// for up to the busy timeout.
func (s *Store) enableWAL(ctx context.Context, busy time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, busy)
	defer cancel()
	delay := time.Millisecond
	for {
		var mode string
		err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		switch {
		case err == nil && mode == "wal":
			return nil
		case err == nil:
			return fmt.Errorf("sqlite catalog %s: journal mode stays %q instead of \"wal\": put the catalog on a local file system", s.path, mode)
		case ctx.Err() != nil:
			return fmt.Errorf("sqlite catalog %s: switch to WAL mode: %w", s.path, err)
		case !isBusy(err):
			return fmt.Errorf("sqlite catalog %s: not a usable SQLite database: %w", s.path, err)
		}
		select {
		case <-time.After(delay):
			delay = min(2*delay, 50*time.Millisecond)
		case <-ctx.Done():
			return fmt.Errorf("sqlite catalog %s: switch to WAL mode: still locked by another process after %s: %w", s.path, busy, err)
		}
	}
}

func isBusy(err error) bool {
	var e *sqlitedriver.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// Path is the absolute path of the catalog file.
func (s *Store) Path() string { return s.path }

// SchemaVersion reads the schema version recorded in the file.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	v, err := migrate.Version(ctx, s.db)
	if err != nil {
		return 0, fmt.Errorf("sqlite catalog %s: %w", s.path, err)
	}
	return v, nil
}

// IntegrityCheck runs SQLite's full consistency check of the file and
// returns an error listing the problems it finds.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("sqlite catalog %s: integrity check: %w", s.path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("sqlite catalog %s: integrity check: %w", s.path, err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite catalog %s: integrity check: %w", s.path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("sqlite catalog %s is damaged: %q: restore it from a backup", s.path, problems)
	}
	return nil
}
