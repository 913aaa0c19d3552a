package agent

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/testfs"
)

// viewServer is a Server with just what views need, on volume.
func viewServer(t *testing.T, volume string) *Server {
	return &Server{cfg: &Config{Node: "node-1", SharedVolume: volume, StateDir: t.TempDir()}, logger: slog.New(slog.DiscardHandler)}
}

func viewWorkload(method string, paths ...string) *workload {
	return &workload{cfg: WorkloadConfig{Name: "web", Driver: "exec", Paths: paths, SnapshotMethod: method}}
}

// fillWorkload writes a workload directory: a big random file, a small
// one, a subdirectory, a setuid file owned by another user and a symlink
// pointing out of the volume. It returns the big file's content.
func fillWorkload(t *testing.T, dir string, big int) []byte {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o750))
	data := make([]byte, big)
	_, _ = rand.Read(data)
	must(t, os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o640))
	must(t, os.WriteFile(filepath.Join(dir, "sub", "small.txt"), []byte("small"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chown(filepath.Join(dir, "tool"), 1234, 1234))
	must(t, os.Chmod(filepath.Join(dir, "tool"), 0o755|fs.ModeSetuid)) // after chown, which clears setuid
	must(t, os.Symlink("/etc", filepath.Join(dir, "escape")))
	return data
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkView compares the view of apps/web with what fillWorkload wrote.
func checkView(t *testing.T, root string, big []byte) {
	t.Helper()
	dir := filepath.Join(root, "apps", "web")
	if got, err := os.ReadFile(filepath.Join(dir, "big.bin")); err != nil || !bytes.Equal(got, big) {
		t.Errorf("big.bin in the view: %d bytes, err %v; want the workload's %d bytes", len(got), err, len(big))
	}
	if got := read(t, filepath.Join(dir, "sub", "small.txt")); got != "small" {
		t.Errorf("sub/small.txt = %q", got)
	}
	fi, err := os.Lstat(filepath.Join(dir, "tool"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 || st.Uid != 1234 || st.Gid != 1234 {
		t.Errorf("tool in the view: mode %v owner %d:%d, want setuid 0755 owned by 1234:1234", fi.Mode(), st.Uid, st.Gid)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "sub")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("sub in the view: %v %v, want a 0750 directory", fi, err)
	}
	// The link is kept as a link; nothing of /etc was copied.
	if target, err := os.Readlink(filepath.Join(dir, "escape")); err != nil || target != "/etc" {
		t.Errorf("escape in the view: %q %v, want the symlink to /etc", target, err)
	}
}

// On XFS with reflink=1, auto clones every file into a view on the volume:
// the view holds the workload's files, owners and modes, costs no data
// blocks, keeps links as links, and is removed afterwards.
func TestViewReflinkOnXFS(t *testing.T) {
	vol := testfs.Mount(t, "xfs")
	big := fillWorkload(t, filepath.Join(vol, "apps", "web"), 64<<20)
	s := viewServer(t, vol)
	v, remove, err := s.prepareView(viewWorkload(SnapshotAuto, "apps/web"), "run-1", s.logger)
	if err != nil {
		t.Fatal(err)
	}
	if v.method != SnapshotReflink || v.why != "" {
		t.Fatalf("auto on XFS chose %q (%s), want reflink", v.method, v.why)
	}
	free := testfs.Free(t, vol)
	st, err := v.take(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if used := free - testfs.Free(t, vol); used > 8<<20 {
		t.Errorf("the view used %d bytes of the volume; a reflink view of 64 MiB should use almost none", used)
	}
	if st.BytesCloned < int64(len(big)) || st.BytesCopied != 0 {
		t.Errorf("stats %+v: want everything cloned, nothing copied", st)
	}
	root, err := v.readRoot()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(root, "/proc/self/fd/") || !v.FreshInodes() {
		t.Errorf("root %q fresh inodes %v: want the held descriptor and fresh inodes", root, v.FreshInodes())
	}
	checkView(t, root, big)
	if _, err := os.Stat(filepath.Join(root, "apps", "web", "escape", "passwd")); err != nil {
		t.Errorf("the view's escape link no longer resolves: %v", err) // sanity: it is a link, not a copy
	}
	remove()
	left, _ := os.ReadDir(filepath.Join(vol, ViewsDir, "node-1", "web"))
	if len(left) != 0 {
		t.Errorf("views left after the backup: %v", left)
	}
	// An explicit reflink works here too.
	if v, remove, err := s.prepareView(viewWorkload(SnapshotReflink, "apps/web"), "run-2", s.logger); err != nil || v.method != SnapshotReflink {
		t.Errorf("explicit reflink on XFS: %v", err)
	} else {
		remove()
	}
}

// On btrfs, a path that is a subvolume gets a read-only snapshot (the
// driver's excluded files left out), a plain directory a reflink view, and
// asking for a snapshot of a plain directory is an error naming the fix.
func TestViewSnapshotAndReflinkOnBtrfs(t *testing.T) {
	vol := testfs.Mount(t, "btrfs")
	must(t, os.MkdirAll(filepath.Join(vol, "apps"), 0o755))
	testfs.Run(t, "btrfs", "subvolume", "create", filepath.Join(vol, "apps", "web"))
	big := fillWorkload(t, filepath.Join(vol, "apps", "web"), 16<<20)
	s := viewServer(t, vol)

	v, remove, err := s.prepareView(viewWorkload(SnapshotAuto, "apps/web"), "run-1", s.logger)
	if err != nil {
		t.Fatal(err)
	}
	if v.method != SnapshotBtrfs {
		t.Fatalf("auto on a btrfs subvolume chose %q (%s), want btrfs_snapshot", v.method, v.why)
	}
	if _, err := v.take(t.Context()); err != nil {
		t.Fatal(err)
	}
	root, err := v.readRoot()
	if err != nil {
		t.Fatal(err)
	}
	checkView(t, root, big)
	if err := os.WriteFile(filepath.Join(root, "apps", "web", "new"), nil, 0o600); !errors.Is(err, syscall.EROFS) {
		t.Errorf("writing into the snapshot: %v, want EROFS (a read-only snapshot)", err)
	}
	remove()
	if left, _ := os.ReadDir(filepath.Join(vol, ViewsDir, "node-1", "web")); len(left) != 0 {
		t.Errorf("views left after the backup: %v", left)
	}

	// Excluded files (postmaster.pid) are not in the snapshot, which is
	// still read-only.
	must(t, os.WriteFile(filepath.Join(vol, "apps", "web", "postmaster.pid"), []byte("123"), 0o600))
	v, remove, err = s.prepareView(viewWorkload(SnapshotBtrfs, "apps/web"), "run-2", s.logger)
	if err != nil {
		t.Fatal(err)
	}
	v.exclude = []string{filepath.Join(vol, "apps", "web", "postmaster.pid")}
	if _, err := v.take(t.Context()); err != nil {
		t.Fatal(err)
	}
	root, _ = v.readRoot()
	if _, err := os.Lstat(filepath.Join(root, "apps", "web", "postmaster.pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the excluded postmaster.pid is in the snapshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "apps", "web", "new"), nil, 0o600); !errors.Is(err, syscall.EROFS) {
		t.Errorf("writing into the snapshot: %v, want EROFS", err)
	}
	remove()

	// A plain directory on btrfs: reflink; an explicit snapshot of it: an error.
	plain := filepath.Join(vol, "apps", "plain")
	must(t, os.MkdirAll(plain, 0o755))
	must(t, os.WriteFile(filepath.Join(plain, "f"), []byte("plain"), 0o644))
	v, remove, err = s.prepareView(viewWorkload(SnapshotAuto, "apps/plain"), "run-3", s.logger)
	if err != nil || v.method != SnapshotReflink {
		t.Fatalf("auto on a plain btrfs directory: %v, method %v; want reflink", err, v)
	}
	st, err := v.take(t.Context())
	if err != nil || st.BytesCloned != 5 {
		t.Errorf("reflink view on btrfs: %+v %v", st, err)
	}
	remove()
	if _, _, err := s.prepareView(viewWorkload(SnapshotBtrfs, "apps/plain"), "run-4", s.logger); err == nil || !strings.Contains(err.Error(), "not a btrfs subvolume") {
		t.Errorf("explicit btrfs_snapshot of a plain directory: %v, want an error saying it is not a subvolume", err)
	}

	// A nested subvolume would be an empty directory in a snapshot of its
	// parent: auto clones instead.
	testfs.Run(t, "btrfs", "subvolume", "create", filepath.Join(vol, "apps", "web", "nested"))
	must(t, os.WriteFile(filepath.Join(vol, "apps", "web", "nested", "inner"), []byte("inner"), 0o644))
	v, remove, err = s.prepareView(viewWorkload(SnapshotAuto, "apps/web"), "run-5", s.logger)
	if err != nil || v.method != SnapshotReflink {
		t.Fatalf("auto with a nested subvolume: %v %v, want reflink", err, v)
	}
	if _, err := v.take(t.Context()); err != nil {
		t.Fatal(err)
	}
	root, _ = v.readRoot()
	if got := read(t, filepath.Join(root, "apps", "web", "nested", "inner")); got != "inner" {
		t.Errorf("nested subvolume's file in the view: %q", got)
	}
	remove()
}

// On ext4 there is no clone: auto falls back to the mirror and says why;
// an explicit reflink is an error.
func TestViewFallsBackToMirrorOnExt4(t *testing.T) {
	vol := testfs.Mount(t, "ext4")
	big := fillWorkload(t, filepath.Join(vol, "apps", "web"), 1<<20)
	s := viewServer(t, vol)
	v, remove, err := s.prepareView(viewWorkload(SnapshotAuto, "apps/web"), "run-1", s.logger)
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	if v.method != SnapshotMirror || !strings.Contains(v.why, "cannot clone") {
		t.Fatalf("auto on ext4: method %q why %q, want mirror because the file system cannot clone", v.method, v.why)
	}
	st, err := v.take(t.Context())
	if err != nil || st.BytesCopied < int64(len(big)) {
		t.Fatalf("mirror on ext4: %+v %v", st, err)
	}
	root, _ := v.readRoot()
	if !strings.HasPrefix(root, s.cfg.StateDir) || v.FreshInodes() {
		t.Errorf("mirror root %q (fresh inodes %v), want the node-local mirror", root, v.FreshInodes())
	}
	checkView(t, root, big)
	if left, _ := os.ReadDir(filepath.Join(vol, ViewsDir, "node-1", "web")); len(left) != 0 {
		t.Errorf("the failed probe left a view behind: %v", left)
	}
	if _, _, err := s.prepareView(viewWorkload(SnapshotReflink, "apps/web"), "run-2", s.logger); err == nil || !strings.Contains(err.Error(), "snapshot_method = \"auto\" or \"mirror\"") {
		t.Errorf("explicit reflink on ext4: %v, want an error naming the fix", err)
	}
}

// Views an agent left behind when it crashed (a read-only snapshot among
// them) are removed when it starts; another node's views are not touched.
func TestStaleViewsRemovedAtStart(t *testing.T) {
	vol := testfs.Mount(t, "btrfs")
	must(t, os.MkdirAll(filepath.Join(vol, "apps"), 0o755))
	testfs.Run(t, "btrfs", "subvolume", "create", filepath.Join(vol, "apps", "web"))
	must(t, os.MkdirAll(filepath.Join(vol, "apps", "plain"), 0o755))
	fillWorkload(t, filepath.Join(vol, "apps", "web"), 1<<20)
	must(t, os.WriteFile(filepath.Join(vol, "apps", "plain", "f"), []byte("x"), 0o644))
	s := viewServer(t, vol)
	for _, p := range []string{"apps/web", "apps/plain"} {
		v, _, err := s.prepareView(viewWorkload(SnapshotAuto, p), "crashed", s.logger)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.take(t.Context()); err != nil {
			t.Fatal(err)
		}
		_ = v.root.Close() // the agent died: descriptors gone, views left
		_ = v.dir.Close()
		_ = v.parent.Close()
	}
	other := filepath.Join(vol, ViewsDir, "node-2", "web", "running")
	must(t, os.MkdirAll(other, 0o700))
	nodeViews := filepath.Join(vol, ViewsDir, "node-1")
	if left, _ := os.ReadDir(filepath.Join(nodeViews, "web")); len(left) != 2 {
		t.Fatalf("set-up: %d views, want 2", len(left))
	}
	s.removeStaleViews()
	if left, err := os.ReadDir(nodeViews); err != nil || len(left) != 0 {
		t.Errorf("views left after start: %v %v", left, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another node's view was removed: %v", err)
	}
}

// A metadata directory replaced by a symlink into a workload's directory
// (a user who can write the volume's root renamed .clusterguard away) is
// refused: auto falls back to the mirror and nothing is written where the
// link points, where that user could swap the view's directories.
func TestViewsDirSymlinkRefused(t *testing.T) {
	vol := testfs.Mount(t, "xfs")
	fillWorkload(t, filepath.Join(vol, "apps", "web"), 4096)
	trap := filepath.Join(vol, "apps", "web", "trap")
	must(t, os.MkdirAll(trap, 0o777))
	must(t, os.Symlink("apps/web/trap", filepath.Join(vol, MetadataDir)))
	s := viewServer(t, vol)
	v, remove, err := s.prepareView(viewWorkload(SnapshotAuto, "apps/web"), "run-1", s.logger)
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	if v.method != SnapshotMirror || !strings.Contains(v.why, "symlink") {
		t.Errorf("views dir is a symlink: method %q why %q, want the mirror because of the link", v.method, v.why)
	}
	if ents, _ := os.ReadDir(trap); len(ents) != 0 {
		t.Errorf("the agent wrote through the symlink into the workload's directory: %v", ents)
	}
}
