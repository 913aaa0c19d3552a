package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/qemu"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// BlockBackuper is a driver whose disks are backed up through a
// point-in-time view instead of the mirror copy: prepared before the
// freeze, checkpointed during it (milliseconds), read after the release.
type BlockBackuper interface {
	PrepareBlockBackup(ctx context.Context) (*qemu.BlockBackup, error)
}

// Snapshot labels of a block backup, per disk (the path of the disk
// relative to the shared volume, slash-separated).
const (
	// labelCheckpoint records the bitmap generation a recovery point's
	// copy of the disk is at; the next backup is incremental only from a
	// parent holding its base generation.
	labelCheckpoint = "clusterguard.qemu.checkpoint:"
	// labelContent "raw": the snapshot holds the disk's guest-visible
	// content (not the image file), converted back into the image format
	// on restore.
	labelContent = "clusterguard.qemu.content:"
)

// blockRun is a block backup in progress within runBackup.
type blockRun struct {
	s    *Server
	wl   *workload
	b    *qemu.BlockBackup
	rels []string // per disk: its path relative to the volume
	log  *slog.Logger
}

// prepareBlockBackup starts a block backup when the driver has them; nil
// means the mirror copy of everything (said once in the log).
func (s *Server) prepareBlockBackup(ctx context.Context, wl *workload, log *slog.Logger) *blockRun {
	bb, ok := wl.driver.(BlockBackuper)
	if !ok || len(wl.cfg.Paths) == 0 || wl.cfg.QEMU == nil {
		return nil
	}
	b, err := bb.PrepareBlockBackup(ctx)
	if err != nil {
		log.Warn("block backup unavailable: copying the disk images whole while the VM is stunned", "error", err)
		return nil
	}
	r := &blockRun{s: s, wl: wl, b: b, log: log}
	for _, v := range b.Disks {
		r.rels = append(r.rels, filepath.Join(wl.cfg.Paths[0], v.Disk))
	}
	return r
}

// exclude keeps the disk images out of the mirror copy.
func (r *blockRun) exclude() []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, rel := range r.rels {
		out = append(out, filepath.Join(r.s.cfg.SharedVolume, rel))
	}
	return out
}

// checkpoint runs in the frozen section.
func (r *blockRun) checkpoint(ctx context.Context) error {
	if r == nil {
		return nil
	}
	return r.b.Checkpoint(ctx)
}

// finish tears the view down: ok rotates the bitmaps, otherwise their
// changes are merged back.
func (r *blockRun) finish(ctx context.Context, ok bool) {
	if r == nil {
		return
	}
	if err := r.b.Finish(context.WithoutCancel(ctx), ok); err != nil {
		r.log.Warn("block backup clean-up failed", "error", err)
	}
}

// backup reads the views into sparse files in the mirror and uploads them
// with the other files: incremental where the parent recovery point holds
// the disk's base checkpoint (only the dirty extents are read, widened to
// the repository's blocks, and handed over as changed ranges), otherwise
// the whole disk. A parent whose blocks the repository cannot reuse makes
// it read everything and upload again.
func (r *blockRun) backup(ctx context.Context, repo *repository.Repository, mirror string, opts repository.BackupOptions, res *api.BackupResult) (repository.Snapshot, repository.BackupStats, error) {
	if err := r.b.Open(ctx); err != nil {
		return repository.Snapshot{}, repository.BackupStats{}, err
	}
	parent, err := r.parent(ctx, repo, opts.Meta)
	if err != nil {
		return repository.Snapshot{}, repository.BackupStats{}, err
	}
	labels := map[string]string{}
	for k, v := range opts.Meta.Labels {
		labels[k] = v
	}
	opts.Meta.Labels = labels
	opts.FixedBlockSize = qemu.BlockSize
	for try := 0; ; try++ {
		full := try > 0
		opts.ChangedRanges = map[string][]repository.Range{}
		opts.RangesOnly, opts.Parent = false, repository.NoParent
		if parent != nil {
			opts.Parent = parent.ID
		}
		res.Incremental, res.ViewBytesRead, res.FullReason = true, 0, ""
		var gens []string
		for i, v := range r.b.Disks {
			key := filepath.ToSlash(r.rels[i])
			reason := v.Reason
			if reason == "" && full {
				reason = "the parent recovery point's blocks could not be reused"
			}
			if reason == "" && (parent == nil || parent.Labels[labelCheckpoint+key] != strconv.FormatInt(v.Base, 10)) {
				reason = "the latest recovery point does not hold the disk at the bitmap's checkpoint"
			}
			ranges, n, err := r.readDisk(mirror, r.rels[i], v, reason == "")
			res.ViewBytesRead += n
			if err != nil {
				return repository.Snapshot{}, repository.BackupStats{}, err
			}
			if reason != "" {
				res.Incremental = false
				res.FullReason = strings.TrimPrefix(res.FullReason+"; "+v.Disk+": "+reason, "; ")
				r.log.Info("disk read whole", "disk", v.Disk, "reason", reason)
			} else {
				opts.RangesOnly = true
			}
			opts.ChangedRanges[key] = ranges
			labels[labelContent+key] = "raw"
			if v.Format == "qcow2" {
				labels[labelCheckpoint+key] = strconv.FormatInt(r.b.Generation, 10)
				gens = append(gens, qemu.BitmapPrefix+strconv.FormatInt(r.b.Generation, 10))
			}
		}
		if len(gens) > 0 {
			res.Checkpoint = gens[0]
		}
		snap, stats, err := repo.Backup(ctx, opts)
		if errors.Is(err, repository.ErrParentBlocksUnusable) && !full {
			r.log.Warn("the parent recovery point's blocks cannot be reused: reading the disks whole", "error", err)
			continue
		}
		return snap, stats, err
	}
}

// parent is the recovery point the repository would take as parent (the
// newest of the same workload, cluster and group), named explicitly so
// the checkpoint checked is the one used.
func (r *blockRun) parent(ctx context.Context, repo *repository.Repository, m repository.SnapshotMeta) (*repository.Snapshot, error) {
	all, err := repo.Snapshots(ctx, repository.SnapshotFilter{})
	if err != nil {
		return nil, fmt.Errorf("list recovery points to find the parent: %w", err)
	}
	for _, sn := range all {
		if sn.Workload == m.Workload && sn.Cluster == m.Cluster && sn.Group == m.Group {
			return &sn, nil
		}
	}
	return nil, nil
}

// viewChunk is the size of one read from the view.
const viewChunk = 4 << 20

// readDisk writes the disk's view into a fresh sparse file of the mirror:
// only the dirty extents widened to the repository's blocks (incremental),
// or everything (all-zero pieces left as holes, which the repository
// stores as zeros). It returns the changed ranges and the bytes read.
func (r *blockRun) readDisk(mirror, rel string, v *qemu.DiskView, incremental bool) ([]repository.Range, int64, error) {
	root, err := os.OpenRoot(mirror)
	if err != nil {
		return nil, 0, fmt.Errorf("open the mirror %s: %w", mirror, err)
	}
	defer root.Close() //nolint:errcheck // a directory handle
	if err := root.MkdirAll(filepath.Dir(rel), 0o700); err != nil {
		return nil, 0, fmt.Errorf("disk %s: %w", v.Disk, err)
	}
	_ = root.Remove(rel) // a fresh file: no stale block survives
	f, err := root.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("disk %s: %w", v.Disk, err)
	}
	defer f.Close() //nolint:errcheck // closed explicitly below on success
	if err := f.Truncate(v.Size); err != nil {
		return nil, 0, fmt.Errorf("disk %s: %w", v.Disk, err)
	}
	// The recovery point keeps the image's owner and mode.
	if fi, err := os.Stat(filepath.Join(r.s.cfg.SharedVolume, rel)); err == nil {
		_ = f.Chmod(fi.Mode().Perm())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			_ = f.Chown(int(st.Uid), int(st.Gid))
		}
	}
	ranges := []repository.Range{{Offset: 0, Length: v.Size}}
	if incremental {
		ext, err := v.Dirty()
		if err != nil {
			return nil, 0, fmt.Errorf("disk %s: dirty extents: %w", v.Disk, err)
		}
		ranges = alignRanges(ext, qemu.BlockSize, v.Size)
	}
	var read int64
	ext := make([]qemu.Extent, len(ranges))
	for i, rg := range ranges {
		ext[i] = qemu.Extent{Offset: rg.Offset, Length: rg.Length}
	}
	err = v.ReadExtents(ext, func(off int64, data []byte) error {
		read += int64(len(data))
		if incremental || !allZero(data) {
			if _, err := f.WriteAt(data, off); err != nil {
				return fmt.Errorf("write into the mirror: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, read, fmt.Errorf("disk %s: read the view: %w", v.Disk, err)
	}
	if err := f.Close(); err != nil {
		return nil, read, fmt.Errorf("disk %s: %w", v.Disk, err)
	}
	return ranges, read, nil
}

// qemuImg runs qemu-img (from PATH) with a minimal environment.
func qemuImg(ctx context.Context, args ...string) *osexec.Cmd {
	cmd := osexec.CommandContext(ctx, "qemu-img", args...) //nolint:gosec // G204: fixed program; the arguments are paths in the staging area
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	cmd.Dir = "/"
	return cmd
}

var zeroChunk = make([]byte, viewChunk)

func allZero(b []byte) bool { return bytes.Equal(b, zeroChunk[:len(b)]) }

// alignRanges widens extents to whole blocks (the repository reads and
// stores whole blocks, so the sparse file must hold each touched block
// entirely) and merges those that meet.
func alignRanges(ext []qemu.Extent, block, size int64) []repository.Range {
	var out []repository.Range
	for _, e := range ext {
		lo := e.Offset / block * block
		hi := min((e.Offset+e.Length+block-1)/block*block, size)
		if k := len(out) - 1; k >= 0 && out[k].Offset+out[k].Length >= lo {
			out[k].Length = max(out[k].Length, hi-out[k].Offset)
			continue
		}
		out = append(out, repository.Range{Offset: lo, Length: hi - lo})
	}
	return out
}

// convertRestoredDisks turns the guest-visible content a block backup
// stored for a qcow2 disk back into a qcow2 image in the staging area
// (keeping the file's owner and mode), before it is swapped in. The new
// image has no dirty bitmap, so its next backup reads it whole.
func convertRestoredDisks(ctx context.Context, snap repository.Snapshot, staging string) error {
	for k, v := range snap.Labels {
		rel, ok := strings.CutPrefix(k, labelContent)
		if !ok || v != "raw" || !strings.EqualFold(filepath.Ext(rel), ".qcow2") {
			continue
		}
		rel = filepath.FromSlash(rel)
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("recovery point label %q names a path outside the restore", k)
		}
		path := filepath.Join(staging, rel)
		fi, err := os.Lstat(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // not among the restored files
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("restored disk %s is not a regular file", rel)
		}
		tmp := path + ".cg-convert"
		_ = os.Remove(tmp)
		cmd := qemuImg(ctx, "convert", "-q", "-f", "raw", "-O", "qcow2", path, tmp)
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("convert the restored disk %s back into qcow2 (qemu-img convert; install qemu-utils): %w: %s", rel, err, strings.TrimSpace(string(out)))
		}
		if err := os.Chmod(tmp, fi.Mode().Perm()); err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if err := os.Lchown(tmp, int(st.Uid), int(st.Gid)); err != nil && os.Geteuid() == 0 {
				return err
			}
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("restored disk %s: %w", rel, err)
		}
	}
	return nil
}
