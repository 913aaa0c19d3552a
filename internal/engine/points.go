package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// RecoveryPoints lists indexed recovery points, newest first.
func (e *Engine) RecoveryPoints(ctx context.Context, f catalog.RecoveryPointFilter) ([]catalog.RecoveryPoint, error) {
	return e.store.RecoveryPoints(ctx, f)
}

// FileVersionQuery selects the versions of one file (M9).
type FileVersionQuery struct {
	Workload string
	Path     string // as stored: relative to the shared volume
	Cluster  string
	Group    string
}

// FileVersion is one recovery point's copy of a file.
type FileVersion struct {
	RecoveryPoint string
	CreatedAt     time.Time
	Size          int64
	Mode          string
	ModifiedAt    time.Time
	ContentID     string // equal ids mean equal bytes
	Unchanged     bool   // same content as the next older version
}

// FileVersions lists every recovery point of repositoryName holding the
// file, newest first, marking versions whose content did not change.
func (e *Engine) FileVersions(ctx context.Context, repositoryName string, q FileVersionQuery) ([]FileVersion, error) {
	if err := ValidateRelativePath(q.Path); err != nil {
		return nil, &ValidationError{Field: "path", Reason: err.Error()}
	}
	repo, closeRepo, err := e.OpenRepository(ctx, repositoryName)
	if err != nil {
		return nil, err
	}
	defer closeRepo()
	// The workload's own snapshots and the node views (extract_at =
	// "restore") taken for it: a node view has no workload of its own but
	// lists the workloads it was taken for. Only their trees are read.
	snaps, err := repo.Snapshots(ctx, repository.SnapshotFilter{Cluster: q.Cluster, Group: q.Group})
	if err != nil {
		return nil, fmt.Errorf("versions of %s: %w", q.Path, err)
	}
	snaps = slices.DeleteFunc(snaps, func(s repository.Snapshot) bool {
		_, ok := recoveryPointOf(s, q.Workload)
		return !ok || !inWorkloadPaths(s, q.Workload, q.Path)
	})
	versions, err := repo.FileVersionsIn(ctx, q.Path, snaps)
	if err != nil {
		return nil, fmt.Errorf("versions of %s: %w", q.Path, err)
	}
	out := make([]FileVersion, 0, len(versions))
	for _, v := range versions {
		point, _ := recoveryPointOf(v.Snapshot, q.Workload)
		id, err := repo.FileContentID(ctx, v.Snapshot.ID, q.Path)
		if err != nil {
			return nil, err
		}
		out = append(out, FileVersion{RecoveryPoint: point, CreatedAt: v.Snapshot.Time, Size: v.File.Size,
			Mode: v.File.Mode.String(), ModifiedAt: v.File.ModTime, ContentID: id})
	}
	for i := 0; i+1 < len(out); i++ {
		out[i].Unchanged = out[i].ContentID == out[i+1].ContentID
	}
	return out, nil
}

// inWorkloadPaths reports whether p is among the workload's files in s: a
// node view holds the whole shared volume, and its label says which paths
// are the workload's (views without that label are trusted whole).
func inWorkloadPaths(s repository.Snapshot, workload, p string) bool {
	paths, ok := s.Labels[api.LabelPathsPrefix+workload]
	if s.Workload != "" || !ok {
		return true
	}
	clean := filepath.Clean(p)
	for _, dir := range strings.Split(paths, ":") {
		if clean == dir || strings.HasPrefix(clean, dir+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// recoveryPointOf returns workload's recovery point id in snapshot s: the
// snapshot id for the workload's own snapshot, "<snapshot>@<workload>" for a
// node view taken for it; false when s does not protect workload.
func recoveryPointOf(s repository.Snapshot, workload string) (string, bool) {
	if s.Workload != "" {
		return s.ID, s.Workload == workload
	}
	if slices.Contains(strings.Split(s.Labels[api.LabelWorkloads], ","), workload) {
		return s.ID + "@" + workload, true
	}
	return "", false
}
