// Package migrate applies numbered, embedded SQL schema migrations to a
// catalog database. It is shared by the SQLite and PostgreSQL catalogs; each
// supplies its own migration files and a Dialect.
//
// Migration files are named NNNN_short_name.sql (for example
// 0001_clusters_and_leases.sql), numbered from 1 without gaps. A file, once
// released, never changes: a schema change is a new file with the next number.
// Each migration runs in its own transaction together with the row recording
// it in schema_migrations, so a catalog is always at exactly one version.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// Migration is one numbered schema change.
type Migration struct {
	Version int    // 1-based, contiguous
	Name    string // from the file name, for diagnostics
	SQL     string // one or more statements
}

var fileName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// Load reads the migrations in dir of fsys (typically an embed.FS). It fails
// on a file whose name does not follow NNNN_name.sql, on duplicate or missing
// numbers, and on an empty file, so a mistake shows up in the first test run
// rather than in a user's catalog.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations directory %q: %w", dir, err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q: name must look like 0001_short_name.sql", path.Join(dir, e.Name()))
		}
		v, _ := strconv.Atoi(m[1]) // four digits, cannot fail
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", path.Join(dir, e.Name()), err)
		}
		if len(body) == 0 {
			return nil, fmt.Errorf("migration file %q is empty", path.Join(dir, e.Name()))
		}
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations in %q: expected version %04d next, found %04d_%s.sql (numbers must start at 1 with no gaps or duplicates)", dir, i+1, m.Version, m.Name)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("migrations directory %q holds no migration files", dir)
	}
	return ms, nil
}

// Dialect is what differs between databases in running migrations.
type Dialect struct {
	// Name names the database in errors, e.g. "SQLite".
	Name string
	// Lock, if set, is executed first in every migration transaction to
	// serialise concurrent migrators (a PostgreSQL transaction-scoped advisory
	// lock). SQLite needs none: its write transactions begin IMMEDIATE and so
	// already exclude each other.
	Lock string
	// Placeholder returns the bind parameter for the n-th (1-based) argument.
	Placeholder func(n int) string
}

// NewerSchemaError reports a catalog written by a newer release. Opening it
// with an older binary could misread or damage records it does not know.
type NewerSchemaError struct {
	Found int // version recorded in the catalog
	Known int // latest version this binary carries
}

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("catalog schema is at version %d but this terraform-provider-clusterguard only knows versions up to %d: "+
		"a newer release has upgraded this catalog; upgrade the provider (and any clusterguard engine daemon sharing this catalog) to that release or later",
		e.Found, e.Known)
}

// Result says what Run did.
type Result struct {
	From, To int // schema version before and after
}

const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`

// Run brings db up to the last of ms, one migration per transaction. It is
// idempotent and safe to call from several processes at once: each
// transaction re-reads the current version under the write lock, so a
// migration another process applied meanwhile is skipped, never repeated.
// A catalog at a version newer than the last of ms is refused with a
// *NewerSchemaError. now stamps applied_at (diagnostics only).
func Run(ctx context.Context, db *sql.DB, d Dialect, ms []Migration, now func() time.Time) (Result, error) {
	res := Result{From: -1}
	for {
		cur, applied, err := step(ctx, db, d, ms, now)
		if res.From < 0 {
			res.From = cur
		}
		if err != nil {
			return res, err
		}
		res.To = cur
		if !applied {
			return res, nil
		}
		res.To = cur + 1
		if res.To == len(ms) {
			return res, nil
		}
	}
}

// step applies the migration after the current version, if any. It returns
// the version found at the start of its transaction and whether it applied
// one.
func step(ctx context.Context, db *sql.DB, d Dialect, ms []Migration, now func() time.Time) (cur int, applied bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("begin %s migration transaction: %w", d.Name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if d.Lock != "" {
		if _, err := tx.ExecContext(ctx, d.Lock); err != nil {
			return 0, false, fmt.Errorf("take %s migration lock: %w", d.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, createTable); err != nil {
		return 0, false, fmt.Errorf("create schema_migrations table: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	if cur > len(ms) {
		return cur, false, &NewerSchemaError{Found: cur, Known: len(ms)}
	}
	if cur == len(ms) {
		if err := tx.Commit(); err != nil {
			return cur, false, fmt.Errorf("commit schema version check: %w", err)
		}
		return cur, false, nil
	}
	m := ms[cur]
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return cur, false, fmt.Errorf("apply migration %04d_%s: %w", m.Version, m.Name, err)
	}
	// Only the dialect's placeholders are formatted in; values are bound.
	ins := fmt.Sprintf(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)`, //nolint:gosec // G201: see above
		d.Placeholder(1), d.Placeholder(2), d.Placeholder(3))
	if _, err := tx.ExecContext(ctx, ins, m.Version, m.Name, now().UTC().Format(time.RFC3339Nano)); err != nil {
		return cur, false, fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return cur, false, fmt.Errorf("commit migration %04d_%s: %w", m.Version, m.Name, err)
	}
	return cur, true, nil
}

// Version reads the schema version of db without changing anything; 0 means
// no migration has been applied.
func Version(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// IsNewerSchema reports whether err is, or wraps, a *NewerSchemaError.
func IsNewerSchema(err error) bool {
	var n *NewerSchemaError
	return errors.As(err, &n)
}
