package qemu_test

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/qemu"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/drivertest"
)

// TestConformance runs the shared driver suite against real QEMU virtual
// machines (software emulation, no guest OS: the firmware waits for a boot
// disk, which is all the driver needs).
func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) drivertest.Workload {
		d := NewTestVM(t)
		return drivertest.Workload{
			Driver: d,
			Reopen: func() (agent.Driver, error) { return qemu.New(d.Config()) },
			Frozen: func(ctx context.Context) (bool, error) {
				st, err := d.RunState(ctx)
				return st == "paused", err
			},
		}
	})
}

// NewTestVM returns a driver for a fresh, stopped VM with one small qcow2
// disk; t.Cleanup stops it.
func NewTestVM(t testing.TB) *qemu.Driver {
	t.Helper()
	if _, err := exec.LookPath(qemu.DefaultBinary); err != nil {
		t.Fatalf("%s not found: install QEMU (Debian packages qemu-system-x86 and qemu-utils; .ci/run does)", qemu.DefaultBinary)
	}
	// Short: the QMP socket path in the state directory is limited to 107 bytes.
	dir, err := os.MkdirTemp("", "cg-vm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	vmDir := filepath.Join(dir, "vm")
	if err := os.Mkdir(vmDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(vmDir, "disk.qcow2"), "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v\n%s", err, out)
	}
	// QEMU runs unprivileged: as nobody when the test runs as root (as the
	// agent does), which must reach and write the image.
	user := ""
	if os.Geteuid() == 0 {
		user = TestUser
		giveTo(t, TestUser, dir, vmDir, filepath.Join(vmDir, "disk.qcow2"))
	}
	d, err := qemu.New(qemu.Config{Workload: "vm", Dir: vmDir, Disks: []string{"disk.qcow2"}, Memory: "64M", Accel: "tcg", User: user,
		StateDir: filepath.Join(dir, "state"), ShutdownTimeout: 500 * time.Millisecond, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

// TestUser is the unprivileged user tests run QEMU as.
const TestUser = "nobody"

// giveTo makes dir (the test's own temporary directory) searchable by all
// and hands the other paths to user.
func giveTo(t testing.TB, name, dir string, paths ...string) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}
