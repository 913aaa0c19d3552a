package engine

import (
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// recordedNodes are facts as agents reported them, recorded for tests.
func recordedNodes() []NodeStatus {
	return []NodeStatus{
		{Name: "n1", Facts: api.NodeFacts{CPUCount: 4, Load1: 3.5, MemFreeBytes: 8 << 30, UptimeSeconds: 7200, Failures: api.FailureCounters{Total: 2}}},
		{Name: "n2", Facts: api.NodeFacts{CPUCount: 4, Load1: 0.2, MemFreeBytes: 6 << 30, UptimeSeconds: 3600, Failures: api.FailureCounters{Total: 9}}},
		{Name: "n3", Facts: api.NodeFacts{CPUCount: 4, Load1: 1.0, MemFreeBytes: 2 << 30, UptimeSeconds: 36000, Failures: api.FailureCounters{Total: 1}}},
	}
}

func TestChooseMaster(t *testing.T) {
	t.Parallel()
	fixedRand := func(n int) int { return n - 1 }
	cases := []struct {
		policy, fixed, want string
	}{
		{MasterFixed, "n1", "n1"},
		{MasterRandom, "", "n3"},            // injected randomness picks the last healthy node
		{MasterMostFreeResources, "", "n2"}, // 6 GiB at 95% idle beats 8 GiB at 12% idle
		{MasterLowestFailureRate, "", "n3"}, // 0.1/h beats 1/h and 9/h
	}
	for _, tc := range cases {
		got, err := chooseMaster(tc.policy, tc.fixed, recordedNodes(), fixedRand)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.policy, got, err, tc.want)
		}
	}
}

func TestChooseMasterSkipsUnhealthy(t *testing.T) {
	t.Parallel()
	nodes := recordedNodes()
	nodes[1].Err = &NodeError{Node: "n2", Problem: ProblemUnreachable}
	if got, _ := chooseMaster(MasterMostFreeResources, "", nodes, nil); got != "n1" {
		t.Fatalf("with n2 down got %q, want n1", got)
	}
	if _, err := chooseMaster(MasterFixed, "n2", nodes, nil); err == nil {
		t.Fatal("fixed master on an unreachable node must fail")
	}
	for i := range nodes {
		nodes[i].Err = &NodeError{Node: nodes[i].Name}
	}
	if _, err := chooseMaster(MasterRandom, "", nodes, func(int) int { return 0 }); err == nil {
		t.Fatal("no healthy node must fail")
	}
}
