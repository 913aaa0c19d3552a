// Package testfs mounts real file systems on loop devices for tests of the
// point-in-time view methods (XFS with reflink, btrfs, ext4). It needs root:
// without it the test is skipped. With CLUSTERGUARD_REQUIRE_FS_TESTS=1 (CI,
// make test) a missing mkfs tool or a failing mount fails the test loudly
// instead of skipping it.
package testfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// RequireEnv makes missing tools a failure instead of a skip.
const RequireEnv = "CLUSTERGUARD_REQUIRE_FS_TESTS"

// Types are the file systems Mount knows, with their mkfs command.
var mkfs = map[string][]string{
	"xfs":   {"mkfs.xfs", "-q", "-m", "reflink=1"},
	"btrfs": {"mkfs.btrfs", "-q"},
	"ext4":  {"mkfs.ext4", "-q", "-F"},
}

// Mount creates a 300 MiB image of fstype (xfs, btrfs or ext4), attaches
// it to a loop device and mounts it; t.Cleanup unmounts it and detaches the
// loop device. It returns the mount point.
func Mount(t testing.TB, fstype string) string {
	t.Helper()
	return MountSize(t, fstype, 300<<20)
}

// MountSize is Mount with an image of size bytes (sparse: only what is
// written takes space).
func MountSize(t testing.TB, fstype string, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("mounting a %s loop device needs root", fstype)
	}
	cmd, ok := mkfs[fstype]
	if !ok {
		t.Fatalf("testfs: unknown file system %q", fstype)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format+" (set %s=1 to fail instead)", append(args, RequireEnv)...)
	}
	for _, tool := range []string{cmd[0], "losetup", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			fail("testfs: %s is missing: %v; run tools/test-deps.sh (xfsprogs, btrfs-progs)", tool, err)
		}
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, fstype+".img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cmd[0], append(cmd[1:], img)...).CombinedOutput(); err != nil {
		fail("testfs: %s: %v: %s", strings.Join(cmd, " "), err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		fail("testfs: losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("testfs: detach %s: %v: %s", dev, err, out)
		}
	})
	if out, err := exec.Command("mount", "-t", fstype, dev, mnt).CombinedOutput(); err != nil {
		fail("testfs: mount %s: %v: %s", dev, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			// Something still has a file open (a process the test started
			// and its cleanup has not stopped): detach lazily.
			t.Logf("testfs: umount %s: %v: %s; detaching lazily", mnt, err, out)
			if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
				t.Errorf("testfs: umount -l %s: %v: %s", mnt, err, out)
			}
		}
	})
	return mnt
}

// Run runs a command for a test, failing it with the output on error.
func Run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// Free returns the free bytes of the file system holding path, after
// writing back what is cached (XFS and btrfs allocate lazily).
func Free(t testing.TB, path string) int64 {
	t.Helper()
	syscall.Sync()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatalf("statfs %s: %v", path, err)
	}
	return int64(st.Bavail) * st.Bsize
}
