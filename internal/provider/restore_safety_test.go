package provider

import (
	"regexp"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// F1 through Terraform: the agent of the node running web is killed (web
// keeps running). The plan of a restore job refuses, naming the node and
// assume_down, instead of planning a restore and start elsewhere; with
// assume_down = ["node-3"] the plan goes on on a reachable node.
func TestAccRestoreJob_unreachableNode(t *testing.T) {
	e := newTestEnv(t, 3, "web")
	e.cluster.StartWorkload(t, "node-3", "web")
	repoDir := e.repoDir
	backup := testAccBackupConfig(e, repoDir, `  workloads = ["web"]`, `  triggers = { n = "1" }`)
	base := testAccRepoConfig(e, repoDir)
	watch := watchOverlaps(t, e)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{Config: backup},
			{
				PreConfig:   func() { e.cluster.StopAgent(t, "node-3") },
				Config:      base + restoreJob(`  workloads = [{ name = "web" }]`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Workload Location Unknown.*node-3.*assume_down`),
			},
			{
				// assume_down is honoured once node-3's ownership lease on
				// web (renewed until its agent died) has expired.
				PreConfig: func() { waitOwnerLeaseExpired(t, e, "web") },
				Config: base + restoreJob(`  workloads   = [{ name = "web" }]
  assume_down = ["node-3"]`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue(jobAddr, planPath(0, "deactivate_on"), knownvalue.StringExact("")),
					plancheck.ExpectKnownValue(jobAddr, planPath(0, "node"), knownvalue.StringRegexp(regexp.MustCompile(`^node-[12]$`))),
				}},
			},
		},
	})
	watch.check(t)
}

// F10 through Terraform: with a token every agent refuses, the workload
// digest is an error, not an empty list that claims nothing runs.
func TestAccWorkloadDigest_noNodeAnswered(t *testing.T) {
	e := newTestEnv(t, 2, "web")
	e.cluster.StartWorkload(t, "node-1", "web")
	digest := `
data "clusterguard_workload_digest" "all" {
  cluster = "acc" # literal: read at plan time, before the cluster's drift is applied
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{Config: testAccClusterConfig(e, e.cluster.Token, "")},
			{
				Config:      testAccClusterConfig(e, "wrong-token-0123456789abcdef", "") + digest,
				ExpectError: regexp.MustCompile(`(?s)No Node Answered.*node-1.*node-2`),
			},
		},
	})
}

// waitOwnerLeaseExpired waits until workload's ownership lease on the
// shared volume no longer binds anyone, the engine's skew margin included.
func waitOwnerLeaseExpired(t *testing.T, e *testEnv, workload string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		rec, ok, err := agent.ReadOwnerRecord(e.cluster.SharedVolume, workload)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || rec.Released || time.Now().After(rec.HeartbeatAt.Add(time.Duration(rec.ExpiryMS)*time.Millisecond+3*time.Second)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ownership lease of %s did not expire: %+v", workload, rec)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
