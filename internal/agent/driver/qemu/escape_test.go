package qemu_test

import (
	"context"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/qemu"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// openImages lists the files QEMU (pid) holds open.
func openImages(t *testing.T, pid int) []string {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("list QEMU's open files: %v", err)
	}
	var files []string
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && strings.HasPrefix(l, "/") {
			files = append(files, l)
		}
	}
	return files
}

// The disk is a link inside the workload directory to an image whose
// backing name is relative: the check resolved it beside the link's
// target, so QEMU must be given that resolved chain, not resolve the name
// beside the link itself (which reaches outside).
func TestRelativeBackingBehindALinkOpensTheCheckedFile(t *testing.T) {
	var outside, decoy string
	d := newVM(t, func(t *testing.T, dir, vmDir string) {
		outside = filepath.Join(dir, "host-secret.img")
		decoy = filepath.Join(vmDir, "host-secret.img")
		qemuImg(t, "create", "-q", "-f", "raw", outside, "1M")
		if err := os.Mkdir(filepath.Join(vmDir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		qemuImg(t, "create", "-q", "-f", "raw", decoy, "1M") // what the check resolves the backing name to
		qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "../host-secret.img", "-F", "raw", filepath.Join(vmDir, "sub", "real.qcow2"))
		if os.Geteuid() == 0 {
			giveTo(t, TestUser, dir, filepath.Join(vmDir, "sub"), filepath.Join(vmDir, "sub", "real.qcow2"))
		}
		if err := os.Symlink("sub/real.qcow2", filepath.Join(vmDir, "disk.qcow2")); err != nil {
			t.Fatal(err)
		}
	})
	if err := d.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	files := openImages(t, vmPID(t, d))
	for _, f := range files {
		if f == outside {
			t.Errorf("QEMU opened %s, outside the workload directory (open: %v)", f, files)
		}
	}
	found := false
	for _, f := range files {
		found = found || f == decoy
	}
	if !found {
		t.Errorf("QEMU did not open the checked backing file %s (open: %v)", decoy, files)
	}
}

// A relative external data-file name is resolved by QEMU against its own
// working directory, not the image's: images with a data file are refused.
func TestExternalDataFileIsRefused(t *testing.T) {
	d := newVM(t, func(t *testing.T, dir, vmDir string) {
		outside := filepath.Join(dir, "host-secret.img")
		qemuImg(t, "create", "-q", "-f", "raw", outside, "64M")
		rel := strings.TrimPrefix(outside, "/")
		decoy := filepath.Join(vmDir, rel) // what a check resolving beside the image finds
		if err := os.MkdirAll(filepath.Dir(decoy), 0o755); err != nil {
			t.Fatal(err)
		}
		qemuImg(t, "create", "-q", "-f", "raw", decoy, "64M")
		qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "data_file="+decoy, filepath.Join(vmDir, "disk.qcow2"), "64M")
		// Rewrites the header's name to the relative one (and may complain).
		_ = runQemuImg("amend", "-q", "-f", "qcow2", "-o", "data_file="+rel, filepath.Join(vmDir, "disk.qcow2"))
	})
	err := d.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "external data file") {
		t.Fatalf("start = %v, want a refusal naming the external data file", err)
	}
	if st, err := d.Status(context.Background()); st != api.StateInactive || err != nil {
		t.Fatalf("after a refused start the VM is %q (%v), want inactive", st, err)
	}
}

// The checked image is replaced, just as QEMU starts, by one whose backing
// file is outside: QEMU must not read the new image's backing name (the
// chain it is given is the checked one, ending in no backing file).
func TestImageSwappedAfterTheCheckCannotReachOutside(t *testing.T) {
	var outside, vm string
	d := newVM(t, func(t *testing.T, dir, vmDir string) {
		vm = vmDir
		outside = filepath.Join(dir, "host-secret.img")
		qemuImg(t, "create", "-q", "-f", "raw", outside, "64M")
		qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(vmDir, "disk.qcow2"), "64M")
		qemuImg(t, "create", "-q", "-f", "qcow2", "-b", outside, "-F", "raw", filepath.Join(vmDir, "evil.qcow2"))
	})
	inode := func(path string) uint64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	checked, evil := inode(filepath.Join(vm, "disk.qcow2")), inode(filepath.Join(vm, "evil.qcow2"))
	done := make(chan bool)
	go func() { // the attacker swaps as soon as a QEMU of this VM exists
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			ents, _ := os.ReadDir("/proc")
			for _, e := range ents {
				b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
				if strings.Contains(string(b), "qemu-system") && strings.Contains(string(env), filepath.Dir(vm)+"/state/") {
					done <- os.Rename(filepath.Join(vm, "evil.qcow2"), filepath.Join(vm, "disk.qcow2")) == nil
					return
				}
			}
		}
		done <- false
	}()
	err := d.Start(context.Background())
	if !<-done {
		t.Fatal("the swap did not happen")
	}
	if err != nil {
		return // QEMU refusing the swapped image is fine too
	}
	pid := vmPID(t, d)
	files := openImages(t, pid)
	for _, f := range files {
		if f == outside {
			t.Errorf("QEMU opened %s, outside the workload directory, after the check passed (open: %v)", f, files)
		}
	}
	// QEMU holds the image that was checked (by descriptor), not the one
	// swapped in at its path.
	fds, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	held := map[uint64]bool{}
	for _, fd := range fds {
		if fi, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name()); err == nil {
			held[fi.Sys().(*syscall.Stat_t).Ino] = true
		}
	}
	if held[evil] || !held[checked] {
		t.Errorf("QEMU holds the swapped-in image (%v) or not the checked one (%v): it opened the path again after the check", held[evil], held[checked])
	}
}

// runQemuImg runs qemu-img and returns its error (for steps that may complain).
func runQemuImg(args ...string) error { return exec.Command("qemu-img", args...).Run() }

// A state directory another user owns (a workload that moved from an exec
// driver running as that user) is handed back to the agent before QEMU
// starts, so nobody else can plant links where the agent writes.
func TestStateDirOwnedByAnotherUserIsTakenBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	vmDir := filepath.Join(dir, "vm")
	if err := os.Mkdir(vmDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := qemu.New(qemu.Config{Workload: "vm", Dir: vmDir, Disks: []string{"disk.qcow2"}, User: TestUser, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(state)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("state directory is uid %d mode %v after New; want root's, writable by nobody else", st.Uid, fi.Mode())
	}
}
