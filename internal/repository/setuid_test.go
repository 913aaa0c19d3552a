package repository_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// A restore drops setuid and setgid from files unless asked to keep them;
// sticky and a directory's setgid stay.
func TestRestoreDropsSetuidUnlessKept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, _ := newTestRepo(t)
	src := t.TempDir()
	special := map[string]fs.FileMode{
		"bin/suid":   0o755 | fs.ModeSetuid,
		"bin/sgid":   0o755 | fs.ModeSetgid,
		"bin/both":   0o750 | fs.ModeSetuid | fs.ModeSetgid,
		"bin/sticky": 0o644 | fs.ModeSticky,
	}
	for p, mode := range special {
		writeFile(t, filepath.Join(src, p), []byte("#!/bin/sh\n"), 0o644)
		if err := os.Chmod(filepath.Join(src, p), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "bin"), 0o775|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	snap, _, err := r.Backup(ctx, repository.BackupOptions{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	check := func(dst string, keep bool) {
		t.Helper()
		for p, mode := range special {
			fi, err := os.Lstat(filepath.Join(dst, p))
			if err != nil {
				t.Fatal(err)
			}
			want := mode
			if !keep {
				want &^= fs.ModeSetuid | fs.ModeSetgid
			}
			if got := fi.Mode() &^ fs.ModeType; got != want {
				t.Errorf("keep=%v: %s restored with mode %v, want %v", keep, p, got, want)
			}
		}
		if fi, err := os.Lstat(filepath.Join(dst, "bin")); err != nil || fi.Mode()&fs.ModeSetgid == 0 {
			t.Errorf("keep=%v: the directory lost its setgid bit (%v, %v)", keep, fi, err)
		}
	}
	byDefault := t.TempDir()
	if _, err := r.Restore(ctx, snap.ID, repository.RestoreOptions{Target: byDefault}); err != nil {
		t.Fatal(err)
	}
	check(byDefault, false)
	kept := t.TempDir()
	if _, err := r.Restore(ctx, snap.ID, repository.RestoreOptions{Target: kept, KeepSetuid: true}); err != nil {
		t.Fatal(err)
	}
	check(kept, true)
}
