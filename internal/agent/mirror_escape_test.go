package agent

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// outsideDir is a directory outside the mirror standing in for /etc: mode
// 0755 and a passwd file the attack would replace.
func outsideDir(t *testing.T) string {
	t.Helper()
	outside := t.TempDir()
	if err := os.Chmod(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(outside, "passwd"), "root:x:0:0::/root:/bin/sh\n")
	return outside
}

// checkOutsideUntouched fails if the sync changed the outside directory.
func checkOutsideUntouched(t *testing.T, outside string) {
	t.Helper()
	fi, err := os.Lstat(outside)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("the directory outside the mirror became mode %v: the sync followed a stale symlink", fi.Mode().Perm())
	}
	if got := read(t, filepath.Join(outside, "passwd")); got != "root:x:0:0::/root:/bin/sh\n" {
		t.Errorf("the file outside the mirror was replaced with %q", got)
	}
	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the sync wrote into the directory outside the mirror: %d entries", len(entries))
	}
}

// C1: a workload's user makes a name a symlink to a directory outside, one
// backup copies the link into the root-owned mirror, the user turns the
// name into a 0777 directory holding "passwd", and the next backup must
// write the mirror's own directory, not chmod and fill the link's target.
func TestSyncMirrorStaleSymlinkCannotLeadOut(t *testing.T) {
	t.Parallel()
	for name, target := range map[string]func(outside, mirrorEntry string) string{
		"absolute": func(outside, _ string) string { return outside },
		"relative": func(outside, mirrorEntry string) string {
			r, err := filepath.Rel(filepath.Dir(mirrorEntry), outside)
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			volume, mirror, outside := t.TempDir(), t.TempDir(), outsideDir(t)
			mkdir(t, filepath.Join(volume, "apps/web"))
			symlink(t, target(outside, filepath.Join(mirror, "apps/web/data")), filepath.Join(volume, "apps/web/data"))
			if _, err := syncMirror(t.Context(), volume, []string{"apps/web"}, mirror); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Lstat(filepath.Join(mirror, "apps/web/data")); err != nil || fi.Mode().Type() != fs.ModeSymlink {
				t.Fatalf("test setup: the first sync should copy the symlink as a link (%v)", err)
			}

			removeFile(t, filepath.Join(volume, "apps/web/data"))
			write(t, filepath.Join(volume, "apps/web/data/passwd"), "evil::0:0::/:/bin/sh\n")
			if err := os.Chmod(filepath.Join(volume, "apps/web/data"), 0o777); err != nil {
				t.Fatal(err)
			}
			if _, err := syncMirror(t.Context(), volume, []string{"apps/web"}, mirror); err != nil {
				t.Fatal(err)
			}
			checkOutsideUntouched(t, outside)
			fi, err := os.Lstat(filepath.Join(mirror, "apps/web/data"))
			if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
				t.Fatalf("the mirror's data should now be a 0777 directory: %v, %v", fi, err)
			}
			if got := read(t, filepath.Join(mirror, "apps/web/data/passwd")); got != "evil::0:0::/:/bin/sh\n" {
				t.Fatalf("the mirror holds %q", got)
			}
		})
	}
}

// The node view copies top-level entries of the volume: a top-level name
// that was a symlink and is now a directory must not lead out either, nor
// may a symlink standing where a workload path's parent should be.
func TestSyncMirrorNodeViewAndParentsCannotLeadOut(t *testing.T) {
	t.Parallel()
	volume, mirror, outside := t.TempDir(), t.TempDir(), outsideDir(t)
	symlink(t, outside, filepath.Join(volume, "apps"))
	paths, err := volumeView(volume)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := syncMirror(t.Context(), volume, paths, mirror); err != nil {
		t.Fatal(err)
	}
	removeFile(t, filepath.Join(volume, "apps"))
	write(t, filepath.Join(volume, "apps/passwd"), "evil\n")
	if _, err := syncMirror(t.Context(), volume, paths, mirror); err != nil {
		t.Fatal(err)
	}
	checkOutsideUntouched(t, outside)
	if got := read(t, filepath.Join(mirror, "apps/passwd")); got != "evil\n" {
		t.Fatalf("the mirror holds %q", got)
	}

	// A workload mirror whose parent directory is a symlink (left by an
	// older agent, or a changed config).
	mirror2 := t.TempDir()
	symlink(t, outside, filepath.Join(mirror2, "apps"))
	write(t, filepath.Join(volume, "apps/web/passwd"), "evil\n")
	if _, err := syncMirror(t.Context(), volume, []string{"apps/web"}, mirror2); err != nil {
		t.Fatal(err)
	}
	checkOutsideUntouched(t, outside)
	if got := read(t, filepath.Join(mirror2, "apps/web/passwd")); got != "evil\n" {
		t.Fatalf("the mirror holds %q", got)
	}
}

// Every change of an entry's type between two syncs leaves the mirror
// holding exactly what the volume holds, and a link into the mirror itself
// does not make the sync write another entry's copy.
func TestSyncMirrorEntryTypeChanges(t *testing.T) {
	t.Parallel()
	volume, mirror := t.TempDir(), t.TempDir()
	w := func(p string) string { return filepath.Join(volume, "apps/web", p) }
	write(t, w("file-to-link"), "was a file")
	write(t, w("target"), "link target")
	symlink(t, "target", w("link-to-file"))
	write(t, w("dir-to-file/inner"), "inner")
	write(t, w("file-to-dir"), "was a file")
	write(t, w("other/keep"), "other's copy")
	symlink(t, "other", w("link-to-dir"))
	if _, err := syncMirror(t.Context(), volume, []string{"apps/web"}, mirror); err != nil {
		t.Fatal(err)
	}

	removeFile(t, w("file-to-link"))
	symlink(t, "target", w("file-to-link"))
	removeFile(t, w("link-to-file"))
	write(t, w("link-to-file"), "now a file")
	if err := os.RemoveAll(w("dir-to-file")); err != nil {
		t.Fatal(err)
	}
	write(t, w("dir-to-file"), "now a file")
	removeFile(t, w("file-to-dir"))
	write(t, w("file-to-dir/inner"), "now a dir")
	removeFile(t, w("link-to-dir"))
	write(t, w("link-to-dir/keep"), "replaced through the link?")
	if _, err := syncMirror(t.Context(), volume, []string{"apps/web"}, mirror); err != nil {
		t.Fatal(err)
	}

	m := func(p string) string { return filepath.Join(mirror, "apps/web", p) }
	if target, err := readlink(m("file-to-link")); err != nil || target != "target" {
		t.Errorf("file-to-link: %q, %v; want a link to target", target, err)
	}
	for p, want := range map[string]string{
		"link-to-file": "now a file", "dir-to-file": "now a file", "file-to-dir/inner": "now a dir",
		"link-to-dir/keep": "replaced through the link?", "other/keep": "other's copy", "target": "link target",
	} {
		fi, err := os.Lstat(m(p))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s in the mirror: %v, %v; want a regular file", p, fi, err)
			continue
		}
		if got := read(t, m(p)); got != want {
			t.Errorf("%s in the mirror holds %q, want %q", p, got, want)
		}
	}
	if fi, err := os.Lstat(m("link-to-dir")); err != nil || !fi.IsDir() {
		t.Errorf("link-to-dir in the mirror: %v, %v; want a directory", fi, err)
	}
}

// The mirror keeps setuid, setgid and sticky bits, so a backup holds the
// files as they are (restore decides whether to keep them), and its root
// is 0700 so nobody but the agent reaches a setuid copy.
func TestSyncMirrorKeepsSpecialModeBitsBehindA0700Root(t *testing.T) {
	t.Parallel()
	volume, mirror := t.TempDir(), t.TempDir()
	if err := os.Chmod(mirror, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(volume, "apps/web/suid"), "#!/bin/sh\n")
	mode := 0o755 | fs.ModeSetuid | fs.ModeSetgid
	if err := os.Chmod(filepath.Join(volume, "apps/web/suid"), mode); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // the second finds the copy up to date
		st, err := syncMirror(t.Context(), volume, []string{"apps/web"}, mirror)
		if err != nil {
			t.Fatal(err)
		}
		if round == 1 && st.Copied != 0 {
			t.Errorf("an unchanged setuid file was copied again")
		}
		fi, err := os.Lstat(filepath.Join(mirror, "apps/web/suid"))
		if err != nil || fi.Mode() != mode {
			t.Fatalf("round %d: the mirror's copy has mode %v (%v), want %v", round, fi.Mode(), err, mode)
		}
	}
	if fi, err := os.Lstat(mirror); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the mirror's root has mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
}

// The source side: a directory the walk saw that the workload swaps for a
// symlink (to another workload's data, or out of the volume) before the
// agent opens it is refused, not read through the link.
func TestSyncMirrorRefusesADirectorySwappedForALink(t *testing.T) {
	t.Parallel()
	volume, outside := t.TempDir(), outsideDir(t)
	write(t, filepath.Join(volume, "apps/web/sub/own"), "web's")
	write(t, filepath.Join(volume, "apps/other/secret"), "other's")
	vol, err := os.OpenRoot(volume)
	if err != nil {
		t.Fatal(err)
	}
	defer vol.Close()
	for _, target := range []string{"../other", outside} {
		if err := os.RemoveAll(filepath.Join(volume, "apps/web/sub")); err != nil {
			t.Fatal(err)
		}
		mkdir(t, filepath.Join(volume, "apps/web/sub"))
		seen, err := vol.Lstat("apps/web/sub")
		if err != nil {
			t.Fatal(err)
		}
		if d, err := openDirAsSeen(vol, "apps/web/sub", seen); err != nil {
			t.Fatalf("opening the directory the walk saw: %v", err)
		} else {
			d.Close()
		}
		// The swap, between the walk's lstat and the open.
		if err := os.Remove(filepath.Join(volume, "apps/web/sub")); err != nil {
			t.Fatal(err)
		}
		symlink(t, target, filepath.Join(volume, "apps/web/sub"))
		if d, err := openDirAsSeen(vol, "apps/web/sub", seen); err == nil {
			d.Close()
			t.Fatalf("a directory swapped for a link to %s was opened", target)
		}
	}
	// Without a swap, a link is copied as a link and nothing behind it.
	mirror := t.TempDir()
	if _, err := syncMirror(t.Context(), volume, []string{"apps/web"}, mirror); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(mirror, "apps/web/sub")); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Fatalf("the link was not copied as a link: %v, %v", fi, err)
	}
	if exists(filepath.Join(mirror, "apps/other")) {
		t.Fatal("the mirror copied files from behind a link")
	}
}
