package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// StateConflict marks a workload active on more than one node (E12 broken).
const StateConflict = "conflict"

// DigestStates lists the states a digest entry can have.
var DigestStates = []string{api.StateActive, api.StateInactive, api.StateFailed, api.StateUnknown, StateConflict}

// DigestFilter selects digest entries (E14). Empty fields match everything.
type DigestFilter struct {
	Node      string
	State     string
	Driver    string
	NameRegex string
	// BackupOlderThan keeps workloads whose newest recovery point is older
	// than this, or that have none (0: no filter).
	BackupOlderThan time.Duration
}

// DigestEntry is one workload of a cluster.
type DigestEntry struct {
	Name       string
	Node       string   // the node it is active on; empty unless exactly one
	Nodes      []string // every node it is active on (two or more on conflict)
	State      string
	Driver     string
	Paths      []string
	Error      string // a driver's failure message, if any
	ObservedAt time.Time
	// From the recovery-point index: the newest recovery point of the
	// workload in this cluster, if any.
	LastBackupAt      time.Time
	LastRecoveryPoint string
}

// Digest is the workload digest of a cluster.
type Digest struct {
	Cluster   string
	Workloads []DigestEntry // sorted by name
	// Unreachable lists nodes that could not be asked; their workloads are
	// reported unknown unless another node has them active.
	Unreachable []*NodeError
}

// Digest asks every agent of the cluster, in parallel, which workloads it
// hosts and in which state, and merges the answers.
func (e *Engine) Digest(ctx context.Context, cluster string, f DigestFilter) (Digest, error) {
	var re *regexp.Regexp
	if f.NameRegex != "" {
		var err error
		if re, err = regexp.Compile(f.NameRegex); err != nil {
			return Digest{}, &ValidationError{Field: "name_regex", Reason: fmt.Sprintf("%q is not a valid regular expression: %v", f.NameRegex, err)}
		}
	}
	status, err := e.ClusterStatus(ctx, cluster)
	if err != nil {
		return Digest{}, err
	}
	d := mergeDigest(status)
	for i := range d.Workloads {
		points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Cluster: cluster, Workload: d.Workloads[i].Name})
		if err != nil {
			return Digest{}, fmt.Errorf("reading recovery points of %q: %w", d.Workloads[i].Name, err)
		}
		if len(points) > 0 {
			d.Workloads[i].LastBackupAt, d.Workloads[i].LastRecoveryPoint = points[0].CreatedAt, points[0].ID
		}
	}
	now := e.now()
	d.Workloads = slices.DeleteFunc(d.Workloads, func(w DigestEntry) bool {
		if f.BackupOlderThan > 0 && !w.LastBackupAt.IsZero() && now.Sub(w.LastBackupAt) <= f.BackupOlderThan {
			return true
		}
		return !f.matches(w, re)
	})
	return d, nil
}

func (f DigestFilter) matches(w DigestEntry, re *regexp.Regexp) bool {
	if f.State != "" && w.State != f.State {
		return false
	}
	if f.Driver != "" && w.Driver != f.Driver {
		return false
	}
	if f.Node != "" && !slices.Contains(w.Nodes, f.Node) {
		return false
	}
	return re == nil || re.MatchString(w.Name)
}

// mergeDigest folds per-node workload lists into one entry per workload.
func mergeDigest(status ClusterStatus) Digest {
	d := Digest{Cluster: status.Cluster.Name}
	type acc struct {
		entry       DigestEntry
		failed      bool
		unknown     bool
		failedError string
	}
	byName := map[string]*acc{}
	anyUnreachable := false
	for _, st := range status.Nodes {
		if st.Err != nil && st.Workloads == nil {
			var ne *NodeError
			if errors.As(st.Err, &ne) {
				d.Unreachable = append(d.Unreachable, ne)
			}
			anyUnreachable = true
			continue
		}
		for _, w := range st.Workloads {
			a := byName[w.Name]
			if a == nil {
				a = &acc{entry: DigestEntry{Name: w.Name, Driver: w.Driver, Paths: w.Paths}}
				byName[w.Name] = a
			}
			if w.ObservedAt.After(a.entry.ObservedAt) {
				a.entry.ObservedAt = w.ObservedAt
			}
			switch w.State {
			case api.StateActive:
				a.entry.Nodes = append(a.entry.Nodes, st.Name)
				a.entry.Driver, a.entry.Paths = w.Driver, w.Paths
			case api.StateFailed:
				a.failed = true
				a.failedError = fmt.Sprintf("node %s: %s", st.Name, w.Error)
			case api.StateUnknown:
				a.unknown = true
				a.failedError = fmt.Sprintf("node %s: %s", st.Name, w.Error)
			}
		}
	}
	for _, a := range byName {
		e := a.entry
		sort.Strings(e.Nodes)
		switch {
		case len(e.Nodes) > 1:
			e.State = StateConflict
			e.Error = fmt.Sprintf("active on %d nodes at once (%v); a workload must be active on one node only: stop it on all but one", len(e.Nodes), e.Nodes)
		case len(e.Nodes) == 1:
			e.State, e.Node = api.StateActive, e.Nodes[0]
		case a.failed:
			e.State, e.Error = api.StateFailed, a.failedError
		case a.unknown || anyUnreachable:
			// Not active anywhere we could ask, but an unreachable node (or a
			// driver that timed out) may have it active: do not claim inactive.
			e.State, e.Error = api.StateUnknown, a.failedError
		default:
			e.State = api.StateInactive
		}
		if e.Nodes == nil {
			e.Nodes = []string{}
		}
		d.Workloads = append(d.Workloads, e)
	}
	sort.Slice(d.Workloads, func(i, j int) bool { return d.Workloads[i].Name < d.Workloads[j].Name })
	return d
}
