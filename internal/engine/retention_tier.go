package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// NewRunID returns a fresh run id in the engine's format, so a caller (the
// engine daemon) can record it before RunBackup starts (RunOptions.RunID).
func NewRunID(now time.Time) string { return newRunID(now) }

// ApplyScheduleRetention applies a retention tier: among the group's
// recovery points that carry every one of tags (a schedule's own tags), it
// forgets those r does not keep and drops them from the index. It does not
// prune: forgetting is cheap and runs after every scheduled run, while the
// caller prunes each repository on its own cadence (PruneRepository). A
// zero r keeps everything; empty tags are refused, because the tier would
// then cover points other schedules or manual runs made.
func (e *Engine) ApplyScheduleRetention(ctx context.Context, group string, tags []string, r catalog.Retention) (removed int, err error) {
	policy := retentionPolicy(r)
	if policy.Empty() {
		return 0, nil
	}
	if len(tags) == 0 {
		return 0, fmt.Errorf("retention tier of group %q: no tags select its recovery points; give the schedule tags", group)
	}
	g, err := e.store.GetGroup(ctx, group)
	if err != nil {
		return 0, err
	}
	repo, closeRepo, err := e.OpenRepository(ctx, g.Repository)
	if err != nil {
		return 0, err
	}
	defer closeRepo()
	res, err := repo.Forget(ctx, policy, repository.SnapshotFilter{Cluster: g.Cluster, Group: g.Name, Tags: tags}, e.now(), false)
	if err != nil {
		return 0, fmt.Errorf("applying retention tier %v of group %q: %w", tags, group, err)
	}
	if err := e.dropForgotten(ctx, g, res); err != nil {
		return res.Removed, err
	}
	return res.Removed, nil
}

// PruneRepository frees the space of forgotten recovery points in the
// named repository.
func (e *Engine) PruneRepository(ctx context.Context, name string) (repository.PruneStats, error) {
	repo, closeRepo, err := e.OpenRepository(ctx, name)
	if err != nil {
		return repository.PruneStats{}, err
	}
	defer closeRepo()
	st, err := repo.Prune(ctx, repository.PruneOptions{})
	if err != nil {
		return st, fmt.Errorf("pruning repository %q: %w", name, err)
	}
	return st, nil
}

func retentionPolicy(r catalog.Retention) repository.RetentionPolicy {
	return repository.RetentionPolicy{
		Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily,
		Weekly: r.KeepWeekly, Monthly: r.KeepMonthly, Yearly: r.KeepYearly,
		Within: r.KeepWithin,
	}
}

// dropForgotten removes the index entries of the snapshots res forgot.
func (e *Engine) dropForgotten(ctx context.Context, g catalog.ProtectionGroup, res repository.ForgetResult) error {
	forgotten := map[string]bool{}
	for _, fg := range res.Groups {
		for _, s := range fg.Remove {
			forgotten[s.ID] = true
		}
	}
	if len(forgotten) == 0 {
		return nil
	}
	// Node views are indexed once per workload ("<snapshot>@<workload>").
	points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Group: g.Name, Repository: g.Repository})
	if err != nil {
		return err
	}
	for _, p := range points {
		if forgotten[SnapshotOf(p.ID)] {
			if err := e.store.DeleteRecoveryPoint(ctx, p.ID); err != nil && !errors.Is(err, catalog.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// SnapshotsOfRun lists the workloads of group that have a recovery point
// made by run in the repository itself, whether or not the catalog recorded
// the step: a run whose engine died may have finished a workload's backup
// on the agent without anyone indexing it.
func (e *Engine) SnapshotsOfRun(ctx context.Context, group, runID string) (map[string]string, error) {
	g, err := e.store.GetGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	repo, closeRepo, err := e.OpenRepository(ctx, g.Repository)
	if err != nil {
		return nil, err
	}
	defer closeRepo()
	snaps, err := repo.Snapshots(ctx, repository.SnapshotFilter{Cluster: g.Cluster, Group: g.Name, RunID: runID})
	if err != nil {
		return nil, fmt.Errorf("listing recovery points of run %s in repository %q: %w", runID, g.Repository, err)
	}
	out := map[string]string{}
	for _, s := range snaps {
		out[s.Workload] = s.ID
	}
	return out, nil
}
