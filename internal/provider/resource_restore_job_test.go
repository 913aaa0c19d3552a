package provider

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

const jobAddr = "clusterguard_restore_job.test"

// lazyString is a config variable read when the step runs, for values only
// known once earlier steps ran (the time between two backups).
type lazyString func() string

func (l lazyString) MarshalJSON() ([]byte, error) { return json.Marshal(l()) }

const beforeVariable = `
variable "before" {
  type = string
}
`

// overlapWatch polls every agent while restores run and records any moment
// a workload is active on two nodes (the invariant of E12), two agents
// believe they hold its ownership lease, or a node runs it while the owner
// record on the shared volume names another node's live lease.
type overlapWatch struct {
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	overlaps []string
	polls    int
}

func watchOverlaps(t *testing.T, e *testEnv) *overlapWatch {
	w := &overlapWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(15 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			before, _ := e.cluster.OwnerRecords()
			active, held := map[string][]string{}, map[string][]string{}
			for _, n := range e.cluster.Nodes {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				list, err := e.cluster.Client(t, n.Name).Workloads(ctx)
				cancel()
				if err != nil {
					continue
				}
				for _, wl := range list.Workloads {
					if wl.State == api.StateActive {
						active[wl.Name] = append(active[wl.Name], n.Name)
					}
					if wl.Owner != nil && wl.Owner.HeldHere {
						held[wl.Name] = append(held[wl.Name], n.Name)
					}
				}
			}
			after, _ := e.cluster.OwnerRecords()
			w.mu.Lock()
			w.polls++
			for name, nodes := range active {
				if len(nodes) > 1 {
					w.overlaps = append(w.overlaps, fmt.Sprintf("%s on %v", name, nodes))
				}
			}
			for name, nodes := range held {
				if len(nodes) > 1 {
					w.overlaps = append(w.overlaps, fmt.Sprintf("%s: live ownership leases on %v", name, nodes))
				}
			}
			w.overlaps = append(w.overlaps, ownerViolations(before, after, active, held)...)
			w.mu.Unlock()
		}
	}()
	return w
}

// ownerViolations finds nodes active, or believing they hold the lease,
// while the owner record on the volume named another node's live claim for
// the whole poll (the same claim before and after it, so a lease handed
// over between two samples is not mistaken for an overlap).
func ownerViolations(before, after map[string]agent.OwnerRecord, active, held map[string][]string) []string {
	var out []string
	for name, rec := range after {
		if prev, ok := before[name]; !ok || prev.Claim != rec.Claim || prev.Released || rec.Released || !rec.LiveAt(time.Now(), 0) {
			continue
		}
		for _, n := range active[name] {
			if n != rec.Node {
				out = append(out, fmt.Sprintf("%s active on %s while %s holds its ownership lease (generation %d)", name, n, rec.Node, rec.Generation))
			}
		}
		for _, n := range held[name] {
			if n != rec.Node {
				out = append(out, fmt.Sprintf("%s: %s believes it holds the ownership lease the volume gives %s (generation %d)", name, n, rec.Node, rec.Generation))
			}
		}
	}
	return out
}

func (w *overlapWatch) check(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.polls < 10 {
		t.Fatalf("the overlap watch polled only %d times", w.polls)
	}
	if len(w.overlaps) > 0 {
		t.Fatalf("a workload was active on two nodes at once: %v", w.overlaps)
	}
}

func (e *testEnv) writeData(t *testing.T, workload, name, content string) {
	t.Helper()
	dir := e.cluster.WorkloadDataDir(workload)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) readVolume(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.cluster.SharedVolume, rel))
	if err != nil {
		t.Fatalf("read %s on the shared volume: %v", rel, err)
	}
	return string(b)
}

func (e *testEnv) activeOn(t *testing.T, workload string) []string {
	t.Helper()
	var nodes []string
	for _, n := range e.cluster.Nodes {
		wl, err := e.cluster.Client(t, n.Name).Workload(context.Background(), workload)
		if err == nil && wl.State == api.StateActive {
			nodes = append(nodes, n.Name)
		}
	}
	return nodes
}

func expectActiveOn(t *testing.T, e *testEnv, workload string, nodes ...string) func(*terraform.State) error {
	return func(*terraform.State) error {
		if got := e.activeOn(t, workload); strings.Join(got, ",") != strings.Join(nodes, ",") {
			return fmt.Errorf("%s is active on %v, want %v", workload, got, nodes)
		}
		return nil
	}
}

// testAccRepoConfig is the cluster and repository without the group and
// backup run: once backups are taken, restores move workloads around, which
// a protection group would (rightly) report as drift.
func testAccRepoConfig(e *testEnv, repoDir string) string {
	return testAccClusterConfig(e, e.cluster.Token, "") + fmt.Sprintf(`
resource "clusterguard_repository" "test" {
  name     = "repo"
  url      = %q
  password = %q
  create   = true
}
`, repoDir, testRepoPassword)
}

func restoreJob(body string) string {
	return `
resource "clusterguard_restore_job" "test" {
  cluster    = clusterguard_cluster.test.name
  repository = clusterguard_repository.test.name
` + body + `
}
`
}

func planPath(i int, attr string) tfjsonpath.Path {
	return tfjsonpath.New("plan").AtSliceIndex(i).AtMapKey(attr)
}

// TestAccRestoreJob restores real workloads from real recovery points:
// in place on the active node, to an inactive workload's policy node, to a
// specified node with deactivate and with migrate, two in sequence, a
// colocated pair, a previous version of a file elsewhere, a point chosen by
// time — while a watcher checks no workload is ever active on two nodes.
func TestAccRestoreJob(t *testing.T) {
	e := newTestEnv(t, 3, "web", "app", "db")
	e.writeData(t, "web", "marker", "v1")
	e.writeData(t, "app", "marker", "app-v1")
	e.cluster.StartWorkload(t, "node-1", "web")
	e.cluster.StartWorkload(t, "node-2", "app")
	e.cluster.StartWorkload(t, "node-3", "db")
	repoDir := e.repoDir
	group := `  workloads = ["web", "app", "db"]`
	base1 := testAccBackupConfig(e, repoDir, group, `  triggers = { n = "1" }`)
	base2 := testAccBackupConfig(e, repoDir, group, `  triggers = { n = "2" }`)
	base := testAccRepoConfig(e, repoDir)
	var firstBackup time.Time
	before := lazyString(func() string { return firstBackup.Add(time.Second).Format(time.RFC3339) })
	watch := watchOverlaps(t, e)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{
				Config: base1,
				Check: func(*terraform.State) error {
					firstBackup = time.Now().UTC()
					// Change the data after the backup: restores must bring v1 back.
					e.writeData(t, "web", "marker", "v2")
					e.writeData(t, "app", "marker", "app-v2")
					return nil
				},
			},
			{
				// A second recovery point, for before = <time>.
				PreConfig: func() { waitPast(firstBackup) },
				Config:    base2,
			},
			{
				// In place on the node where it runs (E11): the plan shows it.
				Config: base + beforeVariable + restoreJob(`  workloads = [{ name = "web", before = var.before }]
  verify    = "full"`),
				ConfigVariables: config.Variables{"before": before},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(jobAddr, planPath(0, "node"), knownvalue.StringExact("node-1")),
					statecheck.ExpectKnownValue(jobAddr, planPath(0, "deactivate_on"), knownvalue.StringExact("node-1")),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("steps").AtSliceIndex(0).AtMapKey("activated"), knownvalue.Bool(true)),
				},
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						if got := e.readVolume(t, "apps/web/marker"); got != "v1" {
							return fmt.Errorf("apps/web/marker = %q after restoring the first recovery point, want v1", got)
						}
						return nil
					},
					expectActiveOn(t, e, "web", "node-1"),
				),
			},
			{
				ResourceName: jobAddr, ImportState: true, ImportStateIdFunc: stateAttr(jobAddr, "id"), ImportStateVerify: true,
				ConfigVariables:         config.Variables{"before": before},
				ImportStateVerifyIgnore: []string{"timeouts", "workloads", "cluster", "repository", "colocate", "verify", "activate_after", "keep_setuid", "triggers", "plan", "resumed"},
			},
			{
				// Specified node while active elsewhere, deactivate: stopped on
				// node-2 first, restored on node-3, not started (E12).
				Config: base + restoreJob(`  workloads      = [{ name = "app", target = "node", node = "node-3", on_conflict = "deactivate" }]
  activate_after = false`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(jobAddr, planPath(0, "node"), knownvalue.StringExact("node-3")),
					statecheck.ExpectKnownValue(jobAddr, planPath(0, "deactivate_on"), knownvalue.StringExact("node-2")),
					statecheck.ExpectKnownValue(jobAddr, planPath(0, "activate"), knownvalue.Bool(false)),
				},
				Check: expectActiveOn(t, e, "app"),
			},
			{
				// Inactive workload: placed by policy (E11), then started there.
				Config: base + restoreJob(`  workloads = [{ name = "app", target = "fewest_workloads" }]`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(jobAddr, planPath(0, "deactivate_on"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(jobAddr, planPath(0, "node"), knownvalue.StringExact("node-2")),
				},
				Check: expectActiveOn(t, e, "app", "node-2"),
			},
			{
				// Migrate: web moves from node-1 to node-3 with its data restored.
				Config: base + restoreJob(`  workloads = [{ name = "web", target = "node", node = "node-3", on_conflict = "migrate" }]`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(jobAddr, planPath(0, "migrate"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("steps").AtSliceIndex(0).AtMapKey("deactivated_on"), knownvalue.StringExact("node-1")),
				},
				Check: expectActiveOn(t, e, "web", "node-3"),
			},
			{
				// Two in sequence (E15), colocated on one node (E16).
				Config: base + restoreJob(`  workloads = [{ name = "db" }, { name = "app" }]
  colocate  = true`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("steps").AtSliceIndex(0).AtMapKey("workload"), knownvalue.StringExact("db")),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("steps").AtSliceIndex(1).AtMapKey("workload"), knownvalue.StringExact("app")),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("steps").AtSliceIndex(0).AtMapKey("node"), knownvalue.StringExact("node-3")),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("steps").AtSliceIndex(1).AtMapKey("node"), knownvalue.StringExact("node-3")),
				},
				Check: resource.ComposeTestCheckFunc(expectActiveOn(t, e, "db", "node-3"), expectActiveOn(t, e, "app", "node-3"), orderedSteps(e)),
			},
			{
				// A previous version of one file, to another node's path (M9);
				// the running workload is not touched.
				PreConfig: func() { e.writeData(t, "web", "marker", "v3") },
				Config: base + beforeVariable + restoreJob(`  workloads = [{
    name        = "web"
    before      = var.before
    files       = ["apps/web/marker"]
    destination = { node = "node-2", path = "restored" }
  }]`),
				ConfigVariables: config.Variables{"before": before},
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						if got := e.readVolume(t, "restored/apps/web/marker"); got != "v1" {
							return fmt.Errorf("restored copy = %q, want v1", got)
						}
						if got := e.readVolume(t, "apps/web/marker"); got != "v3" {
							return fmt.Errorf("the live file changed to %q: a restore elsewhere must not touch it", got)
						}
						return nil
					},
					expectActiveOn(t, e, "web", "node-3"),
				),
			},
		},
	})
	watch.check(t)
}

// orderedSteps checks the sequence finished one step before the next began.
func orderedSteps(e *testEnv) func(*terraform.State) error {
	return func(s *terraform.State) error {
		rs := s.RootModule().Resources[jobAddr]
		end0, start1 := rs.Primary.Attributes["steps.0.finished_at"], rs.Primary.Attributes["steps.1.started_at"]
		if end0 == "" || start1 == "" || start1 < end0 {
			return fmt.Errorf("step 2 started (%s) before step 1 finished (%s)", start1, end0)
		}
		return nil
	}
}

// waitPast polls until the wall clock is past t plus a second, so the next
// recovery point has a strictly later RFC 3339 time.
func waitPast(t time.Time) {
	for time.Now().Before(t.Add(1100 * time.Millisecond)) {
		time.Sleep(50 * time.Millisecond) // polling the clock, not synchronisation
	}
}

// TestAccRestoreJob_damaged: a corrupted pack with verify = full changes
// nothing on the volume, names the file, and leaves the workload running.
func TestAccRestoreJob_damaged(t *testing.T) {
	e := newTestEnv(t, 2, "web", "app")
	e.writeData(t, "web", "marker", "v1")
	e.writeData(t, "web", "big.bin", randomText(3<<20))
	e.cluster.StartWorkload(t, "node-1", "web")
	repoDir := e.repoDir
	backup := testAccBackupConfig(e, repoDir, `  workloads = ["web"]`, `  triggers = { n = "1" }`)
	base := testAccRepoConfig(e, repoDir)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{Config: backup, Check: func(*terraform.State) error {
				e.writeData(t, "web", "marker", "v2")
				corruptPacks(t, repoDir)
				return nil
			}},
			{
				Config: base + restoreJob(`  workloads = [{ name = "web" }]
  verify    = "full"`),
				ExpectError: regexp.MustCompile(`(?s)damaged files:.*apps/web/big\.bin`),
			},
			{
				// Nothing changed on the volume, and web runs where it ran.
				Config: base,
				Check: resource.ComposeTestCheckFunc(func(*terraform.State) error {
					if got := e.readVolume(t, "apps/web/marker"); got != "v2" {
						return fmt.Errorf("a failed restore changed apps/web/marker to %q", got)
					}
					return nil
				}, expectActiveOn(t, e, "web", "node-1")),
			},
		},
	})
}

// corruptPacks flips bytes in the middle of every data pack (packs of at
// least 1 MiB: file content, not the small tree packs).
func corruptPacks(t *testing.T, repoDir string) {
	t.Helper()
	n := 0
	_ = filepath.Walk(filepath.Join(repoDir, "data"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Size() < 1<<20 {
			return nil
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 16)
		off := info.Size() / 3
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] ^= 0xff
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
		n++
		return nil
	})
	if n == 0 {
		t.Fatal("no pack file to corrupt")
	}
}

func TestAccRestoreJob_resume(t *testing.T) {
	e := newTestEnv(t, 2, "web", "app")
	e.cluster.StartWorkload(t, "node-1", "web")
	e.cluster.StartWorkload(t, "node-2", "app")
	repoDir := e.repoDir
	backup := testAccBackupConfig(e, repoDir, `  workloads = ["web", "app"]`, `  triggers = { n = "1" }`)
	base := testAccRepoConfig(e, repoDir)
	crash := true
	hooks := engine.RestoreHooks{AfterStep: func(_ context.Context, st catalog.RestoreStep) error {
		if crash && st.Seq == 1 {
			crash = false // the provider "dies" once, after the first workload
			return engine.ErrSimulatedCrash
		}
		return nil
	}}
	job := base + restoreJob(`  workloads = [{ name = "web" }, { name = "app" }]`) + `
data "clusterguard_workload_digest" "all" {
  cluster    = clusterguard_cluster.test.name
  depends_on = [clusterguard_restore_job.test]
}

data "clusterguard_workload_digest" "not_restored_lately" {
  cluster            = clusterguard_cluster.test.name
  restore_older_than = "1h"
  depends_on         = [clusterguard_restore_job.test]
}
`
	watch := watchOverlaps(t, e)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(WithRestoreHooks(hooks)),
		Steps: []resource.TestStep{
			{Config: backup},
			{Config: job, ExpectError: regexp.MustCompile(`simulated crash`)},
			{
				Config: job,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("resumed"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("steps"), knownvalue.ListSizeExact(2)),
					// E14: the digest knows both were just restored.
					statecheck.ExpectKnownValue("data.clusterguard_workload_digest.all", tfjsonpath.New("workloads").AtSliceIndex(0).AtMapKey("last_restore_at"), knownvalue.StringRegexp(regexp.MustCompile(`^\d{4}-\d\d-\d\dT`))),
					statecheck.ExpectKnownValue("data.clusterguard_workload_digest.all", tfjsonpath.New("workloads").AtSliceIndex(1).AtMapKey("last_restore_at"), knownvalue.StringRegexp(regexp.MustCompile(`^\d{4}-\d\d-\d\dT`))),
					statecheck.ExpectKnownValue("data.clusterguard_workload_digest.not_restored_lately", tfjsonpath.New("workloads"), knownvalue.ListSizeExact(0)),
				},
				Check: resource.ComposeTestCheckFunc(expectActiveOn(t, e, "web", "node-1"), expectActiveOn(t, e, "app", "node-2")),
			},
		},
	})
	watch.check(t)
}

func TestAccRestoreJob_planTimeValidation(t *testing.T) {
	testAccPreCheck(t)
	provider := `
provider "clusterguard" {
  catalog     = "` + t.TempDir() + `/catalog.db"
  agent_token = "0123456789abcdef0123"
}
`
	job := func(w string) string {
		return provider + `resource "clusterguard_restore_job" "bad" {
  cluster    = "c"
  repository = "r"
  workloads  = [` + w + `]
}`
	}
	cases := map[string]struct{ cfg, want string }{
		"traversal in files":        {job(`{ name = "web", files = ["../etc/passwd"] }`), `contains '..'`},
		"absolute file":             {job(`{ name = "web", files = ["/etc/passwd"] }`), `is absolute`},
		"traversal in destination":  {job(`{ name = "web", files = ["apps/web/a"], destination = { path = "x/../../y" } }`), `contains '..'`},
		"destination without files": {job(`{ name = "web", destination = { path = "x" } }`), `needs files`},
		"bad before":                {job(`{ name = "web", before = "yesterday" }`), `not an RFC 3339 time`},
		"node without target":       {job(`{ name = "web", node = "node-1" }`), `target = "node" needs node`},
		"unknown target":            {job(`{ name = "web", target = "anywhere" }`), `value must be one of`},
		"no workloads":              {job(``), `at least 1`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps:                    []resource.TestStep{{Config: tc.cfg, PlanOnly: true, ExpectError: regexp.MustCompile(regexp.QuoteMeta(tc.want))}},
			})
		})
	}
}

// randomText is incompressible-enough content of n bytes.
func randomText(n int) string {
	b := make([]byte, n)
	_, _ = cryptorand.Read(b)
	return string(b)
}

// TestAccExtractAtRestore: a group with extract_at = "restore" stores one
// snapshot of each node's shared-volume view (E6); a workload's files are
// extracted from it when restoring.
func TestAccExtractAtRestore(t *testing.T) {
	e := newTestEnv(t, 2, "web", "app", "db")
	e.writeData(t, "web", "marker", "web-v1")
	e.writeData(t, "app", "marker", "app-v1")
	e.cluster.StartWorkload(t, "node-1", "web")
	e.cluster.StartWorkload(t, "node-1", "app")
	e.cluster.StartWorkload(t, "node-2", "db")
	repoDir := e.repoDir
	backup := testAccBackupConfig(e, repoDir, `  workloads  = ["web", "app", "db"]
  extract_at = "restore"`, `  triggers = { n = "1" }`) + `
data "clusterguard_file_versions" "app" {
  repository = clusterguard_repository.test.name
  workload   = "app"
  path       = "apps/app/marker"
  depends_on = [clusterguard_backup_run.test]
}

# web's node view holds app's file too, but it is not web's.
data "clusterguard_file_versions" "not_web" {
  repository = clusterguard_repository.test.name
  workload   = "web"
  path       = "apps/app/marker"
  depends_on = [clusterguard_backup_run.test]
}
`
	nodeView := regexp.MustCompile(`^[0-9a-f]{64}@(web|app|db)$`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{
				Config: backup,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("web").AtMapKey("recovery_point"), knownvalue.StringRegexp(nodeView)),
					// A file's versions include node views, as the workload's recovery point.
					statecheck.ExpectKnownValue("data.clusterguard_file_versions.app", tfjsonpath.New("versions"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectPartial(map[string]knownvalue.Check{
							"recovery_point": knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{64}@app$`)),
							"size":           knownvalue.Int64Exact(int64(len("app-v1"))),
						}),
					})),
					statecheck.ExpectKnownValue("data.clusterguard_file_versions.not_web", tfjsonpath.New("versions"), knownvalue.ListSizeExact(0)),
				},
				Check: func(s *terraform.State) error {
					a := s.RootModule().Resources[runAddr].Primary.Attributes
					web, app, db := engine.SnapshotOf(a["workloads.web.recovery_point"]), engine.SnapshotOf(a["workloads.app.recovery_point"]), engine.SnapshotOf(a["workloads.db.recovery_point"])
					if web != app || web == db {
						return fmt.Errorf("want one node-view snapshot per node: web %s, app %s (node-1), db %s (node-2)", web, app, db)
					}
					e.writeData(t, "app", "marker", "app-v2")
					return nil
				},
			},
			{
				Config: testAccRepoConfig(e, repoDir) + restoreJob(`  workloads = [{ name = "app" }]`),
				Check: resource.ComposeTestCheckFunc(func(*terraform.State) error {
					if got := e.readVolume(t, "apps/app/marker"); got != "app-v1" {
						return fmt.Errorf("apps/app/marker = %q after restoring from the node view, want app-v1", got)
					}
					if got := e.readVolume(t, "apps/web/marker"); got != "web-v1" {
						return fmt.Errorf("restoring app touched web: %q", got)
					}
					return nil
				}, expectActiveOn(t, e, "app", "node-1")),
			},
		},
	})
}
