package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// RecoveredMaster is the master recorded on a run rebuilt from the
// repository: which node coordinated it is not known any more.
const RecoveredMaster = "recovered from repository"

// RebuildReport says what RebuildIndex found and added.
type RebuildReport struct {
	Snapshots int // snapshots read (of the cluster, when one was named)
	Points    int // recovery points they hold
	Added     int // recovery points the catalog did not know
	Runs      int // runs recorded again (only of groups the catalog knows)
	Clusters  []string
	Groups    []string // groups seen; the catalog keeps a group's settings, the repository does not
	Workloads []string
	Skipped   []string // snapshots without a cluster or workload: not indexable
}

// RebuildIndex rebuilds the catalog's index of the recovery points in the
// registered repository repositoryName from the snapshots themselves
// (each records its cluster, group, workload(s), node, run, tags and
// consistency), for one cluster or, with cluster "", all of them. It adds
// what the catalog does not know and changes nothing it knows, so it can
// run again; the ids are those the backups indexed. Runs of groups the
// catalog knows are recorded again as finished runs whose master is
// RecoveredMaster, unless a run with that id exists.
func (e *Engine) RebuildIndex(ctx context.Context, repositoryName, cluster string) (RebuildReport, error) {
	var rep RebuildReport
	points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Cluster: cluster, Repository: repositoryName})
	if err != nil {
		return rep, fmt.Errorf("reading the catalog's recovery points of repository %q: %w", repositoryName, err)
	}
	known := make(map[string]bool, len(points))
	for _, p := range points {
		known[p.ID] = true
	}
	repo, closeRepo, err := e.OpenRepository(ctx, repositoryName)
	if err != nil {
		return rep, err
	}
	defer closeRepo()
	snaps, err := repo.Snapshots(ctx, repository.SnapshotFilter{Cluster: cluster})
	if err != nil {
		return rep, fmt.Errorf("listing the snapshots of repository %q: %w", repositoryName, err)
	}
	rep.Snapshots = len(snaps)
	clusters, groups, workloads := map[string]bool{}, map[string]bool{}, map[string]bool{}
	runs := map[string]*catalog.Run{}
	for _, sn := range snaps {
		ws := snapshotWorkloads(sn)
		if sn.Cluster == "" || len(ws) == 0 {
			rep.Skipped = append(rep.Skipped, sn.ShortID())
			continue
		}
		clusters[sn.Cluster] = true
		if sn.Group != "" {
			groups[sn.Group] = true
		}
		for _, w := range ws {
			id, ok := recoveryPointOf(sn, w)
			if !ok {
				continue
			}
			workloads[w] = true
			rep.Points++
			if sn.RunID != "" && sn.Group != "" {
				noteRun(runs, sn, w)
			}
			if known[id] {
				continue
			}
			p := catalog.RecoveryPoint{ID: id, Repository: repositoryName, Cluster: sn.Cluster, Group: sn.Group, Workload: w,
				Node: sn.Node, RunID: sn.RunID, Consistency: string(sn.Consistency), Size: sn.Summary.Bytes, CreatedAt: sn.Time.UTC()}
			if err := e.store.PutRecoveryPoint(ctx, p); err != nil {
				return rep, fmt.Errorf("indexing recovery point %s of workload %s: %w", id, w, err)
			}
			known[id] = true
			rep.Added++
		}
	}
	n, err := e.recoverRuns(ctx, runs)
	rep.Runs = n
	rep.Clusters, rep.Groups, rep.Workloads = sortedKeys(clusters), sortedKeys(groups), sortedKeys(workloads)
	return rep, err
}

// snapshotWorkloads are the workloads a snapshot holds recovery points of.
func snapshotWorkloads(sn repository.Snapshot) []string {
	if sn.Workload != "" {
		return []string{sn.Workload}
	}
	var out []string
	for _, w := range strings.Split(sn.Labels[api.LabelWorkloads], ",") {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

func noteRun(runs map[string]*catalog.Run, sn repository.Snapshot, w string) {
	r := runs[sn.RunID]
	if r == nil {
		r = &catalog.Run{ID: sn.RunID, Group: sn.Group, Cluster: sn.Cluster, Master: RecoveredMaster, Status: catalog.RunSucceeded,
			StartedAt: sn.Time.UTC(), FinishedAt: sn.Time.UTC()}
		runs[sn.RunID] = r
	}
	if t := sn.Time.UTC(); t.Before(r.StartedAt) {
		r.StartedAt = t
	} else if t.After(r.FinishedAt) {
		r.FinishedAt = t
	}
	if !slices.Contains(r.Expected, w) {
		r.Expected = append(r.Expected, w)
	}
	if sn.Node != "" && !slices.Contains(r.NodeOrder, sn.Node) {
		r.NodeOrder = append(r.NodeOrder, sn.Node)
	}
}

// recoverRuns records the runs of groups the catalog knows that it has
// no record of; a run the catalog has is left as it is.
func (e *Engine) recoverRuns(ctx context.Context, runs map[string]*catalog.Run) (int, error) {
	ids := make([]string, 0, len(runs))
	for id := range runs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	haveGroup := map[string]bool{}
	added := 0
	for _, id := range ids {
		r := runs[id]
		has, seen := haveGroup[r.Group]
		if !seen {
			g, err := e.store.GetGroup(ctx, r.Group)
			has = err == nil && g.Cluster == r.Cluster
			haveGroup[r.Group] = has
		}
		if !has {
			continue
		}
		if _, err := e.store.GetRun(ctx, id); err == nil {
			continue
		} else if !errors.Is(err, catalog.ErrNotFound) {
			return added, fmt.Errorf("reading run %s: %w", id, err)
		}
		sort.Strings(r.Expected)
		r.HeartbeatAt = r.FinishedAt
		if err := e.store.CreateRun(ctx, *r); err != nil && !errors.Is(err, catalog.ErrConflict) {
			return added, fmt.Errorf("recording run %s recovered from the repository: %w", id, err)
		}
		added++
	}
	return added, nil
}
