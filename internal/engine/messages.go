package engine

import (
	"errors"
	"fmt"
	"strings"
)

// unknownWorkloadError says a restore names a workload no agent defines:
// it is unknown (a typo, or a definition missing), not merely unprotected.
func unknownWorkloadError(cluster, workload string, d Digest) error {
	var names []string
	for _, w := range d.Workloads {
		names = append(names, w.Name)
	}
	msg := fmt.Sprintf("workload %q is unknown: no agent of cluster %q defines it", workload, cluster)
	if len(names) > 0 {
		msg += fmt.Sprintf(" (they define %s)", strings.Join(names, ", "))
	}
	if len(d.Unreachable) > 0 {
		var nodes []string
		for _, n := range d.Unreachable {
			nodes = append(nodes, n.Node)
		}
		msg += fmt.Sprintf("; %s could not be asked", strings.Join(nodes, ", "))
	}
	return fmt.Errorf("%s; check the name, or define the workload on the nodes that may run it", msg)
}

// NoNodeAnsweredError is a digest no node contributed to: an empty list
// would claim the cluster runs nothing, so it is an error.
type NoNodeAnsweredError struct {
	Cluster string
	Nodes   []*NodeError
}

func (e *NoNodeAnsweredError) Error() string {
	parts := make([]string, len(e.Nodes))
	for i, n := range e.Nodes {
		parts[i] = n.Error()
	}
	return fmt.Sprintf("no node of cluster %q answered, so where its workloads run is unknown: %s", e.Cluster, strings.Join(parts, "; "))
}

func (e *NoNodeAnsweredError) Unwrap() []error {
	out := make([]error, len(e.Nodes))
	for i, n := range e.Nodes {
		out[i] = n
	}
	return out
}

// noNodeAnswered fails when not one node of status reported its workloads.
func noNodeAnswered(status ClusterStatus) error {
	ne := &NoNodeAnsweredError{Cluster: status.Cluster.Name}
	for _, n := range status.Nodes {
		if n.Err == nil || n.Workloads != nil {
			return nil
		}
		var nodeErr *NodeError
		if errors.As(n.Err, &nodeErr) {
			ne.Nodes = append(ne.Nodes, nodeErr)
		}
	}
	if len(status.Nodes) == 0 {
		return nil
	}
	return ne
}
