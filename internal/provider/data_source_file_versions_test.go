package provider

import (
	"fmt"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// TestAccRecoveryPointsAndFileVersions: two backups of a workload whose
// records.log grows in between and whose config file does not; the
// recovery points list both newest first, and the file versions say which
// file changed (M9).
func TestAccRecoveryPointsAndFileVersions(t *testing.T) {
	e := newTestEnvWith(t, 2, map[string]string{"CLUSTERGUARD_TESTWORKLOAD_FLUSH_EVERY": "1"}, "web")
	e.writeData(t, "web", "config.yml", "listen: 8080\n")
	e.cluster.StartWorkload(t, "node-1", "web")
	repoDir := e.repoDir
	group := `  workloads = ["web"]`
	sources := `
data "clusterguard_recovery_points" "web" {
  workload   = "web"
  repository = clusterguard_repository.test.name
  depends_on = [clusterguard_backup_run.test]
}

data "clusterguard_file_versions" "log" {
  repository = clusterguard_repository.test.name
  workload   = "web"
  path       = "apps/web/records.log"
  depends_on = [clusterguard_backup_run.test]
}

data "clusterguard_workload_digest" "all" {
  cluster    = clusterguard_cluster.test.name
  depends_on = [clusterguard_backup_run.test]
}

data "clusterguard_workload_digest" "stale" {
  cluster           = clusterguard_cluster.test.name
  backup_older_than = "1h"
  depends_on        = [clusterguard_backup_run.test]
}

data "clusterguard_file_versions" "config" {
  repository = clusterguard_repository.test.name
  workload   = "web"
  path       = "apps/web/config.yml"
  depends_on = [clusterguard_backup_run.test]
}
`
	cfg := func(n int) string {
		return testAccBackupConfig(e, repoDir, group, fmt.Sprintf(`  triggers = { n = "%d" }`, n)) + sources
	}
	var firstLogSize int64
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{Config: cfg(1)},
			{
				PreConfig: func() {
					// Let records.log grow past its size in the first backup.
					st, _ := filepath.Glob(filepath.Join(e.cluster.WorkloadDataDir("web"), "records.log"))
					if len(st) == 1 {
						firstLogSize = fileSize(t, st[0])
					}
					waitGrowth(t, filepath.Join(e.cluster.WorkloadDataDir("web"), "records.log"), firstLogSize)
				},
				Config: cfg(2),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.clusterguard_recovery_points.web", tfjsonpath.New("recovery_points"), knownvalue.ListSizeExact(2)),
					statecheck.ExpectKnownValue("data.clusterguard_recovery_points.web", tfjsonpath.New("latest"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{64}$`))),
					statecheck.ExpectKnownValue("data.clusterguard_recovery_points.web", tfjsonpath.New("recovery_points").AtSliceIndex(0).AtMapKey("node"), knownvalue.StringExact("node-1")),
					statecheck.ExpectKnownValue("data.clusterguard_file_versions.log", tfjsonpath.New("versions"), knownvalue.ListSizeExact(2)),
					statecheck.ExpectKnownValue("data.clusterguard_file_versions.log", tfjsonpath.New("versions").AtSliceIndex(0).AtMapKey("unchanged"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue("data.clusterguard_file_versions.config", tfjsonpath.New("versions"), knownvalue.ListSizeExact(2)),
					statecheck.ExpectKnownValue("data.clusterguard_file_versions.config", tfjsonpath.New("versions").AtSliceIndex(0).AtMapKey("unchanged"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("data.clusterguard_file_versions.config", tfjsonpath.New("versions").AtSliceIndex(0).AtMapKey("size"), knownvalue.Int64Exact(13)),
					// E14: the digest shows the last backup; web was backed up just now.
					statecheck.ExpectKnownValue("data.clusterguard_workload_digest.all", tfjsonpath.New("workloads").AtSliceIndex(0).AtMapKey("last_backup_at"), knownvalue.StringRegexp(regexp.MustCompile(`^\d{4}-\d\d-\d\dT`))),
					// E14: the run in the catalog captured web (replacing the
					// backup_run resource forgot the first); it was never restored.
					statecheck.ExpectKnownValue("data.clusterguard_workload_digest.all", tfjsonpath.New("workloads").AtSliceIndex(0).AtMapKey("backup_attempts"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue("data.clusterguard_workload_digest.all", tfjsonpath.New("workloads").AtSliceIndex(0).AtMapKey("backup_failure_rate"), knownvalue.Float64Exact(0)),
					statecheck.ExpectKnownValue("data.clusterguard_workload_digest.all", tfjsonpath.New("workloads").AtSliceIndex(0).AtMapKey("last_restore_at"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue("data.clusterguard_workload_digest.stale", tfjsonpath.New("workloads"), knownvalue.ListSizeExact(0)),
				},
			},
		},
	})
}

func TestAccRecoveryPoints_planTimeValidation(t *testing.T) {
	testAccPreCheck(t)
	provider := `
provider "clusterguard" {
  catalog     = "` + t.TempDir() + `/catalog.db"
  agent_token = "0123456789abcdef0123"
}
`
	cases := map[string]struct{ cfg, want string }{
		"no filter":      {`data "clusterguard_recovery_points" "x" { repository = "r" }`, `Set at least one of cluster, group or workload`},
		"bad time":       {"data \"clusterguard_recovery_points\" \"x\" {\n  workload = \"w\"\n  from = \"last week\"\n}", `not an RFC 3339 time`},
		"empty range":    {"data \"clusterguard_recovery_points\" \"x\" {\n  workload = \"w\"\n  from = \"2026-01-02T00:00:00Z\"\n  to = \"2026-01-01T00:00:00Z\"\n}", `to must be after from`},
		"absolute path":  {"data \"clusterguard_file_versions\" \"x\" {\n  repository = \"r\"\n  workload = \"w\"\n  path = \"/etc/passwd\"\n}", `is absolute`},
		"traversal path": {"data \"clusterguard_file_versions\" \"x\" {\n  repository = \"r\"\n  workload = \"w\"\n  path = \"apps/../../etc\"\n}", `contains '..'`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps:                    []resource.TestStep{{Config: provider + tc.cfg, PlanOnly: true, ExpectError: regexp.MustCompile(regexp.QuoteMeta(tc.want))}},
			})
		})
	}
}
