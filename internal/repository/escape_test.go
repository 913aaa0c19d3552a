package repository_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// Symlinks already in the target must be replaced, never written through.
func TestRestoreDoesNotFollowSymlinksOutOfTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, _ := newTestRepo(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "dir", "file.txt"), []byte("from the snapshot"), 0o644)
	writeFile(t, filepath.Join(src, "top.txt"), []byte("top"), 0o644)
	snap, _, err := r.Backup(ctx, repository.BackupOptions{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	writeFile(t, victim, []byte("must not change"), 0o644)

	dst := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dst, "dir")); err != nil { // dir -> outside
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dst, "top.txt")); err != nil { // top.txt -> victim
		t.Fatal(err)
	}
	if _, err := r.Restore(ctx, snap.ID, repository.RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "must not change" {
		t.Fatalf("restore wrote through a symlink: victim now %q", b)
	}
	if _, err := os.Stat(filepath.Join(outside, "file.txt")); !os.IsNotExist(err) {
		t.Fatalf("restore created a file outside the target: %v", err)
	}
	compareTrees(t, summarize(t, src), summarize(t, dst))
}

// A restored symlink pointing outside is recreated as a link, and a
// restore into the same target again does not write through it.
func TestRestoredSymlinkIsNotFollowedByLaterRestores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, clock := newTestRepo(t)
	outside := t.TempDir()
	src1 := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(src1, "d")); err != nil {
		t.Fatal(err)
	}
	s1 := backupAt(t, r, src1, repository.SnapshotMeta{Workload: "1"}, clock.Now())
	src2 := t.TempDir()
	writeFile(t, filepath.Join(src2, "d", "planted"), []byte("x"), 0o644)
	s2 := backupAt(t, r, src2, repository.SnapshotMeta{Workload: "2"}, clock.Now())

	dst := t.TempDir()
	if _, err := r.Restore(ctx, s1.ID, repository.RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(dst, "d")); err != nil || target != outside {
		t.Fatalf("symlink not restored as a link: %q %v", target, err)
	}
	if _, err := r.Restore(ctx, s2.ID, repository.RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); !os.IsNotExist(err) {
		t.Fatalf("second restore escaped through the restored symlink: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "d")); err != nil || !fi.IsDir() {
		t.Fatalf("d should now be a real directory: %v", err)
	}
}
