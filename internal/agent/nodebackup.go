package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// nodeViewMirror names the node-local mirror of the whole shared volume.
const nodeViewMirror = "@node-view"

// nodeBackup stores the node's whole view of the shared volume once, with
// every listed workload frozen for the copy (E6, extract_at = "restore").
func (s *Server) nodeBackup(w http.ResponseWriter, r *http.Request) {
	var req api.NodeBackupRequest
	if err := decodeStrict(w, r, &req); err != nil {
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, "the body must be a JSON node backup request: "+err.Error())
		return
	}
	if !s.checkRepository(w, req.Repository) {
		return
	}
	if req.Consistency != api.ConsistencyApplication && req.Consistency != api.ConsistencyCrash {
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("consistency %q: use %q or %q", req.Consistency, api.ConsistencyApplication, api.ConsistencyCrash))
		return
	}
	names := slices.Clone(req.Workloads)
	slices.Sort(names)
	var wls []*workload
	for _, n := range names {
		wl, ok := s.workloads[n]
		if !ok {
			s.writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no workload %q on node %s", n, s.cfg.Node))
			return
		}
		wls = append(wls, wl)
	}
	// Locks in name order, so two node backups can never deadlock.
	for i, wl := range wls {
		if !wl.backupMu.TryLock() {
			for _, held := range wls[:i] {
				held.backupMu.Unlock()
			}
			s.writeError(w, http.StatusConflict, CodeBusy, fmt.Sprintf("a backup or restore of %s is already running on node %s", wl.cfg.Name, s.cfg.Node))
			return
		}
	}
	defer func() {
		for _, wl := range wls {
			wl.backupMu.Unlock()
		}
	}()
	if err := s.fence.Check(req.Epoch); err != nil {
		s.writeError(w, http.StatusConflict, CodeStaleEpoch, err.Error())
		return
	}
	for _, wl := range wls {
		if st := s.probe(r.Context(), wl); st.State != api.StateActive {
			s.writeError(w, http.StatusConflict, CodeNotActive, fmt.Sprintf("workload %s is %s on node %s, not active: it may have moved", wl.cfg.Name, st.State, s.cfg.Node))
			return
		}
	}
	res, err := s.runNodeBackup(r.Context(), wls, req)
	var stale *StaleEpochError
	var notHere *NotOwnedHereError
	switch {
	case err == nil:
		for _, wl := range wls {
			s.metrics.backupSucceeded(wl.cfg.Name, s.now())
		}
		s.writeJSON(w, http.StatusOK, res)
	case errors.As(err, &stale):
		s.writeError(w, http.StatusConflict, CodeStaleEpoch, err.Error())
	case errors.As(err, &notHere):
		s.writeError(w, http.StatusConflict, CodeNotActive, err.Error())
	case s.writeRepositoryError(w, err):
	default:
		s.otherFailures.Add(1)
		s.logger.Warn("node backup failed", "run", req.RunID, "error", err)
		s.writeError(w, http.StatusInternalServerError, CodeBackupFailed, err.Error())
	}
}

func (s *Server) runNodeBackup(ctx context.Context, wls []*workload, req api.NodeBackupRequest) (api.NodeBackupResult, error) {
	res := api.NodeBackupResult{Node: s.cfg.Node, Epoch: req.Epoch, StunMS: map[string]int64{}, StartedAt: s.now().UTC()}
	repo, where, closeRepo, err := s.openRepository(ctx, req.Repository, req.RepositoryID)
	if err != nil {
		return res, fmt.Errorf("node backup: %w", err)
	}
	defer closeRepo()
	res.RepositoryID = repo.ID()
	stunLimit := time.Duration(req.StunTimeoutMS) * time.Millisecond
	if stunLimit <= 0 {
		stunLimit = DefaultStunTimeout
	}
	type frozen struct {
		wl      *workload
		release func(context.Context) error
		at      time.Time
	}
	var (
		mu       sync.Mutex
		held     []frozen
		released bool
		byTimer  bool
		relErrs  []error
	)
	releaseAll := func(timer bool) {
		mu.Lock()
		defer mu.Unlock()
		if released {
			return
		}
		released, byTimer = true, timer
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		for i := len(held) - 1; i >= 0; i-- {
			f := held[i]
			if err := s.releaseOrStop(rctx, f.wl, f.release); err != nil {
				relErrs = append(relErrs, fmt.Errorf("release %s: %w", f.wl.cfg.Name, err))
			}
			res.StunMS[f.wl.cfg.Name] = s.now().Sub(f.at).Milliseconds()
			f.wl.actionMu.Unlock()
		}
	}
	timer := time.AfterFunc(stunLimit, func() { releaseAll(true) })
	defer timer.Stop()
	defer releaseAll(false)

	for _, wl := range wls {
		freeze, release := wl.driver.Quiesce, wl.driver.Thaw
		if p, ok := wl.driver.(Pauser); ok && req.Consistency == api.ConsistencyCrash && p.CanPause() {
			freeze, release = p.Pause, p.Resume
		}
		wl.actionMu.Lock()
		// Re-checked under the lock (F6): still active here, lease held.
		if err := s.checkOwnedHere(ctx, wl); err != nil {
			wl.actionMu.Unlock()
			return res, err
		}
		at := s.now()
		if err := freeze(ctx); err != nil {
			// A half-done freeze must not leave the workload frozen.
			rerr := s.releaseNow(ctx, wl, release)
			wl.actionMu.Unlock()
			return res, errors.Join(fmt.Errorf("node backup: freeze %s: %w", wl.cfg.Name, err), rerr)
		}
		mu.Lock()
		if released {
			// The stun timer fired while this one was being frozen: the
			// others are running again, so no consistent copy can be taken.
			mu.Unlock()
			rerr := s.releaseNow(ctx, wl, release)
			wl.actionMu.Unlock()
			return res, errors.Join(fmt.Errorf("node backup: the stun timeout (%s) passed while the workloads were being frozen, so they were released and no copy was taken; raise the stun timeout", stunLimit), rerr)
		}
		held = append(held, frozen{wl: wl, release: release, at: at})
		mu.Unlock()
	}
	if err := s.fence.Check(req.Epoch); err != nil {
		return res, err
	}
	// Re-checked right before the volume is read, as for a single backup.
	for _, wl := range wls {
		if err := s.owners.Verify(wl.cfg.Name); err != nil {
			return res, &NotOwnedHereError{Reason: fmt.Sprintf("node backup on node %s refused right before the copy: %s: %v; no copy was taken", s.cfg.Node, wl.cfg.Name, err)}
		}
	}
	paths, err := volumeView(s.cfg.SharedVolume)
	if err != nil {
		return res, err
	}
	mirror := filepath.Join(s.cfg.StateDir, "mirror", nodeViewMirror)
	var exclude []string
	for _, wl := range s.workloads {
		exclude = append(exclude, s.copyExclusions(wl)...)
	}
	_, copyErr := syncMirror(ctx, s.cfg.SharedVolume, paths, mirror, exclude...)
	timer.Stop()
	releaseAll(false)
	mu.Lock()
	timedOut, rerr := byTimer, errors.Join(relErrs...)
	mu.Unlock()
	switch {
	case copyErr != nil:
		return res, fmt.Errorf("node backup: point-in-time copy: %w", copyErr)
	case rerr != nil:
		return res, fmt.Errorf("node backup: %w", rerr)
	case timedOut:
		return res, fmt.Errorf("node backup: the copy took longer than the stun timeout (%s) and the workloads were released before it finished; raise the stun timeout", stunLimit)
	}
	labels := map[string]string{api.LabelWorkloads: strings.Join(req.Workloads, ",")}
	for _, wl := range wls {
		labels[api.LabelPathsPrefix+wl.cfg.Name] = strings.Join(wl.cfg.Paths, ":")
	}
	for k, v := range req.Labels {
		labels[k] = v
	}
	snap, stats, err := repo.Backup(ctx, repository.BackupOptions{
		Root: mirror, Paths: paths,
		Meta: repository.SnapshotMeta{Node: s.cfg.Node, Cluster: req.Cluster, Group: req.Group, RunID: req.RunID,
			Consistency: repository.Consistency(req.Consistency), Tags: req.Tags, Labels: labels, Time: res.StartedAt},
	})
	if err != nil {
		return res, fmt.Errorf("node backup: upload into %s: %w", where, err)
	}
	res.SnapshotID, res.TotalBytes, res.BytesAdded, res.FinishedAt = snap.ID, stats.Bytes, stats.BytesAdded, s.now().UTC()
	s.logger.Info("node view backed up", "snapshot", snap.ID, "workloads", len(wls), "bytes", stats.Bytes)
	return res, nil
}

// releaseNow releases one workload frozen outside the held set, with its
// own deadline so a cancelled request still releases it.
func (s *Server) releaseNow(ctx context.Context, wl *workload, release func(context.Context) error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.actionTimeout(wl))
	defer cancel()
	if err := s.releaseOrStop(rctx, wl, release); err != nil {
		return fmt.Errorf("release %s: %w", wl.cfg.Name, err)
	}
	return nil
}

// volumeView lists the shared volume's top-level entries except the
// agents' own metadata directory.
func volumeView(volume string) ([]string, error) {
	entries, err := os.ReadDir(volume)
	if err != nil {
		return nil, fmt.Errorf("read the shared volume: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != MetadataDir {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
