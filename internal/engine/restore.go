package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// Restore targets (E11, E12).
const (
	TargetActiveNode        = "active_node"
	TargetNode              = "node"
	TargetMostFreeResources = "most_free_resources"
	TargetLowestFailureRate = "lowest_failure_rate"
	TargetFewestWorkloads   = "fewest_workloads"

	ConflictDeactivate = "deactivate"
	ConflictMigrate    = "migrate"
)

var (
	RestoreTargets   = []string{TargetActiveNode, TargetNode, TargetMostFreeResources, TargetLowestFailureRate, TargetFewestWorkloads}
	RestoreConflicts = []string{ConflictDeactivate, ConflictMigrate}
	VerifyModes      = []string{api.VerifyNone, api.VerifyMetadata, api.VerifyFull}
)

// RestoreWorkload is what is asked for one workload.
type RestoreWorkload struct {
	Name          string    `json:"name"`
	RecoveryPoint string    `json:"recovery_point"` // "latest" or an id (prefix)
	Before        time.Time `json:"before"`         // newest point strictly before, when set
	Target        string    `json:"target"`
	Node          string    `json:"node,omitempty"` // with Target "node"
	OnConflict    string    `json:"on_conflict"`
	// File-level (M9): only these files; DestinationPath "" means in place.
	Files           []string `json:"files,omitempty"`
	DestinationNode string   `json:"destination_node,omitempty"`
	DestinationPath string   `json:"destination_path,omitempty"`
}

// RestoreSpec is a whole restore job.
type RestoreSpec struct {
	Cluster       string            `json:"cluster"`
	Repository    string            `json:"repository"`
	Workloads     []RestoreWorkload `json:"workloads"`
	Colocate      bool              `json:"colocate"`
	Verify        string            `json:"verify"`
	ActivateAfter bool              `json:"activate_after"`
	Triggers      map[string]string `json:"triggers,omitempty"`
	// AssumeDown lists nodes the operator confirms are down (powered off
	// or fenced), so an unreachable one of them does not block the restore.
	// It is not part of the request's identity (RestoreKey): confirming a
	// node dead resumes the same job.
	AssumeDown []string `json:"-"`
	// KeepSetuid keeps setuid and setgid bits of restored files (dropped
	// by default).
	KeepSetuid bool `json:"keep_setuid,omitempty"`
}

// RestoreStepPlan is what will happen to one workload (T3).
type RestoreStepPlan struct {
	Workload          string    `json:"workload"`
	RecoveryPoint     string    `json:"recovery_point"`
	RecoveryPointTime time.Time `json:"recovery_point_time"`
	Node              string    `json:"node"`          // restore node (coordinator of the step)
	DeactivateOn      string    `json:"deactivate_on"` // node where a copy is stopped first
	Migrate           bool      `json:"migrate"`       // the copy moves: stopped there, started here
	Activate          bool      `json:"activate"`      // started on Node afterwards
	FileLevel         bool      `json:"file_level"`
	// Notes are warnings for whoever reads the plan, e.g. that the
	// workload's definition on the restore node differs from the one the
	// recovery point recorded.
	Notes []string `json:"notes,omitempty"`
}

// RestorePlan is the resolved job, in execution order (E15).
type RestorePlan struct {
	Steps []RestoreStepPlan `json:"steps"`
}

// ValidateRestoreSpec checks a restore job without contacting anything.
func ValidateRestoreSpec(s RestoreSpec) error {
	var errs []error
	if len(s.Workloads) == 0 {
		errs = append(errs, &ValidationError{Field: "workloads", Reason: "list at least one workload to restore"})
	}
	if !slices.Contains(VerifyModes, s.Verify) {
		errs = append(errs, &ValidationError{Field: "verify", Reason: fmt.Sprintf("%q: use none, metadata or full", s.Verify)})
	}
	for _, n := range s.AssumeDown {
		if err := ValidateName("assume_down", n); err != nil {
			errs = append(errs, err)
		}
	}
	seen := map[string]bool{}
	for _, w := range s.Workloads {
		if err := ValidateName("workloads", w.Name); err != nil {
			errs = append(errs, err)
		}
		if seen[w.Name] {
			errs = append(errs, &ValidationError{Field: "workloads", Key: w.Name, Reason: "listed twice; restore each workload once per job"})
		}
		seen[w.Name] = true
		if !slices.Contains(RestoreTargets, w.Target) {
			errs = append(errs, &ValidationError{Field: "workloads", Key: w.Name, Reason: fmt.Sprintf("target %q: use one of %s", w.Target, strings.Join(RestoreTargets, ", "))})
		}
		if (w.Target == TargetNode) != (w.Node != "") {
			errs = append(errs, &ValidationError{Field: "workloads", Key: w.Name, Reason: `target "node" and node go together: set both or neither`})
		}
		if !slices.Contains(RestoreConflicts, w.OnConflict) {
			errs = append(errs, &ValidationError{Field: "workloads", Key: w.Name, Reason: fmt.Sprintf("on_conflict %q: use deactivate or migrate", w.OnConflict)})
		}
		if w.RecoveryPoint == "" && w.Before.IsZero() {
			errs = append(errs, &ValidationError{Field: "workloads", Key: w.Name, Reason: `recovery_point is required: "latest", an id, or before = <RFC 3339 time>`})
		}
		for _, f := range w.Files {
			if err := ValidateRelativePath(f); err != nil {
				errs = append(errs, &ValidationError{Field: "workloads", Key: w.Name, Reason: "files: " + err.Error()})
			}
		}
		if w.DestinationPath != "" {
			if len(w.Files) == 0 {
				errs = append(errs, &ValidationError{Field: "workloads", Key: w.Name, Reason: "a destination needs files: name the files to restore there"})
			}
			if err := ValidateRelativePath(w.DestinationPath); err != nil {
				errs = append(errs, &ValidationError{Field: "workloads", Key: w.Name, Reason: "destination path: " + err.Error()})
			}
		}
		if w.DestinationNode != "" && w.DestinationPath == "" {
			errs = append(errs, &ValidationError{Field: "workloads", Key: w.Name, Reason: "a destination node needs a destination path (relative to the shared volume)"})
		}
	}
	return errors.Join(errs...)
}

// ValidateRelativePath refuses absolute paths and any '..' escape: every
// restore writes inside its target.
func ValidateRelativePath(p string) error {
	if p == "" {
		return errors.New("the path is empty")
	}
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) {
		return fmt.Errorf("%q is absolute; give a path relative to the shared volume, e.g. apps/web/data.db", p)
	}
	for _, part := range strings.Split(strings.ReplaceAll(p, `\`, "/"), "/") {
		if part == ".." {
			return fmt.Errorf("%q contains '..'; a restore never writes outside its target", p)
		}
	}
	if c := path.Clean(p); c == "." || c == ".clusterguard" || strings.HasPrefix(c, ".clusterguard/") {
		return fmt.Errorf("%q is not a workload path", p)
	}
	return nil
}

// RestoreKey identifies a restore request across provider processes.
func RestoreKey(s RestoreSpec) string {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// PlanRestore resolves a restore job against the catalog and the agents now:
// which recovery point, which node, what gets deactivated (T3).
func (e *Engine) PlanRestore(ctx context.Context, s RestoreSpec) (RestorePlan, error) {
	if err := ValidateRestoreSpec(s); err != nil {
		return RestorePlan{}, err
	}
	if _, err := e.store.GetRepository(ctx, s.Repository); err != nil {
		return RestorePlan{}, fmt.Errorf("repository %q: %w", s.Repository, err)
	}
	status, err := e.ClusterStatus(ctx, s.Cluster)
	if err != nil {
		return RestorePlan{}, fmt.Errorf("cluster %q: %w", s.Cluster, err)
	}
	d := mergeDigest(status)
	healthy := map[string]NodeStatus{}
	var healthyList []NodeStatus
	for _, n := range status.Nodes {
		if n.Err == nil {
			healthy[n.Name] = n
			healthyList = append(healthyList, n)
		}
	}
	// Nodes already chosen in this job count as busier for later choices.
	planned := map[string]int{}
	var plan RestorePlan
	colocated := ""
	for _, w := range s.Workloads {
		p := RestoreStepPlan{Workload: w.Name, FileLevel: len(w.Files) > 0}
		de, known, unreachable := locate(status, d, w.Name, s.AssumeDown, e.now())
		if !known {
			return RestorePlan{}, unknownWorkloadError(s.Cluster, w.Name, d)
		}
		rp, err := e.findRecoveryPoint(ctx, s, w)
		if err != nil {
			return RestorePlan{}, err
		}
		p.RecoveryPoint, p.RecoveryPointTime = rp.ID, rp.CreatedAt
		if de.State == StateConflict {
			return RestorePlan{}, fmt.Errorf("workload %q is active on several nodes (%s); stop all but one before restoring", w.Name, strings.Join(de.Nodes, ", "))
		}
		if unreachable != nil && w.DestinationPath == "" {
			// Unreachable means unknown, never inactive: it may run there.
			return RestorePlan{}, unreachable
		}
		elsewhere := p.FileLevel && w.DestinationPath != ""
		switch {
		case elsewhere:
			p.Node = w.DestinationNode
			if p.Node == "" {
				p.Node = de.Node
			}
			if p.Node == "" {
				p.Node = chooseNode(TargetMostFreeResources, healthyList, planned)
			}
		case s.Colocate && colocated != "":
			p.Node = colocated
		case w.Target == TargetNode:
			p.Node = w.Node
		case w.Target == TargetActiveNode && de.Node != "":
			p.Node = de.Node
		case w.Target == TargetActiveNode:
			// Inactive: the default policy picks the node (E11).
			p.Node = chooseNode(TargetMostFreeResources, healthyList, planned)
		default:
			p.Node = chooseNode(w.Target, healthyList, planned)
		}
		if _, ok := healthy[p.Node]; !ok {
			return RestorePlan{}, fmt.Errorf("workload %q: restore node %q is not a healthy node of cluster %q", w.Name, p.Node, s.Cluster)
		}
		if s.Colocate && colocated == "" {
			colocated = p.Node
		}
		if !elsewhere && de.Node != "" {
			// The workload must not run while its data is swapped, and never
			// on two nodes at once (E12): stop it wherever it runs first.
			p.DeactivateOn = de.Node
			p.Migrate = de.Node != p.Node && w.OnConflict == ConflictMigrate
		}
		p.Activate = !elsewhere && (s.ActivateAfter || p.Migrate)
		p.Notes = e.definitionNotes(ctx, s.Repository, rp, status, p.Node)
		planned[p.Node]++
		plan.Steps = append(plan.Steps, p)
	}
	return plan, nil
}

func (e *Engine) resolveRecoveryPoint(ctx context.Context, s RestoreSpec, w RestoreWorkload) (catalog.RecoveryPoint, error) {
	points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Cluster: s.Cluster, Workload: w.Name, Repository: s.Repository})
	if err != nil {
		return catalog.RecoveryPoint{}, err
	}
	switch {
	case !w.Before.IsZero():
		for _, p := range points {
			if p.CreatedAt.Before(w.Before) {
				return p, nil
			}
		}
		return catalog.RecoveryPoint{}, fmt.Errorf("workload %q has no recovery point before %s in repository %q: %w", w.Name, w.Before.UTC().Format(time.RFC3339), s.Repository, errNoRecoveryPoint)
	case w.RecoveryPoint == "latest":
		if len(points) == 0 {
			return catalog.RecoveryPoint{}, fmt.Errorf("workload %q has no recovery point in repository %q (%w); run a backup of it first", w.Name, s.Repository, errNoRecoveryPoint)
		}
		return points[0], nil
	default:
		for _, p := range points {
			if p.ID == w.RecoveryPoint || (len(w.RecoveryPoint) >= 8 && strings.HasPrefix(p.ID, w.RecoveryPoint)) {
				return p, nil
			}
		}
		return catalog.RecoveryPoint{}, fmt.Errorf("workload %q: recovery point %q is not in repository %q (list them with data.clusterguard_recovery_points): %w", w.Name, w.RecoveryPoint, s.Repository, errNoRecoveryPoint)
	}
}

// chooseNode applies a placement policy (E12); ties keep join order.
func chooseNode(policy string, nodes []NodeStatus, planned map[string]int) string {
	if len(nodes) == 0 {
		return ""
	}
	ns := slices.Clone(nodes)
	switch policy {
	case TargetLowestFailureRate:
		sort.SliceStable(ns, func(i, j int) bool { return failureRate(ns[i]) < failureRate(ns[j]) })
	case TargetFewestWorkloads:
		load := func(n NodeStatus) int { return n.ActiveWorkloads + planned[n.Name] }
		sort.SliceStable(ns, func(i, j int) bool { return load(ns[i]) < load(ns[j]) })
	default:
		sort.SliceStable(ns, func(i, j int) bool { return freeScore(ns[i]) > freeScore(ns[j]) })
	}
	return ns[0].Name
}
