package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConnectionSettings checks, on the store's own pooled connections, the
// settings that keep two processes from corrupting or deadlocking each other.
func TestConnectionSettings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	s, err := Open(ctx, path, Options{BusyTimeout: 1234 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	// Hold several connections at once so the checks cover more than one.
	conns := make([]*sql.Conn, 3)
	for i := range conns {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"busy_timeout": "1234",
			"foreign_keys": "1",
			"synchronous":  "1", // NORMAL
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("conn %d PRAGMA %s: %v", i, pragma, err)
			}
			if got != want {
				t.Errorf("conn %d: PRAGMA %s = %s, want %s", i, pragma, got, want)
			}
		}
	}
}

// TestWriteTransactionsBeginImmediate: a write transaction holds the write
// lock from BEGIN, before its first statement, so two writers queue at BEGIN
// instead of both reading and then deadlocking when each tries to upgrade.
func TestWriteTransactionsBeginImmediate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	// Another process's view: no busy timeout, so a held lock fails at once.
	other, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("BeginTx: %v", err)
	}
	_, err = other.ExecContext(ctx, `INSERT INTO lease_epochs (cluster_name, epoch) VALUES ('x', 1)`)
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("write from another connection while a store transaction is merely begun: err = %v, want database is locked", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.ExecContext(ctx, `INSERT INTO lease_epochs (cluster_name, epoch) VALUES ('x', 1)`); err != nil {
		t.Errorf("write from another connection after rollback: %v", err)
	}

	// Read-only transactions take no write lock.
	rtx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("BeginTx(read-only): %v", err)
	}
	defer rtx.Rollback()
	if _, err := other.ExecContext(ctx, `INSERT INTO lease_epochs (cluster_name, epoch) VALUES ('y', 1)`); err != nil {
		t.Errorf("write from another connection during a read-only transaction: %v", err)
	}
}
