package engine

import (
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// orderFixture: n1 has 1 group workload, n2 has 3, n3 has 2 (one critical).
func orderFixture() []NodeStatus {
	nodes := recordedNodes()
	active := func(names ...string) []api.Workload {
		var ws []api.Workload
		for _, n := range names {
			ws = append(ws, api.Workload{Name: n, State: api.StateActive})
		}
		return ws
	}
	nodes[0].Workloads = active("a1")
	nodes[1].Workloads = append(active("b1", "b2", "b3"), api.Workload{Name: "db", State: api.StateInactive})
	nodes[2].Workloads = active("db", "c1", "other")
	return nodes
}

func TestOrderNodes(t *testing.T) {
	t.Parallel()
	selected := []string{"a1", "b1", "b2", "b3", "db", "c1"}
	cases := []struct {
		policy   string
		master   string
		critical []string
		want     string
	}{
		{OrderMasterFirst, "n2", nil, "n2,n1,n3"},
		{OrderMasterLast, "n1", nil, "n2,n3,n1"},
		{OrderMasterLast, "", nil, "n1,n2,n3"}, // engine is master: join order
		{OrderMostWorkloadsFirst, "", nil, "n2,n3,n1"},
		{OrderMostFreeResourcesFirst, "", nil, "n2,n1,n3"},
		{OrderHighestFailureRateFirst, "", nil, "n2,n1,n3"}, // 9/h, 1/h, 0.1/h
		{OrderCriticalFirst, "", []string{"db"}, "n3,n1,n2"},
		{OrderCriticalFirst, "", []string{"b2", "db"}, "n2,n3,n1"},
		{OrderRandom, "", nil, "n2,n3,n1"}, // Fisher-Yates with intN(i+1) = 0
	}
	for _, tc := range cases {
		got, err := OrderNodes(OrderInput{Policy: tc.policy, Master: tc.master, Nodes: orderFixture(), Selected: selected, Critical: tc.critical}, func(int) int { return 0 })
		if err != nil {
			t.Errorf("%s: %v", tc.policy, err)
			continue
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%s (master %q, critical %v) = %v, want %s", tc.policy, tc.master, tc.critical, got, tc.want)
		}
	}
}

func TestOrderNodesErrors(t *testing.T) {
	t.Parallel()
	if _, err := OrderNodes(OrderInput{Policy: OrderCriticalFirst, Nodes: orderFixture()}, nil); err == nil || !strings.Contains(err.Error(), "critical_workloads") {
		t.Fatalf("critical_first without critical workloads: %v", err)
	}
	if _, err := OrderNodes(OrderInput{Policy: "alphabetical", Nodes: orderFixture()}, nil); err == nil || !strings.Contains(err.Error(), "not a node order") {
		t.Fatalf("unknown policy: %v", err)
	}
}
