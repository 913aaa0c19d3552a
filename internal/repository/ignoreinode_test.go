package repository_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// copyTree copies src into a new directory: same content, sizes and
// modification times, new inodes (what a reflink view looks like on each
// backup).
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(out, fi.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(out, data, fi.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(out, fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// A root whose files get new inodes on every backup: with IgnoreInode the
// unchanged files are reused from the parent, without it all are read.
func TestIgnoreInodeReusesFreshCopies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, clock := newTestRepo(t)
	src := makeTree(t, 3)
	meta := repository.SnapshotMeta{Workload: "w"}
	_, st1, err := r.Backup(ctx, repository.BackupOptions{Root: copyTree(t, src), Meta: meta, IgnoreInode: true})
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	_, st2, err := r.Backup(ctx, repository.BackupOptions{Root: copyTree(t, src), Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	if st2.FilesUnchanged != 0 || st2.BytesRead == 0 {
		t.Fatalf("without IgnoreInode a fresh copy reused %d files and read %d bytes; want every file read again", st2.FilesUnchanged, st2.BytesRead)
	}
	clock.Add(time.Hour)
	_, st3, err := r.Backup(ctx, repository.BackupOptions{Root: copyTree(t, src), Meta: meta, IgnoreInode: true})
	if err != nil {
		t.Fatal(err)
	}
	if st3.FilesUnchanged != st1.Files || st3.BytesRead != 0 {
		t.Fatalf("with IgnoreInode a fresh copy reused %d of %d files and read %d bytes; want all reused, nothing read", st3.FilesUnchanged, st1.Files, st3.BytesRead)
	}
}
