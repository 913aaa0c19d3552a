package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// Consistency modes and extraction policies of a protection group.
const (
	ExtractAtBackup  = "backup"  // each workload's own files are stored (E6)
	ExtractAtRestore = "restore" // the node's whole shared-volume view is stored once; files are extracted at restore
)

var (
	Consistencies = []string{api.ConsistencyApplication, api.ConsistencyCrash}
	ExtractAts    = []string{ExtractAtBackup, ExtractAtRestore}
)

// ValidateGroup checks a protection group without contacting anything.
func ValidateGroup(g catalog.ProtectionGroup) error {
	var errs []error
	for _, f := range []struct{ field, v string }{{"name", g.Name}, {"cluster", g.Cluster}, {"repository", g.Repository}} {
		if err := ValidateName(f.field, f.v); err != nil {
			errs = append(errs, err)
		}
	}
	if len(g.Workloads) == 0 && g.Selector == nil {
		errs = append(errs, &ValidationError{Field: "workloads", Reason: "the selection is empty: list workloads, or set a selector (name_regex, driver, node), or both"})
	}
	if g.Selector != nil {
		if g.Selector.NameRegex == "" && g.Selector.Driver == "" && g.Selector.Node == "" {
			errs = append(errs, &ValidationError{Field: "selector", Reason: "an empty selector matches every workload; set name_regex = \".*\" to mean that, or set driver or node"})
		}
		if _, err := regexp.Compile(g.Selector.NameRegex); err != nil {
			errs = append(errs, &ValidationError{Field: "selector", Reason: fmt.Sprintf("name_regex %q is not a valid regular expression: %v", g.Selector.NameRegex, err)})
		}
	}
	if !slices.Contains(Consistencies, g.Consistency) {
		errs = append(errs, &ValidationError{Field: "consistency", Reason: fmt.Sprintf("%q is not a consistency mode; use %s", g.Consistency, strings.Join(Consistencies, " or "))})
	}
	if !slices.Contains(NodeOrders, g.NodeOrder) {
		errs = append(errs, &ValidationError{Field: "node_order", Reason: fmt.Sprintf("%q is not a node order; use one of %s", g.NodeOrder, strings.Join(NodeOrders, ", "))})
	}
	if g.NodeOrder == OrderCriticalFirst && len(g.CriticalWorkloads) == 0 {
		errs = append(errs, &ValidationError{Field: "critical_workloads", Reason: `node_order "critical_first" needs critical_workloads, the workloads whose nodes are backed up first`})
	}
	if g.NodeOrder != OrderCriticalFirst && len(g.CriticalWorkloads) > 0 {
		errs = append(errs, &ValidationError{Field: "critical_workloads", Reason: fmt.Sprintf("critical_workloads is only used with node_order \"critical_first\" (node_order is %q)", g.NodeOrder)})
	}
	if !slices.Contains(ExtractAts, g.ExtractAt) {
		errs = append(errs, &ValidationError{Field: "extract_at", Reason: fmt.Sprintf("%q is not an extraction policy; use %s", g.ExtractAt, strings.Join(ExtractAts, " or "))})
	}
	if g.RPO < 0 {
		errs = append(errs, &ValidationError{Field: "rpo", Reason: "must not be negative"})
	}
	return errors.Join(errs...)
}

// selectWorkloads resolves a group's selection against the digest: explicit
// workloads (reported or not) plus selector matches, minus exclusions. A
// selector matches workloads that run somewhere (any state but inactive):
// a stopped workload has nothing to quiesce and would make every run
// partial; name it explicitly to insist on it.
func selectWorkloads(g catalog.ProtectionGroup, d Digest) []string {
	set := map[string]bool{}
	for _, w := range g.Workloads {
		set[w] = true
	}
	if g.Selector != nil {
		re, _ := regexp.Compile(g.Selector.NameRegex) // validated on write
		for _, w := range d.Workloads {
			if w.State != api.StateInactive && selectorMatches(*g.Selector, re, w) {
				set[w.Name] = true
			}
		}
	}
	for _, x := range g.Exclude {
		delete(set, x)
	}
	return sortedKeys(set)
}

func selectorMatches(s catalog.Selector, re *regexp.Regexp, w DigestEntry) bool {
	if re != nil && s.NameRegex != "" && !re.MatchString(w.Name) {
		return false
	}
	if s.Driver != "" && w.Driver != s.Driver {
		return false
	}
	if s.Node != "" && !slices.Contains(w.Nodes, s.Node) {
		return false
	}
	return true
}

// ProtectedWorkload is one selected workload with its protection status.
type ProtectedWorkload struct {
	Name              string
	Node              string // active node now; "" when not active on exactly one
	State             string // digest state, or "missing" when no agent reports it
	LastBackupAt      time.Time
	LastRecoveryPoint string
	RPOMet            bool
}

// GroupStatus is what a refresh of a protection group shows (T2).
type GroupStatus struct {
	Group     catalog.ProtectionGroup
	Workloads []ProtectedWorkload // selected workloads, sorted
	// Unprotected: workloads matching the selection with no recovery point.
	Unprotected []string
	// Missing: selected workloads no agent reports.
	Missing     []string
	Unreachable []*NodeError
}

// StateMissing marks a selected workload that no agent reports.
const StateMissing = "missing"

// GroupStatus refreshes a protection group against the agents and the
// recovery-point index.
func (e *Engine) GroupStatus(ctx context.Context, name string) (GroupStatus, error) {
	g, err := e.store.GetGroup(ctx, name)
	if err != nil {
		return GroupStatus{}, err
	}
	st, err := e.ClusterStatus(ctx, g.Cluster)
	if err != nil {
		return GroupStatus{}, fmt.Errorf("protection group %q: cluster %q: %w", name, g.Cluster, err)
	}
	d := mergeDigest(st)
	byName := map[string]DigestEntry{}
	for _, w := range d.Workloads {
		byName[w.Name] = w
	}
	now := e.now()
	out := GroupStatus{Group: g, Unreachable: d.Unreachable}
	for _, w := range selectWorkloads(g, d) {
		pw := ProtectedWorkload{Name: w, State: StateMissing}
		if de, ok := byName[w]; ok {
			pw.State, pw.Node = de.State, de.Node
		} else {
			out.Missing = append(out.Missing, w)
		}
		points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Group: g.Name, Workload: w})
		if err != nil {
			return GroupStatus{}, fmt.Errorf("reading recovery points of %q: %w", w, err)
		}
		if len(points) > 0 {
			pw.LastBackupAt, pw.LastRecoveryPoint = points[0].CreatedAt, points[0].ID
		} else if pw.State != StateMissing {
			out.Unprotected = append(out.Unprotected, w)
		}
		pw.RPOMet = rpoMet(g.RPO, pw.LastBackupAt, now)
		out.Workloads = append(out.Workloads, pw)
	}
	sort.Strings(out.Unprotected)
	return out, nil
}

// rpoMet: with no RPO, any recovery point meets it; with one, the newest
// recovery point must be younger than the RPO.
func rpoMet(rpo time.Duration, last, now time.Time) bool {
	if last.IsZero() {
		return false
	}
	return rpo <= 0 || now.Sub(last) <= rpo
}

// PutGroup validates and records a protection group; its cluster and
// repository must be registered.
func (e *Engine) PutGroup(ctx context.Context, g catalog.ProtectionGroup) error {
	if err := ValidateGroup(g); err != nil {
		return err
	}
	if _, err := e.store.GetCluster(ctx, g.Cluster); err != nil {
		return fmt.Errorf("protection group %q: cluster %q: %w", g.Name, g.Cluster, err)
	}
	repo, err := e.store.GetRepository(ctx, g.Repository)
	if err != nil {
		return fmt.Errorf("protection group %q: repository %q: %w", g.Name, g.Repository, err)
	}
	if err := e.checkGroupRepository(ctx, g, repo); err != nil {
		return err
	}
	now := e.now().UTC()
	g.CreatedAt, g.UpdatedAt = now, now
	if old, err := e.store.GetGroup(ctx, g.Name); err == nil {
		g.CreatedAt = old.CreatedAt
	}
	return e.store.PutGroup(ctx, g)
}

// GetGroup returns a protection group without probing.
func (e *Engine) GetGroup(ctx context.Context, name string) (catalog.ProtectionGroup, error) {
	return e.store.GetGroup(ctx, name)
}

// DeleteGroup forgets a protection group; its recovery points stay in the
// repository and the index.
func (e *Engine) DeleteGroup(ctx context.Context, name string) error {
	return e.store.DeleteGroup(ctx, name)
}

// ReconcileStatus compares the protection status recorded at the last apply
// with a fresh one. Improvements (a new recovery point, an RPO met again, a
// workload no longer unprotected or missing) are accepted into the returned
// status, so routine backups never leave a diff; degradations (a workload
// that moved, changed state, vanished, newly appeared unprotected or
// breached its RPO) are kept as recorded and described in drift, so a plan
// shows them until an apply acknowledges them.
func ReconcileStatus(recorded, fresh GroupStatus) (accepted GroupStatus, drift []string) {
	accepted = recorded
	freshBy := map[string]ProtectedWorkload{}
	for _, w := range fresh.Workloads {
		freshBy[w.Name] = w
	}
	recordedBy := map[string]bool{}
	accepted.Workloads = nil
	for _, old := range recorded.Workloads {
		recordedBy[old.Name] = true
		now, ok := freshBy[old.Name]
		switch {
		case !ok:
			drift = append(drift, fmt.Sprintf("%s is no longer selected or reported", old.Name))
			accepted.Workloads = append(accepted.Workloads, old)
		case now.Node != old.Node || now.State != old.State:
			drift = append(drift, fmt.Sprintf("%s moved or changed state: %s on %q -> %s on %q", old.Name, old.State, old.Node, now.State, now.Node))
			accepted.Workloads = append(accepted.Workloads, old)
		case old.RPOMet && !now.RPOMet:
			drift = append(drift, fmt.Sprintf("%s breached its RPO (last backup %s)", old.Name, timeOrNever(now.LastBackupAt)))
			accepted.Workloads = append(accepted.Workloads, old)
		default:
			accepted.Workloads = append(accepted.Workloads, now)
		}
	}
	for _, w := range fresh.Workloads {
		if !recordedBy[w.Name] {
			drift = append(drift, fmt.Sprintf("%s is newly selected (%s on %q)", w.Name, w.State, w.Node))
		}
	}
	var added []string
	accepted.Unprotected, added = intersect(recorded.Unprotected, fresh.Unprotected)
	if len(added) > 0 {
		drift = append(drift, fmt.Sprintf("newly unprotected (selected, no recovery point): %s", strings.Join(added, ", ")))
	}
	accepted.Missing, added = intersect(recorded.Missing, fresh.Missing)
	if len(added) > 0 {
		drift = append(drift, fmt.Sprintf("newly missing (no agent reports them): %s", strings.Join(added, ", ")))
	}
	return accepted, drift
}

// intersect returns old ∩ now (what is still true) and now − old (new).
func intersect(old, now []string) (kept, added []string) {
	in := map[string]bool{}
	for _, x := range now {
		in[x] = true
	}
	was := map[string]bool{}
	for _, x := range old {
		was[x] = true
		if in[x] {
			kept = append(kept, x)
		}
	}
	for _, x := range now {
		if !was[x] {
			added = append(added, x)
		}
	}
	return kept, added
}

func timeOrNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
