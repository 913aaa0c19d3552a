package provider

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// TestAccRecoveryPoints_newCatalogIndexesRepository: a backup is made
// through one catalog; a configuration on a new, empty catalog over the same
// cluster and repository lists that recovery point (the data source indexes
// the repository when the catalog has none), as a restore would find it.
func TestAccRecoveryPoints_newCatalogIndexesRepository(t *testing.T) {
	e := newTestEnv(t, 1, "web")
	e.cluster.StartWorkload(t, "node-1", "web")
	group := `  workloads = ["web"]`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps:                    []resource.TestStep{{Config: testAccBackupConfig(e, e.repoDir, group, `  triggers = { n = "1" }`)}},
	})

	e.catalog = filepath.Join(t.TempDir(), "new-catalog.db")
	// The repository exists: the new catalog registers it without creating it.
	cfg := strings.Replace(testAccBackupConfig(e, e.repoDir, group, ""), "  create   = true\n", "", 1) + `
data "clusterguard_recovery_points" "web" {
  group = clusterguard_protection_group.test.name
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{{
			Config: cfg,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.clusterguard_recovery_points.web", tfjsonpath.New("recovery_points"), knownvalue.ListSizeExact(1)),
				statecheck.ExpectKnownValue("data.clusterguard_recovery_points.web", tfjsonpath.New("latest"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{64}$`))),
				statecheck.ExpectKnownValue("data.clusterguard_recovery_points.web", tfjsonpath.New("recovery_points").AtSliceIndex(0).AtMapKey("workload"), knownvalue.StringExact("web")),
			},
		}},
	})
}
