package qemu_test

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/qemu"
)

// QEMU runs as the workload's unprivileged user, never root, inside its
// seccomp sandbox (no change of user, no new programs).
func TestVMRunsUnprivilegedAndSandboxed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test checks that a root agent starts QEMU unprivileged; run it as root (.ci/run does)")
	}
	d := NewTestVM(t)
	do(t, "start", d.Start)
	pid := vmPID(t, d)
	nobody, err := user.Lookup(TestUser)
	if err != nil {
		t.Fatal(err)
	}
	status := procStatus(t, pid)
	for _, key := range []string{"Uid", "Gid"} {
		want := nobody.Uid
		if key == "Gid" {
			want = nobody.Gid
		}
		for _, id := range strings.Fields(status[key]) {
			if id != want {
				t.Errorf("QEMU %s = %q, want %s in every field (real, effective, saved, fs)", key, status[key], want)
				break
			}
		}
	}
	if status["Seccomp"] != "2" || status["NoNewPrivs"] != "1" {
		t.Errorf("QEMU Seccomp = %q, NoNewPrivs = %q; want a seccomp filter (2) with no new privileges (1)", status["Seccomp"], status["NoNewPrivs"])
	}
	args := strings.Join(proc.Args(pid), " ")
	if !strings.Contains(args, "-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny") {
		t.Errorf("QEMU command line lacks the sandbox: %s", args)
	}
	if !strings.Contains(args, `"driver":"qcow2"`) || !strings.Contains(args, `"backing":null`) {
		t.Errorf("QEMU command line does not name the disk format (QEMU would probe it): %s", args)
	}
	// The agent still controls it over QMP.
	do(t, "quiesce", d.Quiesce)
	do(t, "thaw", d.Thaw)
	do(t, "stop", d.Stop)
}

// A qcow2 image names its backing file, and a crafted one can name any
// host file: the driver refuses a disk whose backing chain (or the disk
// itself, through a symbolic link) leaves the workload's directory, and one
// whose backing format is not recorded, before QEMU opens anything.
func TestDiskLeavingTheWorkloadIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir, vmDir string) // makes vmDir/disk.qcow2
		want    string                                // "" = starts
	}{
		{"backing file outside", func(t *testing.T, dir, vmDir string) {
			outside := filepath.Join(dir, "host-secret.img")
			qemuImg(t, "create", "-q", "-f", "raw", outside, "1M")
			qemuImg(t, "create", "-q", "-f", "qcow2", "-b", outside, "-F", "raw", filepath.Join(vmDir, "disk.qcow2"))
		}, "outside the workload directory"},
		{"backing file escaping by a relative name", func(t *testing.T, dir, vmDir string) {
			qemuImg(t, "create", "-q", "-f", "raw", filepath.Join(dir, "host-secret.img"), "1M")
			qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "../host-secret.img", "-F", "raw", filepath.Join(vmDir, "disk.qcow2"))
		}, "outside the workload directory"},
		{"backing file inside reached by a symlink outside", func(t *testing.T, dir, vmDir string) {
			qemuImg(t, "create", "-q", "-f", "raw", filepath.Join(dir, "host-secret.img"), "1M")
			if err := os.Symlink(filepath.Join(dir, "host-secret.img"), filepath.Join(vmDir, "base.img")); err != nil {
				t.Fatal(err)
			}
			qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "base.img", "-F", "raw", filepath.Join(vmDir, "disk.qcow2"))
		}, "outside the workload directory"},
		{"disk is a symlink outside", func(t *testing.T, dir, vmDir string) {
			qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(dir, "elsewhere.qcow2"), "64M")
			if err := os.Symlink(filepath.Join(dir, "elsewhere.qcow2"), filepath.Join(vmDir, "disk.qcow2")); err != nil {
				t.Fatal(err)
			}
		}, "outside the workload directory"},
		{"backing file by protocol", func(t *testing.T, dir, vmDir string) {
			qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(vmDir, "disk.qcow2"), "64M")
			qemuImg(t, "rebase", "-u", "-f", "qcow2", "-b", "nbd://127.0.0.1:1/x", "-F", "raw", filepath.Join(vmDir, "disk.qcow2"))
		}, "not a plain file path"},
		{"backing format not recorded", func(t *testing.T, dir, vmDir string) {
			qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(vmDir, "base.qcow2"), "64M")
			qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", filepath.Join(vmDir, "disk.qcow2"))
			dropBackingFormat(t, filepath.Join(vmDir, "disk.qcow2")) // as old qemu-img versions wrote them
		}, "does not name the format of its backing file"},
		{"backing chain inside the workload", func(t *testing.T, dir, vmDir string) {
			qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(vmDir, "base.qcow2"), "64M")
			qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", filepath.Join(vmDir, "disk.qcow2"))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newVM(t, tc.prepare)
			err := d.Start(context.Background())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("start with a backing chain inside the workload: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("start = %v, want a refusal containing %q", err, tc.want)
			}
			if st, err := d.Status(context.Background()); st != api.StateInactive || err != nil {
				t.Fatalf("after a refused start the VM is %q (%v), want inactive: QEMU must not have run", st, err)
			}
		})
	}
}

// An image QEMU's user cannot write is refused with the user named, not
// with QEMU's own error from deep inside its start.
func TestDiskNotWritableByTheUserIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: QEMU runs as another user")
	}
	d := newVM(t, func(t *testing.T, dir, vmDir string) {
		qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(vmDir, "disk.qcow2"), "64M")
	})
	if err := os.Chown(filepath.Join(d.Config().Dir, "disk.qcow2"), 0, 0); err != nil {
		t.Fatal(err)
	}
	err := d.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "QEMU runs as "+TestUser) || !strings.Contains(err.Error(), "cannot use") {
		t.Fatalf("start with an image root owns = %v, want a refusal naming the user", err)
	}
}

func TestRootUserIsRefused(t *testing.T) {
	for _, u := range []string{"root", "0"} {
		_, err := qemu.New(qemu.Config{Workload: "vm", Dir: "/vol/vm", Disks: []string{"d.qcow2"}, User: u, StateDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "unprivileged") {
			t.Errorf("New with user %q = %v, want a refusal", u, err)
		}
	}
	if os.Geteuid() == 0 {
		_, err := qemu.New(qemu.Config{Workload: "vm", Dir: "/vol/vm", Disks: []string{"d.qcow2"}, StateDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "QEMU would run as root; set user") {
			t.Errorf("New without a user in a root agent = %v, want a refusal saying to set user", err)
		}
	}
}

// newVM is NewTestVM with the disk made by prepare (in vmDir, beside which
// dir holds files outside the workload).
func newVM(t *testing.T, prepare func(t *testing.T, dir, vmDir string)) *qemu.Driver {
	t.Helper()
	dir, err := os.MkdirTemp("", "cg-vm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	vmDir := filepath.Join(dir, "vm")
	if err := os.Mkdir(vmDir, 0o755); err != nil {
		t.Fatal(err)
	}
	prepare(t, dir, vmDir)
	userName := ""
	if os.Geteuid() == 0 {
		userName = TestUser
		paths := []string{vmDir}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
		entries, _ = os.ReadDir(vmDir)
		for _, e := range entries {
			if e.Type()&os.ModeSymlink == 0 {
				paths = append(paths, filepath.Join(vmDir, e.Name()))
			}
		}
		// Everything, the files outside included, is the user's: only the
		// driver's check stands between QEMU and them.
		giveTo(t, TestUser, dir, paths...)
	}
	d, err := qemu.New(qemu.Config{Workload: "vm", Dir: vmDir, Disks: []string{"disk.qcow2"}, Memory: "64M", Accel: "tcg", User: userName,
		StateDir: filepath.Join(dir, "state"), ShutdownTimeout: 500 * time.Millisecond, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// procStatus reads /proc/<pid>/status into key: value.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// dropBackingFormat turns a qcow2 (version 3) image's backing-format header
// extension into an unknown one, which QEMU ignores: the image then names a
// backing file without its format.
func dropBackingFormat(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint32(data[4:]) != 3 {
		t.Fatalf("%s is not a qcow2 version 3 image", path)
	}
	for off := int(binary.BigEndian.Uint32(data[100:])); off+8 <= len(data); {
		magic, n := binary.BigEndian.Uint32(data[off:]), int(binary.BigEndian.Uint32(data[off+4:]))
		switch magic {
		case 0:
			t.Fatalf("%s has no backing format extension", path)
		case 0xe2792aca: // backing file format name
			binary.BigEndian.PutUint32(data[off:], 0x0c6b7a11) // unknown: ignored
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		off += 8 + (n+7)/8*8
	}
	t.Fatalf("%s: header extensions run past the file", path)
}
