package engine

import (
	"context"
	"fmt"
	"sort"
)

// ChooseMaster picks the node that starts a run (E1) by the cluster's
// policy, among nodes that are healthy now.
func (e *Engine) ChooseMaster(ctx context.Context, cluster string) (string, error) {
	st, err := e.ClusterStatus(ctx, cluster)
	if err != nil {
		return "", err
	}
	return chooseMaster(st.Cluster.MasterPolicy, st.Cluster.MasterNode, st.Nodes, e.intN)
}

// chooseMaster is the pure policy: ties break by join order so the choice
// is stable for the same facts.
func chooseMaster(policy, fixed string, nodes []NodeStatus, intN func(int) int) (string, error) {
	var healthy []NodeStatus
	for _, n := range nodes {
		if n.Err == nil {
			healthy = append(healthy, n)
		}
	}
	if policy == MasterFixed {
		for _, n := range healthy {
			if n.Name == fixed {
				return n.Name, nil
			}
		}
		return "", fmt.Errorf("the fixed master node %q is not healthy; bring its agent back or choose another master_policy", fixed)
	}
	if len(healthy) == 0 {
		return "", fmt.Errorf("no node of the cluster is healthy; a run needs at least one reachable agent")
	}
	switch policy {
	case MasterRandom:
		return healthy[intN(len(healthy))].Name, nil
	case MasterMostFreeResources:
		sort.SliceStable(healthy, func(i, j int) bool { return freeScore(healthy[i]) > freeScore(healthy[j]) })
		return healthy[0].Name, nil
	case MasterLowestFailureRate:
		sort.SliceStable(healthy, func(i, j int) bool { return failureRate(healthy[i]) < failureRate(healthy[j]) })
		return healthy[0].Name, nil
	}
	return "", fmt.Errorf("unknown master policy %q", policy)
}

// freeScore ranks free resources: free memory weighted by idle CPU share.
func freeScore(n NodeStatus) float64 {
	cpus := float64(max(n.Facts.CPUCount, 1))
	idle := max(0, cpus-n.Facts.Load1) / cpus
	return float64(n.Facts.MemFreeBytes) * (0.5 + idle)
}

// failureRate is failures per hour of agent uptime; a young agent with no
// failures ranks best, an old one with many worst.
func failureRate(n NodeStatus) float64 {
	hours := max(n.Facts.UptimeSeconds/3600, 1.0/60)
	return float64(n.Facts.Failures.Total) / hours
}
