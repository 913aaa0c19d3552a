package provider

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
)

// TestAccQEMUWorkload protects a real QEMU virtual machine whose disk image
// is on the shared volume: a backup while it runs (its vCPUs stopped for
// the copy), the image changed afterwards, then a restore that migrates the
// VM to the other node, where it boots from the restored image.
func TestAccQEMUWorkload(t *testing.T) {
	testAccPreCheck(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not found: install QEMU (Debian packages qemu-system-x86 and qemu-utils; .ci/run does)")
	}
	// QEMU runs as an unprivileged user (nobody here), which must reach
	// and write the image on the shared volume.
	repo := testRepository(t)
	c := agenttest.Start(t, agenttest.Options{Nodes: 2, Repositories: []agenttest.Repository{repo}, ExtraWorkloads: []string{"vm"}, Traversable: true, ExtraConfig: `
workload "vm" {
  driver = "qemu"
  paths  = ["vms/vm"]
  qemu {
    disks            = ["disk.img"]
    memory           = "64M"
    accel            = "tcg"
    shutdown_timeout = "1s"
    user             = "nobody"
  }
}
`})
	e := &testEnv{cluster: c, catalog: filepath.Join(t.TempDir(), "catalog.db"), repoDir: repo.URL}
	image := filepath.Join(c.SharedVolume, "vms", "vm", "disk.img")
	if err := os.MkdirAll(filepath.Dir(image), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "raw", image, "32M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v\n%s", err, out)
	}
	writeAt(t, image, 4<<20, bytes.Repeat([]byte("backed-up block "), 4096))
	giveToNobody(t, filepath.Dir(image), image)
	c.StartWorkload(t, "node-1", "vm")

	repoDir := e.repoDir
	backup := testAccBackupConfig(e, repoDir, `  workloads   = ["vm"]
  consistency = "application"`, `  triggers = { n = "1" }`)
	restore := testAccRepoConfig(e, repoDir) + restoreJob(`  workloads = [{ name = "vm", target = "node", node = "node-2", on_conflict = "migrate" }]`)
	watch := watchOverlaps(t, e)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{
				Config: backup,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("vm").AtMapKey("node"), knownvalue.StringExact("node-1")),
					// A raw image holds no dirty bitmap: read whole through the
					// copy-before-write view, recorded as such.
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("vm").AtMapKey("incremental"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("vm").AtMapKey("bytes_read"), knownvalue.Int64Exact(32<<20)),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("vm").AtMapKey("checkpoint"), knownvalue.StringExact("")),
				},
				Check: func(*terraform.State) error {
					writeAt(t, image, 4<<20, bytes.Repeat([]byte("written later   "), 4096))
					return nil
				},
			},
			{
				Config: restore,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
				},
				Check: resource.ComposeTestCheckFunc(expectActiveOn(t, e, "vm", "node-2"), func(*terraform.State) error {
					got := readAt(t, image, 4<<20, 16*4096)
					if !bytes.Equal(got, bytes.Repeat([]byte("backed-up block "), 4096)) {
						return fmt.Errorf("the restored image holds %q..., want the backed-up blocks", got[:32])
					}
					if info, err := os.Stat(image); err != nil || info.Size() != 32<<20 {
						return fmt.Errorf("restored image: %v, %v; want 32 MiB", info, err)
					}
					return nil
				}),
			},
		},
	})
	watch.check(t)
}

func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	return buf
}

// giveToNobody hands paths to the user nobody, whom the test's QEMU runs as.
func giveToNobody(t *testing.T, paths ...string) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}
