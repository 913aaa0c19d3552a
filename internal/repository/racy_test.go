package repository_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// A file rewritten in place at the same size within one timestamp tick of
// the previous backup keeps its size, modification time and inode: the
// next backup must read it again rather than reuse the parent's content
// (file systems stamp times with a coarse clock).
func TestFileRewrittenWithinOneTimestampTickIsReadAgain(t *testing.T) {
	ctx := context.Background()
	r, _, _ := newTestRepo(t)
	src := t.TempDir()
	f := filepath.Join(src, "page.db")
	old, fresh := bytes.Repeat([]byte("A"), 8192), bytes.Repeat([]byte("B"), 8192)
	if err := os.WriteFile(f, old, 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tick := now.Truncate(4 * time.Millisecond) // one coarse clock tick
	if err := os.Chtimes(f, tick, tick); err != nil {
		t.Fatal(err)
	}
	meta := repository.SnapshotMeta{Workload: "db", Time: now}
	if _, _, err := r.Backup(ctx, repository.BackupOptions{Root: src, Meta: meta}); err != nil {
		t.Fatal(err)
	}
	// Rewritten in place (same inode, same size) in the same tick.
	if err := os.WriteFile(f, fresh, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f, tick, tick); err != nil {
		t.Fatal(err)
	}
	meta.Time = now.Add(time.Minute)
	snap, _, err := r.Backup(ctx, repository.BackupOptions{Root: src, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Parent == "" {
		t.Fatal("the second backup has no parent: the test does not exercise reuse")
	}
	dst := t.TempDir()
	if _, err := r.Restore(ctx, snap.ID, repository.RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "page.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fresh) {
		t.Fatalf("restored %q..., want the rewritten content %q...", got[:4], fresh[:4])
	}
}
