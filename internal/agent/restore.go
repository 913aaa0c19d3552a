package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// Error codes of the restore endpoint.
const (
	CodeActive        = "active"
	CodeDamaged       = "damaged"
	CodeRestoreFailed = "restore_failed"
)

// restoreDir, relative to the shared volume, holds restore staging areas:
// on the same file system as the workload's data, so the final swap is a
// rename.
var restoreDir = filepath.Join(MetadataDir, "restore")

// restore writes a recovery point back (E13, M8, M9). In place, the
// workload must be inactive here; its paths are restored into a staging
// directory and swapped in with renames, so a restore that fails midway
// leaves the previous data in place. With files and a destination, only
// those files are written under the destination.
func (s *Server) restore(w http.ResponseWriter, r *http.Request) {
	wl, ok := s.lookup(w, r)
	if !ok {
		return
	}
	var req api.RestoreRequest
	if err := decodeStrict(w, r, &req); err != nil {
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, "the body must be a JSON restore request: "+err.Error())
		return
	}
	if !s.checkRepository(w, req.Repository) {
		return
	}
	if err := s.validateRestore(wl, &req); err != nil {
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	if err := s.checkRestoreDestination(wl, req.Destination); err != nil {
		s.writeError(w, http.StatusForbidden, CodeDestinationNotAllowed, err.Error())
		return
	}
	if req.InspectOnly {
		res, err := s.runRestore(r.Context(), wl, req)
		s.writeRestoreResult(w, r, wl, req, res, err)
		return
	}
	if !wl.backupMu.TryLock() {
		s.writeError(w, http.StatusConflict, CodeBusy, fmt.Sprintf("a backup or restore of %s is already running on node %s", wl.cfg.Name, s.cfg.Node))
		return
	}
	defer wl.backupMu.Unlock()
	if err := s.fence.Check(req.Epoch); err != nil {
		s.writeError(w, http.StatusConflict, CodeStaleEpoch, err.Error())
		return
	}
	inPlace := req.Destination == ""
	if inPlace {
		if st := s.probe(r.Context(), wl); st.State == api.StateActive {
			s.writeError(w, http.StatusConflict, CodeActive, fmt.Sprintf("workload %s is active on node %s: an in-place restore needs it stopped (the engine deactivates it first)", wl.cfg.Name, s.cfg.Node))
			return
		}
		if err := s.leaseElsewhere(wl); err != nil {
			s.writeError(w, http.StatusConflict, CodeActive, err.Error())
			return
		}
	}
	res, err := s.runRestore(r.Context(), wl, req)
	s.writeRestoreResult(w, r, wl, req, res, err)
}

func (s *Server) writeRestoreResult(w http.ResponseWriter, r *http.Request, wl *workload, req api.RestoreRequest, res api.RestoreResult, err error) {
	var stale *StaleEpochError
	switch {
	case err == nil:
		s.writeJSON(w, http.StatusOK, res)
	case errors.As(err, &stale):
		s.writeError(w, http.StatusConflict, CodeStaleEpoch, err.Error())
	case errors.As(err, new(*restoreConflictError)):
		s.logger.Warn("in-place restore refused before the swap", "workload", wl.cfg.Name, "operation", req.OperationID, "error", err)
		s.writeError(w, http.StatusConflict, CodeActive, err.Error())
	case s.writeRepositoryError(w, err):
	case errors.Is(err, repository.ErrDamaged) || errors.Is(err, repository.ErrSnapshotNotFound) || errors.Is(err, repository.ErrFileNotFound):
		s.writeError(w, http.StatusUnprocessableEntity, CodeDamaged, err.Error())
	default:
		if r.Context().Err() == nil {
			s.otherFailures.Add(1)
		}
		s.logger.Warn("restore failed", "workload", wl.cfg.Name, "operation", req.OperationID, "error", err)
		s.writeError(w, http.StatusInternalServerError, CodeRestoreFailed, err.Error())
	}
}

// validateRestore refuses any path that could write outside its target.
func (s *Server) validateRestore(wl *workload, req *api.RestoreRequest) error {
	if req.SnapshotID == "" {
		return errors.New("snapshot_id is required")
	}
	if req.OperationID == "" || strings.ContainsAny(req.OperationID, `/\`) || strings.Contains(req.OperationID, "..") {
		return fmt.Errorf("operation_id %q must be a plain name", req.OperationID)
	}
	switch req.Verify {
	case "", api.VerifyNone, api.VerifyMetadata, api.VerifyFull:
	default:
		return fmt.Errorf("verify %q: use none, metadata or full", req.Verify)
	}
	if req.Destination != "" && len(req.Files) == 0 {
		return errors.New("a destination needs files: name the files to restore there")
	}
	for i, f := range req.Files {
		clean := filepath.ToSlash(filepath.Clean(f))
		if _, err := ResolveWorkloadPath(s.cfg.SharedVolume, clean); err != nil {
			return fmt.Errorf("file %q: %w", f, err)
		}
		if req.Destination == "" && !underAny(clean, wl.cfg.Paths) {
			return fmt.Errorf("file %q is not under workload %s's paths (%s); restore it elsewhere with a destination", f, wl.cfg.Name, strings.Join(wl.cfg.Paths, ", "))
		}
		req.Files[i] = clean
	}
	if req.Destination != "" {
		if _, err := ResolveWorkloadPath(s.cfg.SharedVolume, req.Destination); err != nil {
			return fmt.Errorf("destination %q: %w", req.Destination, err)
		}
	}
	return nil
}

func underAny(p string, roots []string) bool {
	for _, r := range roots {
		r = filepath.ToSlash(filepath.Clean(r))
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func (s *Server) runRestore(ctx context.Context, wl *workload, req api.RestoreRequest) (api.RestoreResult, error) {
	name := wl.cfg.Name
	res := api.RestoreResult{Workload: name, Node: s.cfg.Node, Epoch: req.Epoch, StartedAt: s.now().UTC()}
	log := s.logger.With("workload", name, "operation", req.OperationID, "epoch", req.Epoch)
	repo, _, closeRepo, err := s.openRepository(ctx, req.Repository, req.RepositoryID)
	if err != nil {
		return res, fmt.Errorf("restore of %s: %w", name, err)
	}
	defer closeRepo()
	snap, err := repo.Snapshot(ctx, req.SnapshotID)
	if err != nil {
		return res, fmt.Errorf("restore of %s: recovery point %s: %w", name, req.SnapshotID, err)
	}
	res.RepositoryID = repo.ID()
	if err := s.checkRestoreSource(snap, name, req.Cluster); err != nil {
		return res, fmt.Errorf("restore of %s: %w", name, err)
	}
	res.SnapshotID = snap.ID
	include := req.Files
	if len(include) == 0 {
		include = slashPaths(wl.cfg.Paths)
	}

	// Integrity inspection before a single byte is written (M8).
	verifyStart := s.now()
	if err := inspect(ctx, repo, snap.ID, include, req.Verify, len(req.Files) > 0); err != nil {
		return res, fmt.Errorf("restore of %s: integrity inspection (%s) of recovery point %s found a problem; nothing was written: %w", name, req.Verify, snap.ShortID(), err)
	}
	res.VerifyMS = s.now().Sub(verifyStart).Milliseconds()
	if req.InspectOnly {
		res.FinishedAt = s.now().UTC()
		return res, nil
	}

	opDir := filepath.Join(s.cfg.SharedVolume, restoreDir, safeName(req.OperationID)+"-"+safeName(name))
	staging := filepath.Join(opDir, "new")
	if err := os.RemoveAll(opDir); err != nil {
		return res, err
	}
	defer os.RemoveAll(opDir)
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return res, fmt.Errorf("restore of %s: create staging area: %w", name, err)
	}
	// The epoch is checked again right before the volume is written.
	if err := s.fence.Check(req.Epoch); err != nil {
		return res, err
	}
	stats, err := repo.Restore(ctx, snap.ID, repository.RestoreOptions{Target: staging, Include: include, KeepSetuid: req.KeepSetuid})
	if err != nil {
		return res, fmt.Errorf("restore of %s: read recovery point %s; the previous data is untouched: %w", name, snap.ShortID(), err)
	}
	res.Files, res.BytesWritten = stats.Files, stats.BytesWritten
	if err := convertRestoredDisks(ctx, snap, staging); err != nil {
		return res, fmt.Errorf("restore of %s: %w; the previous data is untouched", name, err)
	}
	if err := s.fence.Check(req.Epoch); err != nil {
		return res, err
	}
	if restoreAfterDownloadHook != nil && req.Destination == "" {
		restoreAfterDownloadHook()
	}
	if req.Destination == "" {
		// The workload may have been started, here or elsewhere, during the
		// download: re-checked under its lock, held through the swap, so no
		// start runs between the check and the write.
		wl.actionMu.Lock()
		defer wl.actionMu.Unlock()
		if err := s.recheckInPlace(ctx, wl); err != nil {
			return res, err
		}
	}
	if len(req.Files) == 0 {
		err = swapIn(s.cfg.SharedVolume, staging, filepath.Join(opDir, "old"), wl.cfg.Paths)
	} else {
		err = placeFiles(s.cfg.SharedVolume, staging, req.Files, req.Destination, s.restorePrefixes(wl))
	}
	if err != nil {
		return res, fmt.Errorf("restore of %s: %w", name, err)
	}
	res.FinishedAt = s.now().UTC()
	log.Info("restored", "snapshot", snap.ID, "files", res.Files, "bytes", res.BytesWritten, "in_place", req.Destination == "")
	return res, nil
}

func slashPaths(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = filepath.ToSlash(filepath.Clean(p))
	}
	return out
}

// inspect checks the recovery point before anything is written: metadata
// (the paths exist in it) or full (every chunk of every file is read and
// authenticated). Files must exist when named explicitly.
func inspect(ctx context.Context, repo *repository.Repository, snapID string, include []string, mode string, explicit bool) error {
	if mode == "" || mode == api.VerifyNone {
		return nil
	}
	var damaged []string
	for _, p := range include {
		entries, err := repo.Files(ctx, snapID, p)
		if err != nil {
			if errors.Is(err, repository.ErrFileNotFound) && !explicit {
				continue // the workload had no data there when it was backed up
			}
			return err
		}
		if mode != api.VerifyFull {
			continue
		}
		for _, e := range entries {
			if e.Type != repository.NodeFile {
				continue
			}
			rc, _, err := repo.OpenFile(ctx, snapID, e.Path)
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				damaged = append(damaged, fmt.Sprintf("%s (%v)", e.Path, err))
			}
		}
	}
	if len(damaged) > 0 {
		return fmt.Errorf("%w: damaged files: %s", repository.ErrDamaged, strings.Join(damaged, "; "))
	}
	return nil
}

// swapIn replaces each workload path with its restored version: the
// current data is renamed aside, the restored data renamed in; a failure
// puts the current data back. Renames on one file system are atomic.
func swapIn(volume, staging, old string, paths []string) error {
	type moved struct{ from, to string }
	var done []moved
	undo := func() {
		for i := len(done) - 1; i >= 0; i-- {
			_ = os.Rename(done[i].to, done[i].from)
		}
	}
	// The paths were checked when the config was loaded; a symlink made
	// since (a parent swapped for a link into .clusterguard) must not
	// redirect the renames.
	for _, p := range paths {
		if _, err := ResolveWorkloadPath(volume, p); err != nil {
			return fmt.Errorf("workload path %s: %w; nothing was changed", p, err)
		}
	}
	for _, p := range paths {
		rel := filepath.Clean(p)
		live := filepath.Join(volume, rel)
		aside := filepath.Join(old, rel)
		restored := filepath.Join(staging, rel)
		if _, err := os.Lstat(live); err == nil {
			if err := os.MkdirAll(filepath.Dir(aside), 0o700); err != nil {
				undo()
				return err
			}
			if err := os.Rename(live, aside); err != nil {
				undo()
				return fmt.Errorf("move current %s aside: %w; nothing was changed", rel, err)
			}
			done = append(done, moved{live, aside})
		}
		if _, err := os.Lstat(restored); errors.Is(err, fs.ErrNotExist) {
			continue // the recovery point holds nothing there: the path stays absent
		}
		if err := os.MkdirAll(filepath.Dir(live), 0o755); err != nil {
			undo()
			return err
		}
		if err := os.Rename(restored, live); err != nil {
			undo()
			return fmt.Errorf("move restored %s in place: %w; the previous data was put back", rel, err)
		}
		done = append(done, moved{restored, live})
	}
	return nil
}
