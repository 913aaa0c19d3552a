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

// Plain HTTP to another host is refused at plan time, naming the node,
// unless the provider sets insecure_plaintext; loopback stays allowed.
func TestAccCluster_plaintextEndpointRefused(t *testing.T) {
	testAccPreCheck(t)
	catalog := t.TempDir() + "/catalog.db"
	config := func(providerExtra, endpoint string) string {
		return fmt.Sprintf(`
provider "clusterguard" {
  catalog     = %q
  agent_token = "0123456789abcdef0123"
%s
}
resource "clusterguard_cluster" "c" {
  name          = "x"
  shared_volume = "/srv"
  nodes         = { "node-1" = "http://127.0.0.1:7001", "node-2" = %q }
}
`, catalog, providerExtra, endpoint)
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config("", "http://10.0.0.5:7420"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Plain HTTP Agent Endpoint.*node-2.*insecure_plaintext`),
			},
			{
				Config:             config("  insecure_plaintext = true", "http://10.0.0.5:7420"),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config:             config("", "https://10.0.0.5:7420"),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

// Per-node tokens reach each node's agent: with a wrong shared token, the
// cluster registers only because agent_tokens gives each node its own.
func TestAccCluster_perNodeTokens(t *testing.T) {
	e := newTestEnv(t, 2)
	tokens := func(node2 string) string {
		return fmt.Sprintf(`
provider "clusterguard" {
  catalog      = %q
  agent_token  = "not-the-agents-token-at-all"
  agent_tokens = { "node-1" = %q, "node-2" = %q }
}
resource "clusterguard_cluster" "test" {
  name          = "acc"
  shared_volume = %q
  nodes         = %s
}
`, e.catalog, e.cluster.Token, node2, e.cluster.SharedVolume, e.nodesHCL())
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      tokens("wrong-token-for-node-2-only"),
				ExpectError: regexp.MustCompile(`(?s)node-2.*(refused the token|unauthorized)`),
			},
			{
				Config: tokens(e.cluster.Token),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("clusterguard_cluster.test", tfjsonpath.New("nodes"), knownvalue.MapSizeExact(2)),
				},
			},
		},
	})
}
