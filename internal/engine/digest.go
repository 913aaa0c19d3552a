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
	// RestoreOlderThan keeps workloads last restored longer ago than this,
	// or never (0: no filter).
	RestoreOlderThan time.Duration
	// MinBackupFailureRate keeps workloads whose backup failure rate is at
	// least this (0: no filter); workloads never attempted have no rate.
	MinBackupFailureRate float64
}

// HistoryRuns is how many recent runs of each protection group the backup
// failure rate counts.
const HistoryRuns = 20

// historyRestores is how many recent restore operations of a cluster are
// searched for each workload's last restore.
const historyRestores = 200

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
	// From the catalog's restore operations: when a restore of the workload
	// (or of some of its files) last completed.
	LastRestoreAt time.Time
	// From the last HistoryRuns runs of every group expecting the workload:
	// how many tried to back it up, and in how many it was not captured.
	BackupAttempts, BackupFailures int
}

// BackupFailureRate is BackupFailures / BackupAttempts, 0 with no attempts.
func (w DigestEntry) BackupFailureRate() float64 {
	if w.BackupAttempts == 0 {
		return 0
	}
	return float64(w.BackupFailures) / float64(w.BackupAttempts)
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
	if err := noNodeAnswered(status); err != nil {
		return Digest{}, err
	}
	d := mergeDigest(status)
	h, err := e.history(ctx, cluster)
	if err != nil {
		return Digest{}, err
	}
	for i := range d.Workloads {
		w := &d.Workloads[i]
		points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Cluster: cluster, Workload: w.Name})
		if err != nil {
			return Digest{}, fmt.Errorf("reading recovery points of %q: %w", w.Name, err)
		}
		if len(points) > 0 {
			w.LastBackupAt, w.LastRecoveryPoint = points[0].CreatedAt, points[0].ID
		}
		w.LastRestoreAt = h.lastRestore[w.Name]
		w.BackupAttempts, w.BackupFailures = h.attempts[w.Name], h.failures[w.Name]
	}
	now := e.now()
	d.Workloads = slices.DeleteFunc(d.Workloads, func(w DigestEntry) bool {
		return !f.matches(w, re) || !f.matchesHistory(w, now)
	})
	return d, nil
}

// matchesHistory applies the filters on backup and restore history.
func (f DigestFilter) matchesHistory(w DigestEntry, now time.Time) bool {
	if f.BackupOlderThan > 0 && !w.LastBackupAt.IsZero() && now.Sub(w.LastBackupAt) <= f.BackupOlderThan {
		return false
	}
	if f.RestoreOlderThan > 0 && !w.LastRestoreAt.IsZero() && now.Sub(w.LastRestoreAt) <= f.RestoreOlderThan {
		return false
	}
	if f.MinBackupFailureRate > 0 && (w.BackupAttempts == 0 || w.BackupFailureRate() < f.MinBackupFailureRate) {
		return false
	}
	return true
}

// workloadHistory is what the catalog remembers of a cluster's workloads.
type workloadHistory struct {
	lastRestore        map[string]time.Time
	attempts, failures map[string]int
}

// history reads the recent runs of every group of cluster and its recent
// restore operations. A run counts as a failure for each workload it
// expected but did not capture; runs still going are not counted.
func (e *Engine) history(ctx context.Context, cluster string) (workloadHistory, error) {
	h := workloadHistory{lastRestore: map[string]time.Time{}, attempts: map[string]int{}, failures: map[string]int{}}
	groups, err := e.store.ListGroups(ctx, cluster)
	if err != nil {
		return h, fmt.Errorf("reading protection groups of %q: %w", cluster, err)
	}
	for _, g := range groups {
		runs, err := e.store.ListRuns(ctx, g.Name, HistoryRuns)
		if err != nil {
			return h, fmt.Errorf("reading runs of group %q: %w", g.Name, err)
		}
		for _, run := range runs {
			if run.Status == catalog.RunRunning {
				continue
			}
			steps, err := e.store.Steps(ctx, run.ID)
			if err != nil {
				return h, fmt.Errorf("reading steps of run %q: %w", run.ID, err)
			}
			captured := map[string]bool{}
			for _, st := range steps {
				if st.Outcome == catalog.StepSucceeded {
					captured[st.Workload] = true
				}
			}
			for _, w := range run.Expected {
				h.attempts[w]++
				if !captured[w] {
					h.failures[w]++
				}
			}
		}
	}
	ops, err := e.store.ListRestores(ctx, cluster, historyRestores)
	if err != nil {
		return h, fmt.Errorf("reading restore operations of %q: %w", cluster, err)
	}
	for _, op := range ops {
		steps, err := e.store.RestoreSteps(ctx, op.ID)
		if err != nil {
			return h, fmt.Errorf("reading steps of restore %q: %w", op.ID, err)
		}
		for _, st := range steps {
			if st.Outcome == catalog.StepSucceeded && st.FinishedAt.After(h.lastRestore[st.Workload]) {
				h.lastRestore[st.Workload] = st.FinishedAt
			}
		}
	}
	return h, nil
}

// ActiveNodes asks every agent of the cluster where its workloads are
// active: workload name -> node, "" when inactive, unknown or in conflict.
// It is the digest without the catalog's history, for callers that only
// need locations.
func (e *Engine) ActiveNodes(ctx context.Context, cluster string) (map[string]string, error) {
	status, err := e.ClusterStatus(ctx, cluster)
	if err != nil {
		return nil, err
	}
	where := map[string]string{}
	for _, w := range mergeDigest(status).Workloads {
		where[w.Name] = w.Node
	}
	return where, nil
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
