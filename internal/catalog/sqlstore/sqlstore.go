// Package sqlstore is the catalog's one implementation over database/sql,
// shared by the SQLite and PostgreSQL catalogs: the queries, the locking
// order and the error wording live here once, and a Dialect carries the few
// things the two databases spell differently. The database packages
// (catalog/sqlite, catalog/postgres) open the connection, run their
// migrations and wrap a Store.
//
// Glossary:
//   - Dialect: placeholder style, the byte-order collation and row-lock
//     clauses, and how transactions begin.
//   - Tx: a transaction whose statements are written once, with "?"
//     placeholders and {tokens} the dialect fills in.
//
// State model: every method runs in one transaction. Writes either commit
// whole or change nothing; reads see one snapshot. Concurrent writers are
// ordered by the database (PostgreSQL row locks, SQLite's single writer).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/secretbox"
)

// Dialect is what differs between the databases the catalog runs on.
type Dialect struct {
	// Name appears in errors: "<Name> catalog <label>: ...".
	Name string
	// NumberedPlaceholders: $1, $2, ... (PostgreSQL) instead of ? (SQLite).
	NumberedPlaceholders bool
	// ByteOrder is the collation that sorts text by bytes, as every catalog
	// sorts names: {bytes} in a query.
	ByteOrder string
	// ForUpdate and ForKeyShare are the row-lock clauses of {for_update} and
	// {for_key_share}; empty where a write transaction already excludes all
	// other writers (SQLite).
	ForUpdate, ForKeyShare string
	// ReadTx begins read transactions (one snapshot for all their queries).
	ReadTx *sql.TxOptions
	// OneWriter admits one write transaction of this process at a time, so
	// goroutines queue in Go (honouring their context) rather than in the
	// database's busy handler (SQLite).
	OneWriter bool
}

// Store implements the catalog's store interfaces on a database.
type Store struct {
	db        *sql.DB
	d         Dialect
	name      string // "<dialect> catalog <label>", for errors
	tokens    *strings.Replacer
	writeSlot chan struct{}
	box       *secretbox.Box // seals repository secrets; nil: plaintext (see secrets.go)
}

// New returns a Store on db. label names the database in errors (a file
// path, host:port/database); it must not hold secrets.
func New(db *sql.DB, label string, d Dialect) *Store {
	s := &Store{db: db, d: d, name: d.Name + " catalog " + label,
		tokens: strings.NewReplacer("{bytes}", d.ByteOrder, "{for_update}", d.ForUpdate, "{for_key_share}", d.ForKeyShare)}
	if d.OneWriter {
		s.writeSlot = make(chan struct{}, 1)
	}
	return s
}

// DB is the underlying database, for the database package's own queries.
func (s *Store) DB() *sql.DB { return s.db }

// Name is "<dialect> catalog <label>", the prefix of every error.
func (s *Store) Name() string { return s.name }

// Close releases the database. Callers must not use the Store afterwards.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", s.name, err)
	}
	return nil
}

// Tx is a transaction whose statements are written in the shared spelling.
type Tx struct {
	tx *sql.Tx
	s  *Store
}

// ExecContext runs a statement.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.s.rewrite(query), args...)
}

// QueryContext runs a query.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.s.rewrite(query), args...)
}

// QueryRowContext runs a query returning at most one row.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.s.rewrite(query), args...)
}

// rewrite fills in the dialect's tokens and numbers the placeholders. The
// catalog's queries hold no "?" or "{" inside string literals.
func (s *Store) rewrite(q string) string {
	q = s.tokens.Replace(q)
	if !s.d.NumberedPlaceholders || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// write runs fn in a write transaction and commits it if fn succeeds.
func (s *Store) write(ctx context.Context, fn func(tx *Tx) error) error {
	if s.writeSlot != nil {
		select {
		case s.writeSlot <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-s.writeSlot }()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write transaction: %w", err)
	}
	if err := fn(&Tx{tx: tx, s: s}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// read runs fn in a read-only transaction: one snapshot for all of fn's
// queries.
func (s *Store) read(ctx context.Context, fn func(tx *Tx) error) error {
	tx, err := s.db.BeginTx(ctx, s.d.ReadTx)
	if err != nil {
		return fmt.Errorf("begin read transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to undo
	return fn(&Tx{tx: tx, s: s})
}

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect runs a query and scans every row with scan; no rows is an empty,
// non-nil slice.
func collect[T any](ctx context.Context, tx *Tx, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// first runs a query for one row in a read transaction and scans it; no
// row is an error wrapping catalog.ErrNotFound.
func first[T any](ctx context.Context, s *Store, scan func(scanner) (T, error), q string, args ...any) (T, error) {
	var v T
	err := s.read(ctx, func(tx *Tx) error {
		var err error
		v, err = scan(tx.QueryRowContext(ctx, q, args...))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		err = catalog.ErrNotFound
	}
	return v, err
}

// getError names what a single-row read was after: "<what> %q: not found",
// or "get <what> %q: <cause>".
func (s *Store) getError(what, key string, err error) error {
	if errors.Is(err, catalog.ErrNotFound) {
		return fmt.Errorf("%s: %s %q: %w", s.name, what, key, err)
	}
	return fmt.Errorf("%s: get %s %q: %w", s.name, what, key, err)
}

// Times are stored as unix nanoseconds; NULL is the zero time. The range is
// checked by the catalog's validators before a write.
func toNanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}
