package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/postgresql"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// OnlineBackuper is a driver that takes consistent copies while its
// workload keeps running (PostgreSQL's non-exclusive backup), so the
// workload is never frozen: the copy of its files is made consistent by
// what the driver adds to it afterwards (a backup label and the WAL).
type OnlineBackuper interface {
	// TakesOnline reports whether a copy of this consistency is online.
	TakesOnline(consistency string) bool
	// OnlineBackup calls copyFiles once to copy the workload's files into
	// the mirror (leaving out the absolute paths exclude lists), then
	// completes dest, the mirror's copy of its data directory. On error
	// the mirror holds no consistent copy.
	OnlineBackup(ctx context.Context, dest string, copyFiles func(ctx context.Context, exclude []string) error) (postgresql.OnlineResult, error)
}

// onlineBackuper returns wl's driver when it takes this request's copy online.
func onlineBackuper(wl *workload, req api.BackupRequest) (OnlineBackuper, bool) {
	ob, ok := wl.driver.(OnlineBackuper)
	return ob, ok && len(wl.cfg.Paths) == 1 && ob.TakesOnline(req.Consistency)
}

// runOnlineBackup is runBackup for a workload copied online: the same
// checks under the workload's lock, no freeze (StunMS 0), then the upload.
func (s *Server) runOnlineBackup(ctx context.Context, wl *workload, req api.BackupRequest, ob OnlineBackuper, repo *repository.Repository, where string, res api.BackupResult, log *slog.Logger) (api.BackupResult, error) {
	name := wl.cfg.Name
	res.Method = postgresql.MethodOnline
	mirror := filepath.Join(s.cfg.StateDir, "mirror", safeName(name))
	var mst MirrorStats
	ores, err := func() (postgresql.OnlineResult, error) {
		wl.actionMu.Lock() // no start/stop while the copy runs
		defer wl.actionMu.Unlock()
		if err := s.checkOwnedHere(ctx, wl); err != nil {
			return postgresql.OnlineResult{}, err
		}
		if err := s.fence.Check(req.Epoch); err != nil {
			return postgresql.OnlineResult{}, err
		}
		if err := s.owners.Verify(name); err != nil {
			return postgresql.OnlineResult{}, &NotOwnedHereError{Reason: fmt.Sprintf("backup of %s on node %s refused right before the copy: %v; no copy was taken", name, s.cfg.Node, err)}
		}
		copyStart := s.now()
		defer func() { res.CopyMS = s.now().Sub(copyStart).Milliseconds() }()
		return ob.OnlineBackup(ctx, filepath.Join(mirror, wl.cfg.Paths[0]), func(ctx context.Context, exclude []string) error {
			st, err := syncMirror(ctx, s.cfg.SharedVolume, wl.cfg.Paths, mirror, append(s.copyExclusions(wl), exclude...)...)
			mst = st
			return err
		})
	}()
	var stale *StaleEpochError
	var notHere *NotOwnedHereError
	if errors.As(err, &stale) || errors.As(err, &notHere) {
		return res, err
	}
	if err != nil {
		return res, fmt.Errorf("backup of %s: online copy (nothing was frozen; the server ended the backup with its session): %w", name, err)
	}
	res.StunMS = 0
	log.Info("online copy taken", "how", res.Method, "stun_ms", 0, "start_lsn", ores.StartLSN, "stop_lsn", ores.StopLSN,
		"wal_segments", ores.WALSegments, "files", mst.Files, "copied", mst.Copied, "bytes_copied", mst.BytesCopied)

	uploadStart := s.now()
	snap, stats, err := repo.Backup(ctx, repository.BackupOptions{
		Root:  mirror,
		Paths: wl.cfg.Paths,
		Meta: repository.SnapshotMeta{
			Workload: name, Node: s.cfg.Node, Cluster: req.Cluster, Group: req.Group, RunID: req.RunID,
			Consistency: repository.Consistency(req.Consistency), Tags: req.Tags, Labels: s.describingLabels(req.Labels, api.ExtractAtBackup, wl), Time: ores.StoppedAt.UTC(),
		},
	})
	res.UploadMS = s.now().Sub(uploadStart).Milliseconds()
	if err != nil {
		return res, fmt.Errorf("backup of %s: upload into %s: %w", name, where, err)
	}
	res.SnapshotID, res.ParentID = snap.ID, snap.Parent
	res.Files, res.BytesRead, res.BytesAdded, res.TotalBytes = stats.Files, stats.BytesRead, stats.BytesAdded, stats.Bytes
	res.FinishedAt = s.now().UTC()
	log.Info("workload backed up", "snapshot", snap.ID, "bytes", res.TotalBytes, "bytes_added", res.BytesAdded, "upload_ms", res.UploadMS)
	return res, nil
}
