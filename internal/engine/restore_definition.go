package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// RecordedDefinition returns the workload definition the agent recorded
// in recovery point rp (ok false when the agent that took it recorded none).
func (e *Engine) RecordedDefinition(ctx context.Context, repositoryName string, rp catalog.RecoveryPoint) (api.WorkloadDefinition, bool, error) {
	repo, closeRepo, err := e.OpenRepository(ctx, repositoryName)
	if err != nil {
		return api.WorkloadDefinition{}, false, err
	}
	defer closeRepo()
	return recordedDefinition(ctx, repo, rp)
}

func recordedDefinition(ctx context.Context, repo *repository.Repository, rp catalog.RecoveryPoint) (api.WorkloadDefinition, bool, error) {
	sn, err := repo.Snapshot(ctx, SnapshotOf(rp.ID))
	if err != nil {
		return api.WorkloadDefinition{}, false, fmt.Errorf("reading recovery point %s: %w", rp.ID, err)
	}
	return api.DefinitionFromLabels(sn.Labels, rp.Workload)
}

// definitionNotes compares the definition recovery point rp recorded with
// the one the agent on node has now, and says what differs: data restored
// under another driver or other paths, disks or ports may not start, or
// start as something else. Nothing is said when either is unknown (an
// older agent); a repository that cannot be read is a note, not an error,
// since the restore itself reads it again and reports that properly.
func (e *Engine) definitionNotes(ctx context.Context, repositoryName string, rp catalog.RecoveryPoint, status ClusterStatus, node string) []string {
	var now *api.WorkloadDefinition
	for _, n := range status.Nodes {
		if n.Name != node {
			continue
		}
		for _, w := range n.Workloads {
			if w.Name == rp.Workload {
				now = w.Definition
			}
		}
	}
	if now == nil {
		return nil
	}
	rec, ok, err := e.RecordedDefinition(ctx, repositoryName, rp)
	if err != nil {
		return []string{fmt.Sprintf("could not compare workload %s's definition with the one recovery point %s recorded: %v", rp.Workload, rp.ID, err)}
	}
	if !ok {
		return nil
	}
	if diff := api.DefinitionDiff(rec, *now); len(diff) > 0 {
		return []string{fmt.Sprintf("workload %s's definition on node %s differs from the one recovery point %s recorded: %s; the restored data may not fit it (check the agent config, or recreate the recorded one with `engine restore --print-definition`)",
			rp.Workload, node, ShortPoint(rp.ID), strings.Join(diff, "; "))}
	}
	return nil
}

// ShortPoint shortens a recovery point id for messages.
func ShortPoint(id string) string {
	snap, w, node := strings.Cut(id, "@")
	if len(snap) > 12 {
		snap = snap[:12]
	}
	if node {
		return snap + "@" + w
	}
	return snap
}

// FindRecoveryPoint resolves a workload's recovery point the way a restore
// job does: pick is "latest" or an id (prefix), or before is set.
func (e *Engine) FindRecoveryPoint(ctx context.Context, repositoryName, cluster, workload, pick string, before time.Time) (catalog.RecoveryPoint, error) {
	if !before.IsZero() {
		pick = ""
	}
	return e.findRecoveryPoint(ctx, RestoreSpec{Cluster: cluster, Repository: repositoryName},
		RestoreWorkload{Name: workload, RecoveryPoint: pick, Before: before})
}
