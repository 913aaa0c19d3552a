package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Node order policies for a federated backup (E5).
const (
	OrderMasterLast              = "master_last"
	OrderMasterFirst             = "master_first"
	OrderMostWorkloadsFirst      = "most_workloads_first"
	OrderMostFreeResourcesFirst  = "most_free_resources_first"
	OrderHighestFailureRateFirst = "highest_failure_rate_first"
	OrderCriticalFirst           = "critical_first"
	OrderRandom                  = "random"
)

// NodeOrders lists the accepted node order policies.
var NodeOrders = []string{
	OrderMasterLast, OrderMasterFirst, OrderMostWorkloadsFirst, OrderMostFreeResourcesFirst,
	OrderHighestFailureRateFirst, OrderCriticalFirst, OrderRandom,
}

// OrderInput is what an ordering policy may look at.
type OrderInput struct {
	Policy   string
	Master   string       // the run's master node; "" when the engine is master
	Nodes    []NodeStatus // healthy nodes in join order
	Selected []string     // workloads of the protection group
	Critical []string     // for critical_first: workloads whose nodes go first, in this priority
}

// OrderNodes returns node names in the order a run visits them. Ties always
// break by join order, so a policy gives the same order for the same facts;
// only "random" uses intN.
func OrderNodes(in OrderInput, intN func(int) int) ([]string, error) {
	nodes := slices.Clone(in.Nodes)
	selected := map[string]bool{}
	for _, w := range in.Selected {
		selected[w] = true
	}
	groupWorkloads := func(n NodeStatus) int {
		c := 0
		for _, w := range n.Workloads {
			if w.State == "active" && selected[w.Name] {
				c++
			}
		}
		return c
	}
	byScore := func(score func(NodeStatus) float64) {
		sort.SliceStable(nodes, func(i, j int) bool { return score(nodes[i]) > score(nodes[j]) })
	}
	switch in.Policy {
	case OrderMasterFirst, OrderMasterLast:
		i := slices.IndexFunc(nodes, func(n NodeStatus) bool { return n.Name == in.Master })
		if i >= 0 {
			m := nodes[i]
			nodes = slices.Delete(nodes, i, i+1)
			if in.Policy == OrderMasterFirst {
				nodes = slices.Insert(nodes, 0, m)
			} else {
				nodes = append(nodes, m)
			}
		}
	case OrderMostWorkloadsFirst:
		byScore(func(n NodeStatus) float64 { return float64(groupWorkloads(n)) })
	case OrderMostFreeResourcesFirst:
		byScore(freeScore)
	case OrderHighestFailureRateFirst:
		byScore(failureRate)
	case OrderCriticalFirst:
		if len(in.Critical) == 0 {
			return nil, &ValidationError{Field: "critical_workloads", Reason: `node_order "critical_first" needs critical_workloads, the workloads whose nodes are backed up first`}
		}
		// Score: the best (lowest) priority index of a critical workload
		// active on the node; nodes with none keep join order after them.
		rank := func(n NodeStatus) int {
			best := len(in.Critical)
			for _, w := range n.Workloads {
				if w.State != "active" {
					continue
				}
				if i := slices.Index(in.Critical, w.Name); i >= 0 && i < best {
					best = i
				}
			}
			return best
		}
		sort.SliceStable(nodes, func(i, j int) bool { return rank(nodes[i]) < rank(nodes[j]) })
	case OrderRandom:
		for i := len(nodes) - 1; i > 0; i-- {
			j := intN(i + 1)
			nodes[i], nodes[j] = nodes[j], nodes[i]
		}
	default:
		return nil, &ValidationError{Field: "node_order", Reason: fmt.Sprintf("%q is not a node order; use one of %s", in.Policy, strings.Join(NodeOrders, ", "))}
	}
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out, nil
}
