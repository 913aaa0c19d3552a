package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// errNoRecoveryPoint marks a lookup that found no fitting recovery point.
var errNoRecoveryPoint = errors.New("none in the catalog's index, and none in the repository itself")

// findRecoveryPoint resolves w's recovery point. When the catalog has none
// that fits, the repository may still hold it: a new or restored catalog
// has not indexed what earlier backups wrote. Its snapshots of the cluster
// are then indexed and the lookup tried again.
func (e *Engine) findRecoveryPoint(ctx context.Context, s RestoreSpec, w RestoreWorkload) (catalog.RecoveryPoint, error) {
	rp, err := e.resolveRecoveryPoint(ctx, s, w)
	if !errors.Is(err, errNoRecoveryPoint) {
		return rp, err
	}
	added, ierr := e.IndexRepository(ctx, s.Repository, s.Cluster)
	if ierr != nil {
		return rp, fmt.Errorf("%w; reading the repository itself for recovery points the catalog has not indexed failed: %w", err, ierr)
	}
	if added > 0 {
		e.log.InfoContext(ctx, "indexed recovery points the catalog did not know", "repository", s.Repository, "cluster", s.Cluster, "added", added)
		if rp, err = e.resolveRecoveryPoint(ctx, s, w); err == nil {
			return rp, nil
		}
	}
	if w.RecoveryPoint != "" && w.RecoveryPoint != "latest" {
		if other, ok := e.pointOfOtherWorkload(ctx, s, w); ok {
			return rp, fmt.Errorf("workload %q: recovery point %q belongs to workload %q, not to %q: name a recovery point of %q (list them with data.clusterguard_recovery_points)",
				w.Name, w.RecoveryPoint, other.Workload, w.Name, w.Name)
		}
	}
	return rp, err
}

// pointOfOtherWorkload finds the recovery point w names among the other
// workloads' points of the cluster in the repository.
func (e *Engine) pointOfOtherWorkload(ctx context.Context, s RestoreSpec, w RestoreWorkload) (catalog.RecoveryPoint, bool) {
	points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Cluster: s.Cluster, Repository: s.Repository})
	if err != nil {
		return catalog.RecoveryPoint{}, false
	}
	for _, p := range points {
		if p.Workload != w.Name && (p.ID == w.RecoveryPoint || SnapshotOf(p.ID) == w.RecoveryPoint ||
			(len(w.RecoveryPoint) >= 8 && strings.HasPrefix(p.ID, w.RecoveryPoint))) {
			return p, true
		}
	}
	return catalog.RecoveryPoint{}, false
}

// IndexRepository adds to the catalog's index every recovery point of
// cluster that the repository holds and the catalog does not know (its own
// snapshots per workload, and node views per workload they were taken
// for), and returns how many it added.
func (e *Engine) IndexRepository(ctx context.Context, repositoryName, cluster string) (int, error) {
	known := map[string]bool{}
	points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Cluster: cluster, Repository: repositoryName})
	if err != nil {
		return 0, err
	}
	for _, p := range points {
		known[p.ID] = true
	}
	repo, closeRepo, err := e.OpenRepository(ctx, repositoryName)
	if err != nil {
		return 0, err
	}
	defer closeRepo()
	snaps, err := repo.Snapshots(ctx, repository.SnapshotFilter{Cluster: cluster})
	if err != nil {
		return 0, fmt.Errorf("listing the snapshots of repository %q: %w", repositoryName, err)
	}
	added := 0
	for _, sn := range snaps {
		workloads := []string{sn.Workload}
		if sn.Workload == "" {
			workloads = strings.Split(sn.Labels[api.LabelWorkloads], ",")
		}
		for _, w := range workloads {
			id, ok := recoveryPointOf(sn, w)
			if w == "" || !ok || known[id] {
				continue
			}
			p := catalog.RecoveryPoint{ID: id, Repository: repositoryName, Cluster: cluster, Group: sn.Group, Workload: w,
				Node: sn.Node, RunID: sn.RunID, Consistency: string(sn.Consistency), Size: sn.Summary.Bytes, CreatedAt: sn.Time.UTC()}
			if err := e.store.PutRecoveryPoint(ctx, p); err != nil {
				return added, fmt.Errorf("indexing recovery point %s of %s: %w", id, w, err)
			}
			known[id] = true
			added++
		}
	}
	return added, nil
}
