package provider

import (
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
)

// The overlap watch flags a node running a workload whose live lease the
// volume gives another node, but not a lease handed over between samples.
func TestOwnerViolations(t *testing.T) {
	live := agent.OwnerRecord{Workload: "web", Node: "node-2", Generation: 3, Claim: "c3", HeartbeatAt: time.Now(), ExpiryMS: 60000}
	recs := map[string]agent.OwnerRecord{"web": live}
	got := ownerViolations(recs, recs, map[string][]string{"web": {"node-1"}}, map[string][]string{"web": {"node-1", "node-2"}})
	if len(got) != 2 || !strings.Contains(got[0], "web active on node-1 while node-2 holds") || !strings.Contains(got[1], "node-1 believes it holds") {
		t.Fatalf("violations %q", got)
	}
	handed := live
	handed.Claim = "c2"
	if got := ownerViolations(map[string]agent.OwnerRecord{"web": handed}, recs, map[string][]string{"web": {"node-1"}}, nil); len(got) != 0 {
		t.Fatalf("a lease handed over during the poll was flagged: %q", got)
	}
	if got := ownerViolations(recs, recs, map[string][]string{"web": {"node-2"}}, map[string][]string{"web": {"node-2"}}); len(got) != 0 {
		t.Fatalf("the holder itself was flagged: %q", got)
	}
}
