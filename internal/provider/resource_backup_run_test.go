package provider

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/location"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

const testRepoPassword = "correct horse battery staple"

const (
	runAddr   = "clusterguard_backup_run.test"
	groupAddr = "clusterguard_protection_group.test"
	repoAddr  = "clusterguard_repository.test"
)

// testAccBackupConfig: cluster + repository + group (+ run when run != "").
func testAccBackupConfig(e *testEnv, repoDir, groupExtra, run string) string {
	cfg := testAccClusterConfig(e, e.cluster.Token, "") + fmt.Sprintf(`
resource "clusterguard_repository" "test" {
  name     = "repo"
  url      = %q
  password = %q
  create   = true
}

resource "clusterguard_protection_group" "test" {
  name       = "group"
  cluster    = clusterguard_cluster.test.name
  repository = clusterguard_repository.test.name
%s
}
`, repoDir, testRepoPassword, groupExtra)
	if run != "" {
		cfg += fmt.Sprintf(`
resource "clusterguard_backup_run" "test" {
  group = clusterguard_protection_group.test.name
%s
}
`, run)
	}
	return cfg
}

// openRepo opens the test's repository through a separate engine on the
// same catalog, as an operator's break-glass command would.
func (e *testEnv) openRepo(t *testing.T) (*repository.Repository, func()) {
	t.Helper()
	ctx := context.Background()
	store, err := openCatalog(ctx, e.catalog) // as the provider does: with the catalog key
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Store: store, Dial: engine.HTTPDialer(engine.HTTPDialerOptions{Token: e.cluster.Token})})
	if err != nil {
		t.Fatal(err)
	}
	repo, closeRepo, err := eng.OpenRepository(ctx, "repo")
	if err != nil {
		t.Fatalf("open repository: %v", err)
	}
	return repo, func() { closeRepo(); store.Close() }
}

// lastSeqInSnapshot reads the newest recovery point of workload and returns
// the highest record sequence in its records.log.
func (e *testEnv) lastSeqInSnapshot(t *testing.T, workload string) int64 {
	t.Helper()
	repo, done := e.openRepo(t)
	defer done()
	ctx := context.Background()
	snaps, err := repo.Snapshots(ctx, repository.SnapshotFilter{Workload: workload})
	if err != nil || len(snaps) == 0 {
		t.Fatalf("snapshots of %s: %d, %v", workload, len(snaps), err)
	}
	rc, _, err := repo.OpenFile(ctx, snaps[0].ID, "apps/"+workload+"/records.log")
	if err != nil {
		t.Fatalf("records.log in recovery point %s: %v", snaps[0].ID, err)
	}
	defer rc.Close()
	var last int64
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		r, err := testworkload.ParseRecord(sc.Text())
		if err != nil {
			t.Fatalf("recovery point holds a damaged record: %v", err)
		}
		last = r.Seq
	}
	return last
}

// waitBuffered polls until the workload has records generated but not yet
// flushed, and returns the last generated sequence.
func (e *testEnv) waitBuffered(t *testing.T, node, workload string) int64 {
	t.Helper()
	dir := e.cluster.WorkloadStateDir(node, workload)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := testworkload.ReadStatus(dir)
		if err == nil && st.Generated > st.Flushed && st.Generated > 0 {
			return st.Generated
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
	t.Fatalf("workload %s on %s never had buffered records", workload, node)
	return 0
}

// TestAccBackupRun_federated: a 3-node run backs up every workload on its
// active node, the quiesce flush puts buffered records into the backup (E4),
// then drift shows in plans: a move, a new unprotected workload, an RPO breach.
func TestAccBackupRun_federated(t *testing.T) {
	e := newTestEnvWith(t, 3, map[string]string{"CLUSTERGUARD_TESTWORKLOAD_FLUSH_EVERY": "1000000"}, "web", "db", "app", "extra")
	e.cluster.StartWorkload(t, "node-1", "web")
	e.cluster.StartWorkload(t, "node-2", "db")
	e.cluster.StartWorkload(t, "node-3", "app")
	repoDir := e.repoDir
	clock := newTestClock()
	group := `  selector = { name_regex = ".*" }
  rpo      = "1h"
  retention = { keep_last = 3 }`
	cfg := testAccBackupConfig(e, repoDir, group, `  triggers = { n = "1" }`)
	var generatedBeforeRun int64

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(WithClock(clock.Now)),
		Steps: []resource.TestStep{
			{
				PreConfig: func() { generatedBeforeRun = e.waitBuffered(t, "node-1", "web") },
				Config:    cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("web").AtMapKey("node"), knownvalue.StringExact("node-1")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("db").AtMapKey("node"), knownvalue.StringExact("node-2")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("app").AtMapKey("node"), knownvalue.StringExact("node-3")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("web").AtMapKey("recovery_point"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{16,}$`))),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("web").AtMapKey("phase"), knownvalue.StringExact("node")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads"), knownvalue.MapSizeExact(3)),      // extra is not running: not selected
					statecheck.ExpectKnownValue(groupAddr, tfjsonpath.New("unprotected"), knownvalue.ListSizeExact(3)), // recorded before the run
				},
				Check: func(*terraform.State) error {
					last := e.lastSeqInSnapshot(t, "web")
					if last < generatedBeforeRun {
						return fmt.Errorf("backup of web ends at record %d but %d were generated (buffered) before the run: quiesce did not flush into the backup", last, generatedBeforeRun)
					}
					return nil
				},
			},
			{
				// After a refresh-apply the group records its protection.
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(groupAddr, tfjsonpath.New("unprotected"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue(groupAddr, tfjsonpath.New("workload_status").AtMapKey("web").AtMapKey("rpo_met"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(groupAddr, tfjsonpath.New("workload_status").AtMapKey("web").AtMapKey("node"), knownvalue.StringExact("node-1")),
				},
			},
			{ResourceName: repoAddr, ImportState: true, ImportStateId: "repo", ImportStateVerify: true, ImportStateVerifyIgnore: []string{"timeouts", "password", "created", "location", "force_destroy", "create"}},
			{ResourceName: groupAddr, ImportState: true, ImportStateId: "group", ImportStateVerify: true, ImportStateVerifyIgnore: []string{"timeouts"}},
			{ResourceName: runAddr, ImportState: true, ImportStateIdFunc: stateAttr(runAddr, "id"), ImportStateVerify: true, ImportStateVerifyIgnore: []string{"timeouts", "triggers"}},
			{
				// A workload moved: the plan shows the group's drift.
				PreConfig: func() { e.cluster.MoveWorkload(t, "web", "node-1", "node-2") },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(groupAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(groupAddr, tfjsonpath.New("workload_status")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(groupAddr, tfjsonpath.New("workload_status").AtMapKey("web").AtMapKey("node"), knownvalue.StringExact("node-2")),
				},
			},
			{
				// A new workload matching the selector is unprotected.
				PreConfig: func() { e.cluster.StartWorkload(t, "node-3", "extra") },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(groupAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(groupAddr, tfjsonpath.New("unprotected"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("extra")})),
				},
			},
			{
				// Two hours later the RPO of 1h is breached.
				PreConfig: func() { clock.Advance(2 * time.Hour) },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(groupAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(groupAddr, tfjsonpath.New("workload_status").AtMapKey("db").AtMapKey("rpo_met"), knownvalue.Bool(false)),
				},
			},
			{
				// Nothing changed since: no perpetual diff.
				Config:           cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
	// Destroy unregistered the repository but kept its data (no force_destroy).
	verifyRepoDir(t, repoDir)
}

// verifyRepoDir opens a directory repository directly and reads back and
// authenticates every chunk.
func verifyRepoDir(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	be, err := location.Open(ctx, location.Config{URL: dir})
	if err != nil {
		t.Fatalf("repository data was not kept at %s: %v", dir, err)
	}
	defer be.Close()
	repo, err := repository.Open(ctx, be, testRepoPassword, repository.OpenOptions{})
	if err != nil {
		t.Fatalf("open repository: %v", err)
	}
	defer repo.Close()
	if rep, err := repo.Verify(ctx, repository.VerifyOptions{ReadData: true}); err != nil {
		t.Fatalf("repository does not verify: %v (%+v)", err, rep)
	}
}

// TestAccBackupRun_migrationAndNodeLoss: a workload migrating mid-run is
// caught by verification; a node killed mid-run makes the run partial with
// reasons, and the repository still verifies.
func TestAccBackupRun_migrationAndNodeLoss(t *testing.T) {
	e := newTestEnv(t, 3, "web", "db", "app")
	e.cluster.StartWorkload(t, "node-1", "web")
	e.cluster.StartWorkload(t, "node-2", "db")
	e.cluster.StartWorkload(t, "node-3", "app")
	repoDir := e.repoDir
	// Fixed master node-1, master_last: order node-2, node-3, node-1.
	clusterExtra := `  master_policy = "fixed"
  master_node   = "node-1"`
	group := `  workloads  = ["web", "db", "app"]
  node_order = "master_last"`
	mode := "migrate"
	hooks := engine.RunHooks{BeforeNode: func(_ context.Context, node string, visited []string) {
		if node != "node-3" {
			return
		}
		switch mode {
		case "migrate": // app leaves node-3 (not yet visited) for node-2 (visited)
			e.cluster.MoveWorkload(t, "app", "node-3", "node-2")
		case "kill":
			e.cluster.StopAgent(t, "node-3")
		}
	}}
	cfg := func(trigger string) string {
		base := testAccBackupConfig(e, repoDir, group, fmt.Sprintf(`  triggers = { n = %q }`, trigger))
		return regexp.MustCompile(`(?m)^  nodes         = `).ReplaceAllString(base, clusterExtra+"\n  nodes         = ")
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(WithRunHooks(hooks)),
		Steps: []resource.TestStep{
			{
				Config: cfg("1"),
				// app moved during the run: the group shows that drift.
				ExpectNonEmptyPlan: true,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("master"), knownvalue.StringExact("node-1")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("node_order"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact("node-2"), knownvalue.StringExact("node-3"), knownvalue.StringExact("node-1"),
					})),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("app").AtMapKey("node"), knownvalue.StringExact("node-2")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("app").AtMapKey("phase"), knownvalue.StringExact("verify")),
					// db, web, app refused on node-3 (it had left), app on node-2 by verification.
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("steps"), knownvalue.Int64Exact(4)),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("app").AtMapKey("error"), knownvalue.StringExact("")),
				},
			},
			{
				PreConfig: func() {
					mode = "kill"
					e.cluster.MoveWorkload(t, "app", "node-2", "node-3")
				},
				Config: cfg("2"),
				// node-3 is down after the run: the cluster shows it as drift.
				ExpectNonEmptyPlan: true,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("status"), knownvalue.StringExact("partial")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("app").AtMapKey("error"), knownvalue.StringRegexp(regexp.MustCompile(`node-3`))),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("db").AtMapKey("error"), knownvalue.StringExact("")),
				},
			},
			{
				// The partial run is recorded; with node-3 back the plan is
				// about the cluster only (it re-adds node-3), not the run.
				PreConfig: func() { e.cluster.StartAgent(t, "node-3"); mode = "" },
				Config:    cfg("2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(runAddr, plancheck.ResourceActionNoop),
				}},
			},
		},
	})
	verifyRepoDir(t, repoDir)
}

func TestAccBackup_planTimeValidation(t *testing.T) {
	testAccPreCheck(t)
	provider := `
provider "clusterguard" {
  catalog     = "` + t.TempDir() + `/catalog.db"
  agent_token = "0123456789abcdef0123"
}
`
	group := func(body string) string {
		return provider + "resource \"clusterguard_protection_group\" \"bad\" {\n  name = \"g\"\n  cluster = \"c\"\n  repository = \"r\"\n" + body + "\n}\n"
	}
	cases := map[string]struct{ cfg, want string }{
		"unknown node order":    {group(`workloads = ["a"]` + "\n" + `node_order = "alphabetical"`), `value must be one of`},
		"critical without list": {group(`workloads = ["a"]` + "\n" + `node_order = "critical_first"`), `needs critical_workloads`},
		"empty selection":       {group(``), `selects no workload`},
		"empty selector":        {group(`selector = {}`), `empty selector`},
		"invalid rpo":           {group(`workloads = ["a"]` + "\n" + `rpo = "soon"`), `not a duration`},
		"invalid keep_within":   {group(`workloads = ["a"]` + "\n" + `retention = { keep_within = "10 days" }`), `not a duration`},
		"unknown consistency":   {group(`workloads = ["a"]` + "\n" + `consistency = "eventual"`), `value must be one of`},
		"unknown driver":        {group(`selector = { driver = "postgres" }`), `selector.driver value must be one of: ["exec" "postgresql" "qemu"]`},
		"malformed s3 url": {provider + `resource "clusterguard_repository" "bad" {
  name     = "r"
  url      = "s3://Not_A_Bucket/x"
  password = "long enough password"
}`, `bucket`},
		"relative repository path": {provider + `resource "clusterguard_repository" "bad" {
  name     = "r"
  url      = "backups/here"
  password = "long enough password"
}`, `absolute`},
		"short repository password": {provider + `resource "clusterguard_repository" "bad" {
  name     = "r"
  url      = "/backups/here"
  password = "hunter2"
}`, `at least 12`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps:                    []resource.TestStep{{Config: tc.cfg, PlanOnly: true, ExpectError: regexp.MustCompile(`(?i)` + regexp.QuoteMeta(tc.want))}},
			})
		})
	}
}

func stateAttr(addr, attr string) resource.ImportStateIdFunc {
	return func(s *terraform.State) (string, error) {
		rs, ok := s.RootModule().Resources[addr]
		if !ok {
			return "", fmt.Errorf("%s not in state", addr)
		}
		return rs.Primary.Attributes[attr], nil
	}
}
