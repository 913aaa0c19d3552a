package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

const digestAddr = "data.clusterguard_workload_digest.all"

// workload returns the path of one attribute of the i-th digest entry
// (entries are sorted by name).
func workload(i int, attr string) tfjsonpath.Path {
	return tfjsonpath.New("workloads").AtSliceIndex(i).AtMapKey(attr)
}

func testAccDigestConfig(e *testEnv, filters string) string {
	return e.providerBlock(e.cluster.Token) + fmt.Sprintf(`
data "clusterguard_workload_digest" "all" {
  cluster = "digest"
%s
}
`, filters)
}

// TestAccWorkloadDigest follows workloads through real agents: placement,
// a move between nodes, a conflict, and a node going away.
func TestAccWorkloadDigest(t *testing.T) {
	e := newTestEnv(t, 3, "app", "db", "web")
	e.registerDirectly(t, "digest")
	e.cluster.StartWorkload(t, "node-1", "web")
	e.cluster.StartWorkload(t, "node-2", "db")
	cfg := testAccDigestConfig(e, "")

	// Entries sorted by name: 0 app, 1 db, 2 web.
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(digestAddr, tfjsonpath.New("workloads"), knownvalue.ListSizeExact(3)),
					statecheck.ExpectKnownValue(digestAddr, workload(0, "name"), knownvalue.StringExact("app")),
					statecheck.ExpectKnownValue(digestAddr, workload(0, "state"), knownvalue.StringExact("inactive")),
					statecheck.ExpectKnownValue(digestAddr, workload(1, "node"), knownvalue.StringExact("node-2")),
					statecheck.ExpectKnownValue(digestAddr, workload(2, "name"), knownvalue.StringExact("web")),
					statecheck.ExpectKnownValue(digestAddr, workload(2, "state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(digestAddr, workload(2, "node"), knownvalue.StringExact("node-1")),
					statecheck.ExpectKnownValue(digestAddr, workload(2, "driver"), knownvalue.StringExact("exec")),
					statecheck.ExpectKnownValue(digestAddr, workload(2, "paths"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("apps/web")})),
					statecheck.ExpectKnownValue(digestAddr, tfjsonpath.New("unreachable_nodes"), knownvalue.ListSizeExact(0)),
				},
			},
			{
				PreConfig: func() { e.cluster.MoveWorkload(t, "web", "node-1", "node-3") },
				Config:    cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(digestAddr, workload(2, "node"), knownvalue.StringExact("node-3")),
					statecheck.ExpectKnownValue(digestAddr, workload(2, "state"), knownvalue.StringExact("active")),
				},
			},
			{
				// Started by hand: the agent refuses a second start through its API.
				PreConfig: func() { e.cluster.StartWorkloadProcess(t, "node-1", "web") },
				Config:    cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(digestAddr, workload(2, "state"), knownvalue.StringExact("conflict")),
					statecheck.ExpectKnownValue(digestAddr, workload(2, "node"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(digestAddr, workload(2, "nodes"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact("node-1"), knownvalue.StringExact("node-3"),
					})),
				},
			},
			{
				Config: testAccDigestConfig(e, `  state = "conflict"`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(digestAddr, tfjsonpath.New("workloads"), knownvalue.ListSizeExact(1)),
					statecheck.ExpectKnownValue(digestAddr, workload(0, "name"), knownvalue.StringExact("web")),
				},
			},
			{
				Config: testAccDigestConfig(e, `  node = "node-2"
  name_regex = "^d"`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(digestAddr, tfjsonpath.New("workloads"), knownvalue.ListSizeExact(1)),
					statecheck.ExpectKnownValue(digestAddr, workload(0, "name"), knownvalue.StringExact("db")),
				},
			},
			{
				// node-2 goes away: a warning, db (active only there) becomes
				// unknown, and the rest of the digest still comes back.
				PreConfig: func() {
					e.cluster.StopWorkload(t, "node-1", "web")
					e.cluster.StopAgent(t, "node-2")
				},
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(digestAddr, tfjsonpath.New("unreachable_nodes"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("node-2")})),
					statecheck.ExpectKnownValue(digestAddr, workload(1, "name"), knownvalue.StringExact("db")),
					statecheck.ExpectKnownValue(digestAddr, workload(1, "state"), knownvalue.StringExact("unknown")),
					statecheck.ExpectKnownValue(digestAddr, workload(2, "state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(digestAddr, workload(2, "node"), knownvalue.StringExact("node-3")),
				},
			},
		},
	})
}

func TestAccWorkloadDigest_errors(t *testing.T) {
	testAccPreCheck(t)
	provider := `
provider "clusterguard" {
  catalog     = "` + t.TempDir() + `/catalog.db"
  agent_token = "0123456789abcdef0123"
}
`
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      provider + `data "clusterguard_workload_digest" "x" { cluster = "nope" }`,
				ExpectError: regexp.MustCompile(`Cluster Not Registered`),
			},
			{
				Config: provider + `data "clusterguard_workload_digest" "x" {
  cluster    = "nope"
  name_regex = "(["
}`,
				ExpectError: regexp.MustCompile(`not a valid regular expression`),
			},
			{
				Config: provider + `data "clusterguard_workload_digest" "x" {
  cluster = "nope"
  state   = "running"
}`,
				ExpectError: regexp.MustCompile(`value must be one of`),
			},
		},
	})
}
