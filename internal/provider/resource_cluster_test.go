package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	pgtest "github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
)

const clusterAddr = "clusterguard_cluster.test"

func testAccClusterConfig(e *testEnv, token, extra string) string {
	return e.providerBlock(token) + fmt.Sprintf(`
resource "clusterguard_cluster" "test" {
  name          = "acc"
  shared_volume = %q
  nodes         = %s
%s
}
`, e.cluster.SharedVolume, e.nodesHCL(), extra)
}

func nodeStatus(node, attr string) tfjsonpath.Path {
	return tfjsonpath.New("node_status").AtMapKey(node).AtMapKey(attr)
}

// TestAccCluster_lifecycle registers a real 3-node cluster, imports it,
// sees an agent going away as drift (plan re-adds it, apply explains why it
// cannot), and recovers when the agent is back.
func TestAccCluster_lifecycle(t *testing.T) {
	e := newTestEnv(t, 3, "web", "db")
	e.cluster.StartWorkload(t, "node-1", "web")
	e.cluster.StartWorkload(t, "node-2", "db")
	cfg := testAccClusterConfig(e, e.cluster.Token, `  master_policy = "fixed"
  master_node   = "node-2"
  join_sequence = ["node-3", "node-1", "node-2"]`)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(clusterAddr, tfjsonpath.New("id"), knownvalue.StringExact("acc")),
					statecheck.ExpectKnownValue(clusterAddr, tfjsonpath.New("join_order"), knownvalue.StringExact("sequential")),
					statecheck.ExpectKnownValue(clusterAddr, tfjsonpath.New("shared_volume_id"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{32}$`))),
					statecheck.ExpectKnownValue(clusterAddr, tfjsonpath.New("nodes"), knownvalue.MapSizeExact(3)),
					statecheck.ExpectKnownValue(clusterAddr, nodeStatus("node-1", "reachable"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(clusterAddr, nodeStatus("node-1", "active_workloads"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue(clusterAddr, nodeStatus("node-2", "active_workloads"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue(clusterAddr, nodeStatus("node-3", "active_workloads"), knownvalue.Int64Exact(0)),
					statecheck.ExpectKnownValue(clusterAddr, nodeStatus("node-3", "problem"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(clusterAddr, nodeStatus("node-3", "agent_version"), knownvalue.NotNull()),
				},
			},
			{
				ResourceName:                         clusterAddr,
				ImportState:                          true,
				ImportStateId:                        "acc",
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "name",
				// join_sequence is configuration only; the catalog keeps the order itself.
				ImportStateVerifyIgnore: []string{"timeouts", "join_sequence"},
			},
			{
				// Re-applying the same configuration is a no-op: no perpetual diff.
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// An agent that went away is drift: the plan re-adds the node
				// and apply refuses with the reason.
				PreConfig: func() { e.cluster.StopAgent(t, "node-3") },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(clusterAddr, plancheck.ResourceActionUpdate),
					},
				},
				ExpectError: regexp.MustCompile(`(?s)Agent Unreachable.*node-3`),
			},
			{
				PreConfig: func() { e.cluster.StartAgent(t, "node-3") },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(clusterAddr, nodeStatus("node-3", "reachable"), knownvalue.Bool(true)),
				},
			},
		},
	})
}

func TestAccCluster_wrongToken(t *testing.T) {
	e := newTestEnv(t, 2)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      testAccClusterConfig(e, "not-the-agents-token-at-all", ""),
			ExpectError: regexp.MustCompile(`(?s)Agent Refused Token.*agent_token`),
		}},
	})
}

// TestAccCluster_planTimeValidation needs no agents: every case fails at
// plan time, before any node is contacted.
func TestAccCluster_planTimeValidation(t *testing.T) {
	testAccPreCheck(t)
	provider := `
provider "clusterguard" {
  catalog     = "` + t.TempDir() + `/catalog.db"
  agent_token = "0123456789abcdef0123"
}
`
	cluster := func(body string) string {
		return provider + "resource \"clusterguard_cluster\" \"bad\" {\n" + body + "\n}\n"
	}
	cases := map[string]struct {
		body string
		want string
	}{
		"malformed endpoint": {`name = "x"
shared_volume = "/srv"
nodes = { a = "10.0.0.1:7420" }`, `must start with http:// or https://`},
		"endpoint without port": {`name = "x"
shared_volume = "/srv"
nodes = { a = "https://node-a" }`, `has no port`},
		"duplicate endpoints": {`name = "x"
shared_volume = "/srv"
nodes = { a = "http://127.0.0.1:7001", b = "http://127.0.0.1:7001/" }`, `also used by node "a"`},
		"unknown master policy": {`name = "x"
shared_volume = "/srv"
nodes = { a = "http://127.0.0.1:7001" }
master_policy = "oldest"`, `value must be one of`},
		"fixed master not a node": {`name = "x"
shared_volume = "/srv"
nodes = { a = "http://127.0.0.1:7001" }
master_policy = "fixed"
master_node = "z"`, `"z" is not one of the nodes`},
		"fixed without master node": {`name = "x"
shared_volume = "/srv"
nodes = { a = "http://127.0.0.1:7001" }
master_policy = "fixed"`, `needs master_node`},
		"empty name": {`name = ""
shared_volume = "/srv"
nodes = { a = "http://127.0.0.1:7001" }`, `must not be empty`},
		"relative shared volume": {`name = "x"
shared_volume = "srv"
nodes = { a = "http://127.0.0.1:7001" }`, `must be an absolute path`},
		"unknown join order": {`name = "x"
shared_volume = "/srv"
nodes = { a = "http://127.0.0.1:7001" }
join_order = "rolling"`, `value must be one of`},
		"join sequence not a permutation": {`name = "x"
shared_volume = "/srv"
nodes = { a = "http://127.0.0.1:7001", b = "http://127.0.0.1:7002" }
join_sequence = ["a"]`, `missing b`},
		"no nodes": {`name = "x"
shared_volume = "/srv"
nodes = {}`, `at least 1`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config:      cluster(tc.body),
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(regexp.QuoteMeta(tc.want)),
				}},
			})
		})
	}
}

// TestAccCluster_postgresCatalog: the same lifecycle with the catalog in a
// real PostgreSQL server, as teams sharing one catalog would run it.
func TestAccCluster_postgresCatalog(t *testing.T) {
	e := newTestEnv(t, 2, "web")
	pg := pgtest.Start(t)
	e.catalog = pg.CreateDatabase(t)
	t.Setenv("CLUSTERGUARD_CATALOG_KEY", strings.Repeat("ab", 32)) // a PostgreSQL catalog requires a key
	cfg := testAccClusterConfig(e, e.cluster.Token, "")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(clusterAddr, tfjsonpath.New("nodes"), knownvalue.MapSizeExact(2)),
				},
			},
			{ResourceName: clusterAddr, ImportState: true, ImportStateId: "acc", ImportStateVerify: true,
				ImportStateVerifyIdentifierAttribute: "name", ImportStateVerifyIgnore: []string{"timeouts"}},
		},
	})
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	if got := redactURL("postgres://cg:s3cret@db:5432/cat"); strings.Contains(got, "s3cret") {
		t.Fatalf("password shown: %s", got)
	}
	if got := redactURL("/var/lib/clusterguard/catalog.db"); got != "/var/lib/clusterguard/catalog.db" {
		t.Fatalf("path changed: %s", got)
	}
}

// TestAccCluster_volumeMismatch: agents that serve another shared volume
// than the one declared are refused at create, naming each node.
func TestAccCluster_volumeMismatch(t *testing.T) {
	e := newTestEnv(t, 2)
	cfg := e.providerBlock(e.cluster.Token) + fmt.Sprintf(`
resource "clusterguard_cluster" "test" {
  name          = "acc"
  shared_volume = "/not/the/volume"
  nodes         = %s
  join_order    = "parallel"
}
`, e.nodesHCL())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      cfg,
			ExpectError: regexp.MustCompile(`(?s)Shared Volume Mismatch.*node-1.*Shared Volume Mismatch.*node-2`),
		}},
	})
}
