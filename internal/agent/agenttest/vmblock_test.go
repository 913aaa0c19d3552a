package agenttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// A VM's backups through the agent: the first reads the whole disk, the
// next ones only the changed extents (also after the VM moved to another
// node), and every recovery point restores to the disk as it was at its
// checkpoint, byte for byte, as a qcow2 image.
func TestVMBlock(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not found: install QEMU (Debian packages qemu-system-x86 and qemu-utils)")
	}
	if os.Geteuid() != 0 {
		t.Skip("runs QEMU as nobody: needs root")
	}
	repo := newRepo(t)
	c := Start(t, Options{Nodes: 2, Repositories: []Repository{repo}, ExtraWorkloads: []string{"vm"}, Traversable: true, ExtraConfig: `
workload "vm" {
  driver = "qemu"
  paths  = ["vm"]
  qemu {
    disks            = ["disk.qcow2"]
    memory           = "64M"
    accel            = "tcg"
    shutdown_timeout = "1s"
    user             = "nobody"
  }
}
`})
	const size = 32 << 20
	image := filepath.Join(c.SharedVolume, "vm", "disk.qcow2")
	must(t, os.MkdirAll(filepath.Dir(image), 0o755))
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", image, strconv.Itoa(size)).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v\n%s", err, out)
	}
	nobody, err := user.Lookup("nobody")
	must(t, err)
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	must(t, os.Chown(filepath.Dir(image), uid, gid))
	must(t, os.Chown(image, uid, gid))
	ctx := context.Background()
	epoch := int64(1)
	claim := func(node string) {
		t.Helper()
		if _, err := c.Client(t, node).ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: epoch}); err != nil {
			t.Fatal(err)
		}
	}
	claim("node-1")
	model := make([]byte, size)
	write := func(node string, off, n int64, p byte) {
		t.Helper()
		vmWrite(t, filepath.Join(agent.WorkloadStateDir(c.Node(node).StateDir, "vm"), "qmp.sock"), off, n, p)
		for i := off; i < off+n; i++ {
			model[i] = p
		}
	}
	backup := func(node string) (api.BackupResult, []byte) {
		t.Helper()
		res, err := c.Client(t, node).Backup(ctx, "vm", api.BackupRequest{Epoch: epoch, Repository: repo.Name, Consistency: api.ConsistencyCrash, Cluster: "c", Group: "g", RunID: "r"})
		if err != nil {
			t.Fatalf("backup on %s: %v\n%s", node, err, tail(c.Node(node).LogPath, 20))
		}
		return res, bytes.Clone(model)
	}

	c.StartWorkload(t, "node-1", "vm")
	write("node-1", 0, 1<<20, 0x11)
	write("node-1", 7<<20, 64<<10, 0x12)
	r1, want1 := backup("node-1")
	if r1.Incremental || r1.FullReason == "" || r1.ViewBytesRead != size || r1.Checkpoint == "" {
		t.Fatalf("first backup: %+v, want a full read with a reason and a checkpoint", r1)
	}
	write("node-1", 9<<20, 128<<10, 0x21)
	r2, want2 := backup("node-1")
	// The stun is a QMP stop, one transaction and a cont, whatever the disk
	// size: asserted loosely (the benchmark measures it).
	if r2.StunMS > 10_000 {
		t.Errorf("second backup stunned the VM for %d ms", r2.StunMS)
	}
	if !r2.Incremental || r2.ViewBytesRead > 2*(128<<10) || r2.Checkpoint == r1.Checkpoint {
		t.Fatalf("second backup: %+v, want incremental, at most 256 KiB read, a new checkpoint", r2)
	}
	c.MoveWorkload(t, "vm", "node-1", "node-2")
	epoch++
	claim("node-2")
	write("node-2", 20<<20, 64<<10, 0x31)
	r3, want3 := backup("node-2")
	if !r3.Incremental || r3.ViewBytesRead > 2*(64<<10) {
		t.Fatalf("backup after the move: %+v, want incremental", r3)
	}

	c.StopWorkload(t, "node-2", "vm")
	for i, rp := range []struct {
		id   string
		want []byte
	}{{r1.SnapshotID, want1}, {r2.SnapshotID, want2}, {r3.SnapshotID, want3}} {
		if _, err := c.Client(t, "node-2").Restore(ctx, "vm", api.RestoreRequest{Epoch: epoch, OperationID: fmt.Sprintf("op%d", i), Repository: repo.Name, SnapshotID: rp.id, Verify: api.VerifyNone, Cluster: "c"}); err != nil {
			t.Fatalf("restore of recovery point %d: %v", i+1, err)
		}
		raw := filepath.Join(t.TempDir(), "raw")
		if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", image, raw).CombinedOutput(); err != nil {
			t.Fatalf("recovery point %d restored is not a qcow2 image: %v\n%s", i+1, err, out)
		}
		got, err := os.ReadFile(raw)
		must(t, err)
		if !bytes.Equal(got, rp.want) {
			t.Fatalf("recovery point %d restored differs from the disk at its checkpoint", i+1)
		}
	}
}

// vmWrite writes n bytes of pattern at off into the VM's disk through
// QEMU (HMP qemu-io on the disk's device), as a guest would.
func vmWrite(t *testing.T, sock string, off, n int64, pattern byte) {
	t.Helper()
	conn, err := net.DialTimeout("unix", sock, 10*time.Second)
	must(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	dec := json.NewDecoder(conn)
	cmd := func(name string, args any) json.RawMessage {
		must(t, json.NewEncoder(conn).Encode(map[string]any{"execute": name, "arguments": args}))
		for {
			var m struct {
				Return json.RawMessage `json:"return"`
				Error  any             `json:"error"`
				Event  string          `json:"event"`
			}
			must(t, dec.Decode(&m))
			if m.Error != nil {
				t.Fatalf("QMP %s: %v", name, m.Error)
			}
			if m.Event == "" {
				return m.Return
			}
		}
	}
	var greeting map[string]any
	must(t, dec.Decode(&greeting))
	cmd("qmp_capabilities", map[string]any{})
	var blocks []struct {
		Qdev string `json:"qdev"`
	}
	must(t, json.Unmarshal(cmd("query-block", map[string]any{}), &blocks))
	dev := ""
	for _, b := range blocks {
		if strings.HasSuffix(b.Qdev, "/virtio-backend") {
			dev = b.Qdev
		}
	}
	var out string
	must(t, json.Unmarshal(cmd("human-monitor-command", map[string]any{"command-line": fmt.Sprintf(`qemu-io -d %s "write -P %d %d %d"`, dev, pattern, off, n)}), &out))
	if dev == "" || strings.Contains(strings.ToLower(out), "error") {
		t.Fatalf("qemu-io write on %q: %s", dev, out)
	}
}
