package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/racy"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// copyExclusions are the files of wl its driver keeps out of copies.
func (s *Server) copyExclusions(wl *workload) []string {
	if x, ok := wl.driver.(CopyExcluder); ok {
		return x.ExcludeFromCopy()
	}
	return nil
}

// Error codes of the coordinator and backup endpoints.
const (
	CodeNotActive    = "not_active"
	CodeBusy         = "busy"
	CodeBadRequest   = "bad_request"
	CodeBackupFailed = "backup_failed"
)

// DefaultStunTimeout bounds quiesce/pause → release when a request gives none.
const DefaultStunTimeout = 2 * time.Minute

func (s *Server) claimCoordinator(w http.ResponseWriter, r *http.Request) {
	var c api.CoordinatorClaim
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&c); err != nil {
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, "the body must be a JSON coordinator claim {cluster, epoch, owner}: "+err.Error())
		return
	}
	st, err := s.fence.Claim(c)
	var stale *StaleEpochError
	switch {
	case errors.As(err, &stale):
		s.logger.Warn("coordinator claim refused", "epoch", c.Epoch, "reason", stale.Reason)
		s.writeError(w, http.StatusConflict, CodeStaleEpoch, err.Error())
	case err != nil:
		s.otherFailures.Add(1)
		s.writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
	default:
		s.logger.Info("coordinator role claimed", "cluster", c.Cluster, "epoch", c.Epoch, "owner", c.Owner)
		s.writeJSON(w, http.StatusOK, st)
	}
}

func (s *Server) coordinator(w http.ResponseWriter, r *http.Request) {
	st, err := s.fence.State()
	if err != nil {
		s.writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	s.writeJSON(w, http.StatusOK, st)
}

// backup takes a point-in-time copy of one workload and uploads it into
// the repository: check the epoch, freeze (quiesce or pause), bring the
// node-local mirror up to date, release, upload. The workload is released
// on every path, and by a timer when the stun deadline passes whatever
// happens to the request.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	wl, ok := s.lookup(w, r)
	if !ok {
		return
	}
	var req api.BackupRequest
	if err := decodeStrict(w, r, &req); err != nil {
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, "the body must be a JSON backup request: "+err.Error())
		return
	}
	if !s.checkRepository(w, req.Repository) {
		return
	}
	if req.Consistency != api.ConsistencyApplication && req.Consistency != api.ConsistencyCrash {
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("consistency %q: use %q or %q", req.Consistency, api.ConsistencyApplication, api.ConsistencyCrash))
		return
	}
	if !wl.backupMu.TryLock() {
		s.writeError(w, http.StatusConflict, CodeBusy, fmt.Sprintf("a backup of %s is already running on node %s", wl.cfg.Name, s.cfg.Node))
		return
	}
	defer wl.backupMu.Unlock()
	if err := s.fence.Check(req.Epoch); err != nil {
		s.writeError(w, http.StatusConflict, CodeStaleEpoch, err.Error())
		return
	}
	if st := s.probe(r.Context(), wl); st.State != api.StateActive {
		s.writeError(w, http.StatusConflict, CodeNotActive, fmt.Sprintf("workload %s is %s on node %s, not active: it may have moved", wl.cfg.Name, st.State, s.cfg.Node))
		return
	}
	res, err := s.runBackup(r.Context(), wl, req)
	if err != nil {
		var stale *StaleEpochError
		if errors.As(err, &stale) {
			s.writeError(w, http.StatusConflict, CodeStaleEpoch, err.Error())
			return
		}
		var notHere *NotOwnedHereError
		if errors.As(err, &notHere) {
			s.logger.Warn("backup refused", "workload", wl.cfg.Name, "run", req.RunID, "reason", err)
			s.writeError(w, http.StatusConflict, CodeNotActive, err.Error())
			return
		}
		if s.writeRepositoryError(w, err) {
			return
		}
		if r.Context().Err() == nil {
			s.otherFailures.Add(1)
		}
		s.logger.Warn("backup failed", "workload", wl.cfg.Name, "run", req.RunID, "error", err)
		s.writeError(w, http.StatusInternalServerError, CodeBackupFailed, err.Error())
		return
	}
	s.metrics.backupSucceeded(wl.cfg.Name, s.now())
	s.writeJSON(w, http.StatusOK, res)
}

func (s *Server) runBackup(ctx context.Context, wl *workload, req api.BackupRequest) (api.BackupResult, error) {
	name := wl.cfg.Name
	res := api.BackupResult{Workload: name, Node: s.cfg.Node, Epoch: req.Epoch, Consistency: req.Consistency, StartedAt: s.now().UTC()}
	log := s.logger.With("workload", name, "run", req.RunID, "epoch", req.Epoch)

	// Open the repository first: a wrong password or an unreachable bucket
	// must fail before the workload is frozen.
	repo, where, closeRepo, err := s.openRepository(ctx, req.Repository, req.RepositoryID)
	if err != nil {
		return res, fmt.Errorf("backup of %s: %w", name, err)
	}
	defer closeRepo()
	res.RepositoryID = repo.ID()
	if ob, ok := onlineBackuper(wl, req); ok { // nothing frozen: see online_backup.go
		return s.runOnlineBackup(ctx, wl, req, ob, repo, where, res, log)
	}

	freeze, release, how := wl.driver.Quiesce, wl.driver.Thaw, "quiesce"
	if req.Consistency == api.ConsistencyCrash {
		if p, ok := wl.driver.(Pauser); ok && p.CanPause() {
			freeze, release, how = p.Pause, p.Resume, "pause"
		} else {
			log.Info("crash-consistent backup without pause/resume commands: quiescing instead")
		}
	}
	stunLimit := time.Duration(req.StunTimeoutMS) * time.Millisecond
	if stunLimit <= 0 {
		stunLimit = DefaultStunTimeout
	}

	// release runs once: after the copy, on any failure, or from the timer.
	var (
		once        sync.Once
		releaseErr  error
		released    time.Time
		byTimer     bool
		frozenAt    = s.now()
		releaseLock sync.Mutex
	)
	doRelease := func(timer bool) {
		once.Do(func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.actionTimeout(wl))
			defer cancel()
			// Not resumed once the lease is gone: stopped instead (F6).
			releaseErr = s.releaseOrStop(rctx, wl, release)
			releaseLock.Lock()
			released, byTimer = s.now(), timer
			releaseLock.Unlock()
			if timer {
				log.Warn("stun deadline passed: workload released by the agent", "after", stunLimit)
			}
		})
	}
	// VM disks: a point-in-time view read after the release (blockbackup.go).
	block := s.prepareBlockBackup(ctx, wl, log)
	blockOK := false
	defer func() { block.finish(ctx, blockOK) }()
	// The disks of a VM come from QEMU's own view; the rest of its files are
	// few and small, and the disks' sparse reads are written beside them,
	// so the mirror holds them.
	var view *pointView
	removeView := func() {}
	if block != nil {
		view = s.mirrorView(wl, block.exclude())
	} else {
		var err error
		if view, removeView, err = s.prepareView(wl, req.RunID, log); err != nil { // view.go
			return res, fmt.Errorf("backup of %s: %w", name, err)
		}
	}
	defer removeView()
	res.ViewMethod, res.ViewNote = view.method, view.why
	// The frozen section: no start/stop may interleave with it, and it ends
	// with the workload released on every path.
	mst, copyErr := func() (MirrorStats, error) {
		wl.actionMu.Lock()
		defer wl.actionMu.Unlock()
		// Re-checked under the lock: the workload may have stopped, or moved,
		// since the request was accepted (F6).
		if err := s.checkOwnedHere(ctx, wl); err != nil {
			return MirrorStats{}, err
		}
		frozenAt = s.now()
		if err := freeze(ctx); err != nil {
			doRelease(false) // a half-done quiesce must not leave the workload frozen
			return MirrorStats{}, fmt.Errorf("%s: %w", how, err)
		}
		timer := time.AfterFunc(stunLimit, func() { doRelease(true) })
		defer timer.Stop()
		defer doRelease(false)
		// The epoch is checked again right before the volume is read:
		// another node may have been made coordinator since the request.
		if err := s.fence.Check(req.Epoch); err != nil {
			return MirrorStats{}, err
		}
		if err := s.owners.Verify(name); err != nil {
			return MirrorStats{}, &NotOwnedHereError{Reason: fmt.Sprintf("backup of %s on node %s refused right before the copy: %v; no copy was taken", name, s.cfg.Node, err)}
		}
		copyStart := s.now()
		st, err := view.take(ctx)
		if err == nil {
			err = block.checkpoint(ctx)
		}
		res.CopyMS = s.now().Sub(copyStart).Milliseconds()
		return st, err
	}()
	if view.method == SnapshotMirror {
		// A file rewritten in place at the same size within one timestamp
		// tick of this copy keeps its time: the next sync must copy it again.
		if err := racy.Mark(view.mirror, frozenAt.Add(-racy.Margin)); err != nil && copyErr == nil {
			copyErr = fmt.Errorf("mark recently changed files of the mirror: %w", err)
		}
	}
	releaseLock.Lock()
	if !released.IsZero() {
		res.StunMS = released.Sub(frozenAt).Milliseconds()
	}
	timedOut := byTimer
	releaseLock.Unlock()
	var stale *StaleEpochError
	var notHere *NotOwnedHereError
	if errors.As(copyErr, &stale) || errors.As(copyErr, &notHere) {
		return res, copyErr
	}
	if copyErr != nil {
		return res, fmt.Errorf("backup of %s: point-in-time copy: %w", name, copyErr)
	}
	if errors.As(releaseErr, &notHere) {
		return res, releaseErr
	}
	if releaseErr != nil {
		return res, fmt.Errorf("backup of %s: release after %s: %w", name, how, releaseErr)
	}
	if timedOut {
		return res, fmt.Errorf("backup of %s: the copy took longer than the stun timeout (%s), so the workload was released before it finished and the copy is not consistent; raise the stun timeout", name, stunLimit)
	}
	log.Info("point-in-time copy taken", "how", how, "view", view.method, "stun_ms", res.StunMS, "files", mst.Files, "copied", mst.Copied, "bytes_copied", mst.BytesCopied, "bytes_cloned", mst.BytesCloned)
	viewRoot, err := view.readRoot()
	if err != nil {
		return res, fmt.Errorf("backup of %s: %w", name, err)
	}

	uploadStart := s.now()
	opts := repository.BackupOptions{
		Root:        viewRoot,
		Paths:       wl.cfg.Paths,
		IgnoreInode: view.FreshInodes(),
		RootName:    view.Name(),
		Meta: repository.SnapshotMeta{
			Workload: name, Node: s.cfg.Node, Cluster: req.Cluster, Group: req.Group, RunID: req.RunID,
			Consistency: repository.Consistency(req.Consistency), Tags: req.Tags, Labels: s.describingLabels(req.Labels, api.ExtractAtBackup, wl), Time: frozenAt.UTC(),
		},
	}
	var snap repository.Snapshot
	var stats repository.BackupStats
	if block != nil {
		snap, stats, err = block.backup(ctx, repo, viewRoot, opts, &res)
		blockOK = err == nil
	} else {
		snap, stats, err = repo.Backup(ctx, opts)
	}
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
