package postgresql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
)

// An online backup taken while a writer commits numbered rows, one per
// transaction: the server is never frozen during the copy (the writer
// keeps committing), and a server started on the copy replays the WAL
// included with it and holds the rows committed up to the backup's stop
// position: every row acknowledged before pg_backup_stop was called, no row
// sent after it returned, and no gap. (A commit acknowledged while
// pg_backup_stop runs may fall on either side of the stop position.)
func TestOnlineBackupUnderWritesRestoresExactRows(t *testing.T) {
	d := newTestDriver(t, initDataDir(t))
	mustDo(t, "start", d.Start)
	query(t, d, "CREATE TABLE items (id int PRIMARY KEY)")
	w := startWriter(t, d)

	var ackedAtStop, sentAtStop int64
	d.beforeStop = func() { ackedAtStop = w.acked.Load() }
	d.afterStop = func() { sentAtStop = w.sent.Load() }
	dest := filepath.Join(scratchDir(t), "data")
	pid, _ := d.recordedPID()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := d.OnlineBackup(ctx, dest, func(ctx context.Context, exclude []string) error {
		// Not frozen: no process of the server is stopped, no freeze is
		// recorded, and the writer commits while the copy runs.
		for _, p := range append(proc.Descendants(pid), pid) {
			if proc.Stopped(p) {
				return fmt.Errorf("server process %d is stopped during an online backup", p)
			}
		}
		if d.frozenMarker().IsSet() {
			return errors.New("the frozen marker is set during an online backup")
		}
		before := w.acked.Load()
		if !proc.WaitUntil(ctx, 30*time.Second, func() bool { return w.acked.Load() >= before+50 }) {
			return fmt.Errorf("the writer committed %d rows in 30s while the backup ran, want 50", w.acked.Load()-before)
		}
		return copyTree(d.cfg.DataDir, dest, exclude)
	})
	if err != nil {
		t.Fatal(err)
	}
	// More rows after the backup, which the copy must not hold.
	after := sentAtStop
	if !proc.WaitUntil(ctx, 30*time.Second, func() bool { return w.acked.Load() >= after+50 }) {
		t.Fatal("the writer stopped after the backup")
	}
	w.stop(t)
	if res.Method != MethodOnline || res.StartLSN == "" || res.StopLSN == "" || res.WALSegments < 1 {
		t.Fatalf("result %+v: want the online method, both positions and WAL", res)
	}
	if got := query(t, d, "SELECT count(*) FROM pg_replication_slots"); got != "0" {
		t.Fatalf("%s replication slots left on the server after the backup", got)
	}
	if _, err := os.Stat(filepath.Join(dest, "backup_label")); err != nil {
		t.Fatalf("no backup_label in the copy: %v", err)
	}
	mustDo(t, "stop", d.Stop)

	restored := newTestDriver(t, dest)
	mustDo(t, "start the copy", restored.Start)
	got := query(t, restored, "SELECT count(*), coalesce(max(id), 0) FROM items")
	var n, maxID int64
	if _, err := fmt.Sscanf(got, "%d|%d", &n, &maxID); err != nil {
		t.Fatalf("restored rows %q: %v", got, err)
	}
	t.Logf("restored %d rows (max %d); acknowledged before stop %d, sent at stop %d; WAL %s..%s, %d segments",
		n, maxID, ackedAtStop, sentAtStop, res.StartLSN, res.StopLSN, res.WALSegments)
	if n != maxID {
		t.Fatalf("restored %d rows with max id %d: a gap", n, maxID)
	}
	if maxID < ackedAtStop || maxID > sentAtStop {
		t.Fatalf("restored max id %d, want between %d (acknowledged before pg_backup_stop was called) and %d (the last sent when it returned)", maxID, ackedAtStop, sentAtStop)
	}
	if _, err := os.Stat(filepath.Join(dest, "backup_label")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("backup_label still in place after recovery: %v", err)
	}
}

// A failed copy fails the backup, and the backup ends on the server with
// its session: no session, no slot left, and a new backup can start.
func TestOnlineBackupFailedCopyLeavesNothingOnTheServer(t *testing.T) {
	d := newTestDriver(t, initDataDir(t))
	mustDo(t, "start", d.Start)
	dest := filepath.Join(scratchDir(t), "data")
	boom := errors.New("disk full")
	_, err := d.OnlineBackup(context.Background(), dest, func(context.Context, []string) error {
		if got := query(t, d, "SELECT count(*) FROM pg_replication_slots WHERE temporary"); got != "1" {
			t.Errorf("%s temporary slots during the backup, want 1", got)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("OnlineBackup = %v, want the copy's error", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "backup_label")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed backup wrote backup_label: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gone := proc.WaitUntil(ctx, 30*time.Second, func() bool {
		return query(t, d, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clusterguard backup'") == "0" &&
			query(t, d, "SELECT count(*) FROM pg_replication_slots") == "0"
	})
	if !gone {
		t.Fatal("the backup's session or slot outlived the failed backup")
	}
	if got := query(t, d, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND state IS NOT NULL AND query ILIKE '%backup_start%' AND pid <> pg_backend_pid()"); got != "0" {
		t.Fatalf("%s sessions still in a backup", got)
	}
	_, err = d.OnlineBackup(context.Background(), dest, func(ctx context.Context, exclude []string) error {
		return copyTree(d.cfg.DataDir, dest, exclude)
	})
	if err != nil {
		t.Fatalf("a backup after the failed one: %v", err)
	}
}

// The server killed during the copy: the backup fails, with no
// backup_label in the copy, and the backup ended with its session.
func TestOnlineBackupServerKilledDuringCopy(t *testing.T) {
	d := newTestDriver(t, initDataDir(t))
	mustDo(t, "start", d.Start)
	dest := filepath.Join(scratchDir(t), "data")
	pid, _ := d.recordedPID()
	_, err := d.OnlineBackup(context.Background(), dest, func(ctx context.Context, exclude []string) error {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return err
		}
		proc.WaitUntil(ctx, 30*time.Second, func() bool { return !proc.Alive(pid) })
		return copyTree(d.cfg.DataDir, dest, exclude)
	})
	if err == nil {
		t.Fatal("the backup succeeded although the server died during the copy")
	}
	t.Logf("backup failed as expected: %v", err)
	if _, err := os.Stat(filepath.Join(dest, "backup_label")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed backup wrote backup_label: %v", err)
	}
	// The backup ended with its session: the server says so in its log.
	if !proc.WaitUntil(context.Background(), 30*time.Second, func() bool {
		return strings.Contains(tail(d.logPath()), "aborting backup due to backend exiting")
	}) {
		t.Fatalf("the server log does not show the backup aborted with its session:\n%s", tail(d.logPath()))
	}
}

type writer struct {
	sent, acked atomic.Int64
	maxLatency  atomic.Int64 // nanoseconds of the slowest commit since reset
	done        chan struct{}
	err         chan error
}

// startWriter commits rows 1, 2, 3… one per transaction until stopped:
// sent is set before a row's INSERT goes out, acked once it committed.
func startWriter(t testing.TB, d *Driver) *writer {
	t.Helper()
	conn, err := d.connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{done: make(chan struct{}), err: make(chan error, 1)}
	go func() {
		defer conn.Close(context.Background())
		for i := int64(1); ; i++ {
			select {
			case <-w.done:
				w.err <- nil
				return
			default:
			}
			w.sent.Store(i)
			start := time.Now()
			if _, err := conn.Exec(context.Background(), "INSERT INTO items VALUES ($1)", i); err != nil {
				w.err <- err
				return
			}
			if l := int64(time.Since(start)); l > w.maxLatency.Load() {
				w.maxLatency.Store(l)
			}
			w.acked.Store(i)
		}
	}()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			close(w.done)
		}
	})
	return w
}

func (w *writer) stop(t testing.TB) {
	t.Helper()
	close(w.done)
	if err := <-w.err; err != nil {
		t.Fatalf("writer: %v", err)
	}
}

// copyTree copies src to dst keeping modes and owners, leaving out the
// paths in exclude, and skipping files removed while it runs (as the
// server does during an online backup).
func copyTree(src, dst string, exclude []string) error {
	skip := map[string]bool{}
	for _, p := range exclude {
		skip[p] = true
	}
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if skip[p] {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			if err := os.MkdirAll(to, 0o700); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			in, err := os.Open(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err == nil {
				_, err = io.Copy(out, in)
				if cerr := out.Close(); err == nil {
					err = cerr
				}
			}
			in.Close()
			if err != nil {
				return err
			}
		default:
			return nil
		}
		st := info.Sys().(*syscall.Stat_t)
		if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if err := os.Chmod(to, info.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(to, info.ModTime(), info.ModTime()) // as the agent's mirror keeps them
	})
}

// A file written shortly before or during the copy gets another
// modification time in the copy than on the server, so a mirror that skips
// files by size and time copies it again next time: it may have changed
// within one timestamp tick after it was read. A file untouched for long
// keeps its time.
func TestOnlineBackupSetsApartFilesChangedAroundTheCopy(t *testing.T) {
	d := newTestDriver(t, initDataDir(t))
	mustDo(t, "start", d.Start)
	query(t, d, "CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 1000); CHECKPOINT")
	rel := query(t, d, "SELECT pg_relation_filepath('items')")
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(d.cfg.DataDir, "PG_VERSION"), old, old); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(scratchDir(t), "data")
	if _, err := d.OnlineBackup(context.Background(), dest, func(ctx context.Context, exclude []string) error {
		return copyTree(d.cfg.DataDir, dest, exclude)
	}); err != nil {
		t.Fatal(err)
	}
	mtime := func(p string) time.Time {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return info.ModTime()
	}
	if src, cp := mtime(filepath.Join(d.cfg.DataDir, rel)), mtime(filepath.Join(dest, rel)); src.Equal(cp) {
		t.Fatalf("%s, written just before the backup, has the same time in the copy (%v): a mirror would not copy it again", rel, src)
	}
	if src, cp := mtime(filepath.Join(d.cfg.DataDir, "PG_VERSION")), mtime(filepath.Join(dest, "PG_VERSION")); !src.Equal(cp) {
		t.Fatalf("PG_VERSION, untouched for an hour, has time %v in the copy, %v on the server", cp, src)
	}
}

// Application-consistent copies are online unless the workload asks for
// the freeze; crash-consistent copies always freeze.
func TestBackupMethodChoice(t *testing.T) {
	for _, tc := range []struct {
		method, consistency string
		online              bool
	}{
		{"", "application", true}, {MethodOnline, "application", true}, {MethodFreeze, "application", false},
		{"", "crash", false}, {MethodOnline, "crash", false},
	} {
		d, err := New(Config{Workload: "db", DataDir: "/vol/db", Port: 5432, StateDir: t.TempDir(), BackupMethod: tc.method, User: "postgres"})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.TakesOnline(tc.consistency); got != tc.online {
			t.Errorf("method %q, %s: online %v, want %v", tc.method, tc.consistency, got, tc.online)
		}
	}
	if _, err := New(Config{Workload: "db", DataDir: "/vol/db", Port: 5432, StateDir: t.TempDir(), BackupMethod: "snapshot"}); err == nil || !strings.Contains(err.Error(), "backup_method") {
		t.Fatalf("New with backup_method snapshot: %v, want a refusal", err)
	}
}
