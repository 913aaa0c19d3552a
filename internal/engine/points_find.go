package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// FindRecoveryPoints lists indexed recovery points like RecoveryPoints;
// when the catalog has none that match, it first indexes the repositories
// that may hold some (a new or restored catalog has not indexed what
// earlier backups wrote; restores do the same, see findRecoveryPoint) and
// lists again. The repositories and clusters indexed are those of f, or of
// the protection groups f selects. A repository that cannot be read does
// not fail the listing: why is returned as indexErr, to show as a warning.
func (e *Engine) FindRecoveryPoints(ctx context.Context, f catalog.RecoveryPointFilter) (points []catalog.RecoveryPoint, indexErr error, err error) {
	points, err = e.store.RecoveryPoints(ctx, f)
	if err != nil || len(points) > 0 {
		return points, nil, err
	}
	targets, err := e.indexTargets(ctx, f)
	if err != nil {
		return points, nil, err
	}
	added := 0
	var errs []error
	for _, t := range targets {
		n, ierr := e.IndexRepository(ctx, t.repository, t.cluster)
		added += n
		if ierr != nil {
			errs = append(errs, fmt.Errorf("reading repository %q for recovery points of cluster %q that the catalog has not indexed: %w", t.repository, t.cluster, ierr))
		}
	}
	if added > 0 {
		e.log.InfoContext(ctx, "indexed recovery points the catalog did not know", "added", added)
		if points, err = e.store.RecoveryPoints(ctx, f); err != nil {
			return points, errors.Join(errs...), err
		}
	}
	return points, errors.Join(errs...), nil
}

type indexTarget struct{ repository, cluster string }

// indexTargets are the (repository, cluster) pairs f may find points in:
// f's own when it names both, else those of the protection groups that
// match f's group, cluster and repository.
func (e *Engine) indexTargets(ctx context.Context, f catalog.RecoveryPointFilter) ([]indexTarget, error) {
	if f.Repository != "" && f.Cluster != "" && f.Group == "" {
		return []indexTarget{{f.Repository, f.Cluster}}, nil
	}
	var groups []catalog.ProtectionGroup
	if f.Group != "" {
		g, err := e.store.GetGroup(ctx, f.Group)
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, nil // an unknown group has no points: nothing to index
		}
		if err != nil {
			return nil, err
		}
		groups = []catalog.ProtectionGroup{g}
	} else {
		var err error
		if groups, err = e.store.ListGroups(ctx, f.Cluster); err != nil {
			return nil, err
		}
	}
	seen := map[indexTarget]bool{}
	var out []indexTarget
	for _, g := range groups {
		t := indexTarget{g.Repository, g.Cluster}
		if (f.Cluster != "" && g.Cluster != f.Cluster) || (f.Repository != "" && g.Repository != f.Repository) || seen[t] {
			continue
		}
		seen[t] = true
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].repository != out[j].repository {
			return out[i].repository < out[j].repository
		}
		return out[i].cluster < out[j].cluster
	})
	return out, nil
}
