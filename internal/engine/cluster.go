package engine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// Master node policies (E1).
const (
	MasterFixed             = "fixed"
	MasterRandom            = "random"
	MasterMostFreeResources = "most_free_resources"
	MasterLowestFailureRate = "lowest_failure_rate"
)

// MasterPolicies lists the accepted master policies.
var MasterPolicies = []string{MasterFixed, MasterRandom, MasterMostFreeResources, MasterLowestFailureRate}

// Join orders (M2).
const (
	JoinSequential = "sequential"
	JoinParallel   = "parallel"
)

// JoinOrders lists the accepted join orders.
var JoinOrders = []string{JoinSequential, JoinParallel}

// ClusterSpec is what an operator declares about a cluster.
type ClusterSpec struct {
	Name         string
	SharedVolume string
	Nodes        map[string]string // node name -> agent endpoint
	JoinSequence []string          // order for sequential joins; default: node names sorted
	MasterPolicy string
	MasterNode   string
	JoinOrder    string
}

// NodeStatus is one node as probed now.
type NodeStatus struct {
	Name            string
	Endpoint        string
	Reachable       bool
	AgentVersion    string
	SharedVolume    string
	SharedVolumeID  string
	ActiveWorkloads int
	Facts           api.NodeFacts
	Workloads       []api.Workload
	Problem         NodeProblem // empty when healthy
	Err             error       // the check that failed, nil when healthy
}

// ClusterStatus is a registered cluster with every node probed.
type ClusterStatus struct {
	Cluster catalog.Cluster
	Nodes   []NodeStatus // in join order
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// ValidateName checks a cluster, node or workload name.
func ValidateName(field, name string) error {
	if name == "" {
		return &ValidationError{Field: field, Reason: "must not be empty"}
	}
	if !namePattern.MatchString(name) {
		return &ValidationError{Field: field, Reason: fmt.Sprintf("%q is not a valid name: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit", name)}
	}
	return nil
}

// NormalizeEndpoint validates an agent endpoint and returns its canonical
// form (lower-case scheme and host, no trailing slash).
func NormalizeEndpoint(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		return "", fmt.Errorf("%q must start with http:// or https://, e.g. https://%s", raw, strings.TrimLeft(raw, "/"))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL (%w); write it as https://HOST:PORT", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q must start with http:// or https://, e.g. https://10.0.0.5:7420", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("%q has no host; write it as %s://HOST:PORT", raw, u.Scheme)
	}
	if u.Port() == "" {
		return "", fmt.Errorf("%q has no port; the agent listens on an explicit port, e.g. %s://%s:7420", raw, u.Scheme, u.Hostname())
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q must be only scheme, host and port (no path, query, fragment or credentials)", raw)
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}

// ValidateClusterSpec checks everything that can be known without
// contacting an agent. Provider validators call it at plan time.
func ValidateClusterSpec(s ClusterSpec) error {
	var errs []error
	if err := ValidateName("name", s.Name); err != nil {
		errs = append(errs, err)
	}
	if s.SharedVolume == "" || !path.IsAbs(s.SharedVolume) {
		errs = append(errs, &ValidationError{Field: "shared_volume", Reason: fmt.Sprintf("%q must be an absolute path, the mount point of the shared volume on every node", s.SharedVolume)})
	}
	if len(s.Nodes) == 0 {
		errs = append(errs, &ValidationError{Field: "nodes", Reason: "at least one node is required"})
	}
	for _, name := range sortedKeys(s.Nodes) {
		if err := ValidateName("nodes", name); err != nil {
			if v, ok := AsValidation(err); ok {
				v.Key = name
			}
			errs = append(errs, err)
		}
		if _, err := NormalizeEndpoint(s.Nodes[name]); err != nil {
			errs = append(errs, &ValidationError{Field: "nodes", Key: name, Reason: err.Error()})
		}
	}
	if !slices.Contains(MasterPolicies, s.MasterPolicy) {
		errs = append(errs, &ValidationError{Field: "master_policy", Reason: fmt.Sprintf("%q is not a master policy; use one of %s", s.MasterPolicy, strings.Join(MasterPolicies, ", "))})
	}
	if !slices.Contains(JoinOrders, s.JoinOrder) {
		errs = append(errs, &ValidationError{Field: "join_order", Reason: fmt.Sprintf("%q is not a join order; use one of %s", s.JoinOrder, strings.Join(JoinOrders, ", "))})
	}
	if err := ValidateClusterRelations(s); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ValidateClusterRelations checks the rules that tie attributes together
// (each attribute on its own is checked by ValidateClusterSpec): endpoints
// unique, master_node consistent with master_policy, join_sequence a
// permutation of the nodes. Unknown policies are left to the field check.
func ValidateClusterRelations(s ClusterSpec) error {
	var errs []error
	seen := map[string]string{}
	for _, name := range sortedKeys(s.Nodes) {
		norm, err := NormalizeEndpoint(s.Nodes[name])
		if err != nil {
			continue
		}
		if other, dup := seen[norm]; dup {
			errs = append(errs, &ValidationError{Field: "nodes", Key: name, Reason: fmt.Sprintf("endpoint %s is also used by node %q; every node needs its own agent", norm, other)})
		}
		seen[norm] = name
	}
	switch {
	case s.MasterPolicy == MasterFixed && s.MasterNode == "":
		errs = append(errs, &ValidationError{Field: "master_node", Reason: `master_policy "fixed" needs master_node, the name of one of the nodes`})
	case s.MasterPolicy == MasterFixed && s.Nodes[s.MasterNode] == "":
		errs = append(errs, &ValidationError{Field: "master_node", Reason: fmt.Sprintf("%q is not one of the nodes (%s)", s.MasterNode, strings.Join(sortedKeys(s.Nodes), ", "))})
	case s.MasterPolicy != MasterFixed && s.MasterNode != "":
		errs = append(errs, &ValidationError{Field: "master_node", Reason: fmt.Sprintf("master_node is only used with master_policy \"fixed\" (policy is %q); remove it or set the policy to fixed", s.MasterPolicy)})
	}
	if len(s.JoinSequence) > 0 {
		if err := validatePermutation(s.JoinSequence, s.Nodes); err != nil {
			errs = append(errs, &ValidationError{Field: "join_sequence", Reason: err.Error()})
		}
	}
	return errors.Join(errs...)
}

func validatePermutation(seq []string, nodes map[string]string) error {
	seen := map[string]bool{}
	for _, n := range seq {
		if _, ok := nodes[n]; !ok {
			return fmt.Errorf("%q is not one of the nodes (%s)", n, strings.Join(sortedKeys(nodes), ", "))
		}
		if seen[n] {
			return fmt.Errorf("%q is listed twice", n)
		}
		seen[n] = true
	}
	if len(seen) != len(nodes) {
		var missing []string
		for _, n := range sortedKeys(nodes) {
			if !seen[n] {
				missing = append(missing, n)
			}
		}
		return fmt.Errorf("must list every node once; missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// joinedNodes returns the catalog nodes in join order.
func (s ClusterSpec) joinedNodes() []catalog.Node {
	order := s.JoinSequence
	if len(order) == 0 {
		order = sortedKeys(s.Nodes)
	}
	out := make([]catalog.Node, len(order))
	for i, name := range order {
		ep, _ := NormalizeEndpoint(s.Nodes[name])
		out[i] = catalog.Node{Name: name, Endpoint: ep, Position: i}
	}
	return out
}

// RegisterCluster verifies every agent (reachable, authenticated, reporting
// its own name and the same shared volume) in the join order, then records
// the cluster. Registering an existing name replaces it (an update).
func (e *Engine) RegisterCluster(ctx context.Context, s ClusterSpec) (ClusterStatus, error) {
	if err := ValidateClusterSpec(s); err != nil {
		return ClusterStatus{}, err
	}
	nodes := s.joinedNodes()
	var statuses []NodeStatus
	if s.JoinOrder == JoinSequential {
		// One node at a time, stopping at the first that fails (M2): a
		// rolling join never leaves later nodes half-registered.
		for _, n := range nodes {
			e.log.InfoContext(ctx, "joining node", "cluster", s.Name, "node", n.Name, "endpoint", n.Endpoint)
			st := e.probeNode(ctx, n)
			statuses = append(statuses, st)
			if st.Err != nil {
				break
			}
		}
	} else {
		statuses = e.probeNodes(ctx, nodes)
	}
	checkVolume(s.SharedVolume, statuses)
	if err := clusterCheckError(s.Name, statuses); err != nil {
		return ClusterStatus{}, err
	}
	now := e.now().UTC()
	c := catalog.Cluster{
		Name: s.Name, SharedVolume: s.SharedVolume, SharedVolumeID: statuses[0].SharedVolumeID,
		MasterPolicy: s.MasterPolicy, MasterNode: s.MasterNode, JoinOrder: s.JoinOrder,
		Nodes: nodes, CreatedAt: now, UpdatedAt: now,
	}
	if old, err := e.store.GetCluster(ctx, s.Name); err == nil {
		c.CreatedAt = old.CreatedAt
	} else if !errors.Is(err, catalog.ErrNotFound) {
		return ClusterStatus{}, fmt.Errorf("reading cluster %q from the catalog: %w", s.Name, err)
	}
	if err := e.store.PutCluster(ctx, c); err != nil {
		return ClusterStatus{}, fmt.Errorf("recording cluster %q in the catalog: %w", s.Name, err)
	}
	return ClusterStatus{Cluster: c, Nodes: statuses}, nil
}

// ClusterStatus probes every node of a registered cluster. Node problems are
// reported per node, not as an error: a refresh must show them as drift.
func (e *Engine) ClusterStatus(ctx context.Context, name string) (ClusterStatus, error) {
	c, err := e.store.GetCluster(ctx, name)
	if err != nil {
		return ClusterStatus{}, err
	}
	statuses := e.probeNodes(ctx, c.Nodes)
	checkVolumeID(c, statuses)
	return ClusterStatus{Cluster: c, Nodes: statuses}, nil
}

// GetCluster returns the registered cluster without probing.
func (e *Engine) GetCluster(ctx context.Context, name string) (catalog.Cluster, error) {
	return e.store.GetCluster(ctx, name)
}

// UnregisterCluster forgets a cluster. Workloads and agents are untouched.
func (e *Engine) UnregisterCluster(ctx context.Context, name string) error {
	return e.store.DeleteCluster(ctx, name)
}

func (e *Engine) probeNodes(ctx context.Context, nodes []catalog.Node) []NodeStatus {
	out := make([]NodeStatus, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { out[i] = e.probeNode(ctx, n) })
	}
	wg.Wait()
	return out
}

// probeNode asks one agent for its facts and workloads.
func (e *Engine) probeNode(ctx context.Context, n catalog.Node) NodeStatus {
	st := NodeStatus{Name: n.Name, Endpoint: n.Endpoint}
	ctx, cancel := context.WithTimeout(ctx, e.probeTimeout)
	defer cancel()
	fail := func(p NodeProblem, detail string, err error) NodeStatus {
		st.Problem = p
		st.Err = &NodeError{Node: n.Name, Endpoint: n.Endpoint, Problem: p, Detail: detail, Err: err}
		return st
	}
	cl, err := e.dial(n.Name, n.Endpoint)
	if err != nil {
		return fail(ProblemAgentError, "cannot build a client for the agent", err)
	}
	facts, err := cl.Node(ctx)
	if err != nil {
		switch {
		case client.IsUnauthorized(err):
			st.Reachable = true
			return fail(ProblemUnauthorized, "the agent refused the token; set the provider's agent_token (or CLUSTERGUARD_AGENT_TOKEN) to the token in the agent's token_file", err)
		case client.IsUnreachable(err):
			return fail(ProblemUnreachable, "the agent did not answer; check that it runs and that the endpoint is right", err)
		default:
			st.Reachable = true
			return fail(ProblemAgentError, "the agent answered with an error", err)
		}
	}
	st.Reachable = true
	st.Facts = facts
	st.AgentVersion = facts.AgentVersion
	st.SharedVolume = facts.SharedVolume
	st.SharedVolumeID = facts.SharedVolumeID
	if facts.Name != n.Name {
		return fail(ProblemNameMismatch, fmt.Sprintf("the agent says it is node %q; set the key in nodes to %q or fix the agent's node setting", facts.Name, facts.Name), nil)
	}
	wl, err := cl.Workloads(ctx)
	if err != nil {
		return fail(ProblemAgentError, "listing workloads failed", err)
	}
	st.Workloads = wl.Workloads
	for _, w := range wl.Workloads {
		if w.State == api.StateActive {
			st.ActiveWorkloads++
		}
	}
	return st
}

// checkVolume marks nodes that do not serve the declared volume, or serve a
// different volume than the first healthy node.
func checkVolume(declared string, statuses []NodeStatus) {
	var refID, refNode string
	for i := range statuses {
		st := &statuses[i]
		if st.Err != nil {
			continue
		}
		if st.SharedVolume != declared {
			markVolumeMismatch(st, fmt.Sprintf("the agent serves shared volume %q, not %q; make shared_volume match the agent's shared_volume setting", st.SharedVolume, declared))
			continue
		}
		if refID == "" {
			refID, refNode = st.SharedVolumeID, st.Name
			continue
		}
		if st.SharedVolumeID != refID {
			markVolumeMismatch(st, fmt.Sprintf("%s on this node is a different volume (id %s) than on node %q (id %s); mount the same shared volume on every node", declared, st.SharedVolumeID, refNode, refID))
		}
	}
}

// checkVolumeID compares every node with the volume id recorded at registration.
func checkVolumeID(c catalog.Cluster, statuses []NodeStatus) {
	for i := range statuses {
		st := &statuses[i]
		if st.Err != nil {
			continue
		}
		switch {
		case st.SharedVolume != c.SharedVolume:
			markVolumeMismatch(st, fmt.Sprintf("the agent now serves shared volume %q, not %q", st.SharedVolume, c.SharedVolume))
		case c.SharedVolumeID != "" && st.SharedVolumeID != c.SharedVolumeID:
			markVolumeMismatch(st, fmt.Sprintf("%s is now a different volume (id %s) than at registration (id %s); remount the cluster's shared volume", c.SharedVolume, st.SharedVolumeID, c.SharedVolumeID))
		}
	}
}

func markVolumeMismatch(st *NodeStatus, detail string) {
	st.Problem = ProblemVolumeMismatch
	st.Err = &NodeError{Node: st.Name, Endpoint: st.Endpoint, Problem: ProblemVolumeMismatch, Detail: detail}
}

func clusterCheckError(cluster string, statuses []NodeStatus) error {
	var bad []*NodeError
	for _, st := range statuses {
		var ne *NodeError
		if errors.As(st.Err, &ne) {
			bad = append(bad, ne)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &ClusterCheckError{Cluster: cluster, Nodes: bad}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
