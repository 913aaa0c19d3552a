package provider

import (
	"fmt"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// TestAccProtectionGroup_repositoryNotOnAgents: agents open only the
// repositories their config defines (H1), so a protection group whose
// repository the agents have no block for is refused when it is created,
// with a diagnostic that names a node and the block to add; the same
// cluster with the repository the agents do have works.
func TestAccProtectionGroup_repositoryNotOnAgents(t *testing.T) {
	e := newTestEnv(t, 2, "web")
	e.cluster.StartWorkload(t, "node-1", "web")
	group := func(repo, dir string) string {
		return testAccClusterConfig(e, e.cluster.Token, "") + fmt.Sprintf(`
resource "clusterguard_repository" "test" {
  name     = %q
  url      = %q
  password = %q
  create   = true
}

resource "clusterguard_protection_group" "test" {
  name       = "group"
  cluster    = clusterguard_cluster.test.name
  repository = clusterguard_repository.test.name
  workloads  = ["web"]
}
`, repo, dir, testRepoPassword)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      group("offsite", filepath.Join(t.TempDir(), "offsite")),
				ExpectError: regexp.MustCompile(`(?s)Repository Not Configured On Agent.*node "node-[12]".*repository "offsite" \{`),
			},
			{Config: group("repo", e.repoDir)},
		},
	})
}
