package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// CopyPolicy says where a protection group's recovery points are copied
// (an offsite repository, registered like any other) and how long the
// copies are kept there.
type CopyPolicy struct {
	Group string
	// Target names a registered repository other than the group's own.
	Target string
	// Retention is the copies' own retention on the target, applied after
	// each copy; empty keeps every copy (an object-locked target keeps
	// them at least until their retention passes anyway).
	Retention catalog.Retention
}

// CopyReport is what one copy run did.
type CopyReport struct {
	Group, Source, Target string
	// Points pairs each source recovery point (snapshot id) with its copy.
	Points      []repository.CopiedSnapshot
	Copied      int   // new copies made by this run
	BlobsCopied int64 // blobs sent to the target
	BytesAdded  int64
	Verified    bool
	Forgotten   int // copies the target retention removed
	Retained    int // copies the retention would remove but Object Lock keeps
	Indexed     int // copies added to the catalog's recovery-point index
}

// CopyRecoveryPoints copies every recovery point of p.Group that the
// target lacks from the group's repository to p.Target (sending only the
// chunks the target lacks, re-encrypted for its keys, verified), applies
// the copies' retention on the target, and indexes the copies in the
// catalog as recovery points of the target repository, so a restore job
// can name them when the primary repository is lost. Run again after an
// interruption, it resumes.
func (e *Engine) CopyRecoveryPoints(ctx context.Context, p CopyPolicy) (CopyReport, error) {
	rep := CopyReport{Group: p.Group, Target: p.Target}
	g, err := e.store.GetGroup(ctx, p.Group)
	if err != nil {
		return rep, err
	}
	rep.Source = g.Repository
	if p.Target == g.Repository {
		return rep, &ValidationError{Field: "copy_to.repository", Reason: fmt.Sprintf("is the group's own repository %q; copies need a second repository", p.Target)}
	}
	src, closeSrc, err := e.OpenRepository(ctx, g.Repository)
	if err != nil {
		return rep, err
	}
	defer closeSrc()
	dst, closeDst, err := e.OpenRepository(ctx, p.Target)
	if err != nil {
		return rep, fmt.Errorf("copy of group %q: target: %w", p.Group, err)
	}
	defer closeDst()
	snaps, err := src.Snapshots(ctx, repository.SnapshotFilter{Cluster: g.Cluster, Group: g.Name})
	if err != nil {
		return rep, fmt.Errorf("copy of group %q: list recovery points of %q: %w", p.Group, g.Repository, err)
	}
	// Copies the target retention already forgot must not come back: copy
	// only what is newer than the oldest copy still there, or everything
	// when there is none yet.
	oldest, err := oldestCopy(ctx, src, dst, g)
	if err != nil {
		return rep, fmt.Errorf("copy of group %q: list copies in %q: %w", p.Group, p.Target, err)
	}
	ids := make([]string, 0, len(snaps))
	for _, s := range snaps {
		if oldest.IsZero() || !s.Time.Before(oldest) {
			ids = append(ids, s.ID)
		}
	}
	res, err := repository.Copy(ctx, src, dst, ids, repository.CopyOptions{})
	if err != nil {
		return rep, fmt.Errorf("copy of group %q from %q to %q: %w", p.Group, g.Repository, p.Target, err)
	}
	rep.Points, rep.BlobsCopied, rep.BytesAdded, rep.Verified = res.Snapshots, res.BlobsCopied, res.BytesAdded, res.Verified
	for _, cs := range res.Snapshots {
		if !cs.Existing {
			rep.Copied++
		}
	}
	policy := retentionPolicy(p.Retention)
	if !policy.Empty() {
		fr, err := dst.Forget(ctx, policy, repository.SnapshotFilter{Cluster: g.Cluster, Group: g.Name}, e.now(), false)
		if err != nil {
			return rep, fmt.Errorf("copy of group %q: retention on %q: %w", p.Group, p.Target, err)
		}
		rep.Forgotten, rep.Retained = fr.Removed, len(fr.Retained)
		if err := e.dropForgottenCopies(ctx, g, p.Target, fr); err != nil {
			return rep, err
		}
		if fr.Removed > 0 {
			if _, err := dst.Prune(ctx, repository.PruneOptions{}); err != nil {
				e.log.WarnContext(ctx, "prune of the copy target failed; space is reclaimed by the next prune", "group", p.Group, "repository", p.Target, "error", err.Error())
			}
		}
	}
	if rep.Indexed, err = e.IndexRepository(ctx, p.Target, g.Cluster); err != nil {
		return rep, fmt.Errorf("copy of group %q: index the copies in %q: %w", p.Group, p.Target, err)
	}
	e.log.InfoContext(ctx, "recovery points copied", "group", p.Group, "from", g.Repository, "to", p.Target,
		"copied", rep.Copied, "blobs", rep.BlobsCopied, "forgotten", rep.Forgotten, "retained", rep.Retained)
	return rep, nil
}

// oldestCopy is the capture time of the oldest copy of g's recovery points
// from src still in dst; zero when there is none.
func oldestCopy(ctx context.Context, src, dst *repository.Repository, g catalog.ProtectionGroup) (time.Time, error) {
	snaps, err := dst.Snapshots(ctx, repository.SnapshotFilter{Cluster: g.Cluster, Group: g.Name})
	if err != nil {
		return time.Time{}, err
	}
	var oldest time.Time
	for _, s := range snaps {
		if s.Labels[repository.LabelCopySourceRepository] == src.ID() && (oldest.IsZero() || s.Time.Before(oldest)) {
			oldest = s.Time
		}
	}
	return oldest, nil
}

// CopiesOf maps recovery points of a repository (snapshot ids) to their
// copies in target, for showing where each point has copies.
func (e *Engine) CopiesOf(ctx context.Context, source, target string) (map[string]string, error) {
	src, closeSrc, err := e.OpenRepository(ctx, source)
	if err != nil {
		return nil, err
	}
	srcID := src.ID()
	closeSrc()
	dst, closeDst, err := e.OpenRepository(ctx, target)
	if err != nil {
		return nil, err
	}
	defer closeDst()
	snaps, err := dst.Snapshots(ctx, repository.SnapshotFilter{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range snaps {
		if s.Labels[repository.LabelCopySourceRepository] == srcID {
			out[s.Labels[repository.LabelCopySourceSnapshot]] = s.ID
		}
	}
	return out, nil
}

// dropForgottenCopies removes forgotten copies from the catalog's index;
// copies Object Lock retained stay indexed (they are still restorable).
func (e *Engine) dropForgottenCopies(ctx context.Context, g catalog.ProtectionGroup, repo string, fr repository.ForgetResult) error {
	forgotten := map[string]bool{}
	for _, fg := range fr.Groups {
		for _, s := range fg.Remove {
			forgotten[s.ID] = true
		}
	}
	for _, id := range fr.Retained {
		delete(forgotten, id) // still there: still restorable
	}
	if len(forgotten) == 0 {
		return nil
	}
	points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Group: g.Name, Repository: repo})
	if err != nil {
		return err
	}
	for _, pt := range points {
		if forgotten[SnapshotOf(pt.ID)] {
			if err := e.store.DeleteRecoveryPoint(ctx, pt.ID); err != nil && !errors.Is(err, catalog.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}
