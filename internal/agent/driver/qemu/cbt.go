package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BitmapPrefix names the dirty bitmaps the driver keeps in qcow2 images:
// BitmapPrefix+N tracks the guest's writes since checkpoint N (a number
// that grows with time: the checkpoint's Unix time in nanoseconds).
const BitmapPrefix = "clusterguard-"

// BlockBackup is one backup of the VM's disks through a point-in-time view
// (see doc.go: block backups): Prepare before the VM is stunned,
// Checkpoint while it is, Open after it runs again, then read each
// DiskView, and Finish.
type BlockBackup struct {
	d          *Driver
	Disks      []*DiskView
	Generation int64 // the checkpoint this backup takes (its bitmap generation)
	sock       string
	listener   *os.File
	exported   bool
	jobs       bool
	finished   bool
}

// DiskView is one disk's frozen view.
type DiskView struct {
	Disk   string // as configured (relative to the workload directory)
	Format string // qcow2 or raw
	Size   int64  // virtual size in bytes
	// Base is the checkpoint whose bitmap lists the changes since it; 0
	// when the disk has no usable bitmap (first backup, raw image, bitmap
	// lost, inconsistent after a crash, or disabled).
	Base int64
	// Reason says why Base is 0.
	Reason string
	stale  []string // older bitmaps of the driver's, removed after a success
	node   string
	fleece string // node name of the copy-before-write target
	file   string // its temporary image
	nbd    *nbdClient
}

// Dirty returns the extents changed between Base and the checkpoint
// (Base must be set, and Open done).
func (v *DiskView) Dirty() ([]Extent, error) {
	if v.nbd == nil || v.Base == 0 {
		return nil, fmt.Errorf("disk %s: no dirty bitmap to read", v.Disk)
	}
	return v.nbd.Dirty()
}

// ReadAt reads the disk as it was at the checkpoint.
func (v *DiskView) ReadAt(p []byte, off int64) (int, error) {
	if v.nbd == nil {
		return 0, fmt.Errorf("disk %s: view not open", v.Disk)
	}
	return v.nbd.ReadAt(p, off)
}

// b0 is a BlockBackup for dialling only.
func b0(d *Driver) *BlockBackup { return &BlockBackup{d: d} }

// dial opens a QMP session for one step: QEMU's QMP socket serves one
// client at a time, and Pause and Resume need it between the steps.
func (b *BlockBackup) dial(ctx context.Context) (*qmp, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.d.cfg.Timeout)
	defer cancel()
	q, err := dialQMP(ctx, b.d.qmpPath())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.d.cfg.Workload, err)
	}
	_ = q.conn.SetDeadline(time.Now().Add(b.d.cfg.Timeout))
	return q, nil
}

// BlockSize is the block VM disks are read and stored in: QEMU's dirty
// bitmap granularity for the default qcow2 cluster size (64 KiB), so a
// changed cluster costs one block, not the repository's default 256 KiB.
const BlockSize = 64 << 10

func bitmapName(gen int64) string { return BitmapPrefix + strconv.FormatInt(gen, 10) }

type bitmapInfo struct {
	Name         string `json:"name"`
	Recording    bool   `json:"recording"`
	Busy         bool   `json:"busy"`
	Persistent   bool   `json:"persistent"`
	Inconsistent bool   `json:"inconsistent"`
}

type nodeInfo struct {
	NodeName string `json:"node-name"`
	Drv      string `json:"drv"`
	Image    struct {
		VirtualSize int64 `json:"virtual-size"`
	} `json:"image"`
	DirtyBitmaps []bitmapInfo `json:"dirty-bitmaps"`
}

// PrepareBlockBackup sets up what does not need the VM stunned: one
// temporary copy-before-write target per disk (an empty qcow2 image in
// the state directory whose backing is the disk), handed to QEMU as a
// descriptor, and QEMU's NBD server on a socket the agent listens on. It
// picks each disk's base bitmap. Finish undoes it all.
func (d *Driver) PrepareBlockBackup(ctx context.Context) (_ *BlockBackup, err error) {
	pid, err := d.recordedPID()
	if err != nil {
		return nil, err
	}
	if pid == 0 || !d.isOurVM(pid) {
		return nil, fmt.Errorf("%s: the VM is not running on this node", d.cfg.Workload)
	}
	q, err := b0(d).dial(ctx)
	if err != nil {
		return nil, err
	}
	b := &BlockBackup{d: d, Generation: time.Now().UnixNano(), sock: filepath.Join(d.cfg.StateDir, "nbd.sock")}
	defer func() {
		_ = q.Close() // before Finish: QMP serves one session at a time
		if err != nil {
			_ = b.Finish(context.WithoutCancel(ctx), false)
		}
	}()
	raw, err := q.execute("query-named-block-nodes", map[string]any{"flat": true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.cfg.Workload, err)
	}
	var nodes []nodeInfo
	if err := json.Unmarshal(raw, &nodes); err != nil {
		return nil, fmt.Errorf("%s: QMP query-named-block-nodes: %w", d.cfg.Workload, err)
	}
	// A view left by an agent that died mid-backup is cleaned up first.
	b.cleanupStale(q, nodes)
	for i, disk := range d.cfg.Disks {
		v := &DiskView{Disk: disk, node: fmt.Sprintf("disk%d", i), fleece: fmt.Sprintf("cg-fleece%d", i)}
		v.file = filepath.Join(d.cfg.StateDir, v.fleece+".qcow2")
		k := slices.IndexFunc(nodes, func(n nodeInfo) bool { return n.NodeName == v.node })
		if k < 0 {
			return nil, fmt.Errorf("%s: disk %s: QEMU has no block node %s; restart the VM with this agent", d.cfg.Workload, disk, v.node)
		}
		v.Format, v.Size = nodes[k].Drv, nodes[k].Image.VirtualSize
		v.Base, v.Reason = pickBase(v.Format, nodes[k].DirtyBitmaps)
		for _, bm := range nodes[k].DirtyBitmaps {
			if strings.HasPrefix(bm.Name, BitmapPrefix) && bm.Name != bitmapName(v.Base) {
				v.stale = append(v.stale, bm.Name)
			}
		}
		b.Disks = append(b.Disks, v)
		if err := b.addFleece(q, v); err != nil {
			return nil, fmt.Errorf("%s: disk %s: %w", d.cfg.Workload, disk, err)
		}
	}
	if err := b.startNBD(q); err != nil {
		return nil, fmt.Errorf("%s: %w", d.cfg.Workload, err)
	}
	return b, nil
}

// pickBase chooses the bitmap of the newest checkpoint, if it can be
// trusted: persistent, recording, consistent, not in use.
func pickBase(format string, bitmaps []bitmapInfo) (int64, string) {
	if format != "qcow2" {
		return 0, format + " images hold no persistent dirty bitmaps: every backup reads the whole disk"
	}
	var best *bitmapInfo
	var gen int64
	for i, bm := range bitmaps {
		n, ok := strings.CutPrefix(bm.Name, BitmapPrefix)
		g, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil || g <= 0 {
			continue
		}
		if g > gen {
			best, gen = &bitmaps[i], g
		}
	}
	switch {
	case best == nil:
		return 0, "no dirty bitmap in the image (first backup, or the image was replaced or its bitmap removed)"
	case best.Inconsistent:
		return 0, "the dirty bitmap is marked inconsistent (QEMU did not close the image cleanly)"
	case !best.Recording:
		return 0, "the dirty bitmap is disabled"
	case best.Busy:
		return 0, "the dirty bitmap is in use by another operation"
	case !best.Persistent:
		return 0, "the dirty bitmap is not persistent"
	}
	return gen, ""
}

// cleanupStale removes nodes and bitmaps of this driver that no backup
// uses (an agent died mid-backup): fleece nodes, and bitmaps older than
// the newest (which the newest one's tracking supersedes only if the
// backup succeeded; a full read follows anyway when the recovery point's
// checkpoint does not match).
func (b *BlockBackup) cleanupStale(q *qmp, nodes []nodeInfo) {
	// A server left running (or none): nbd-server-start needs none.
	defer func() { _, _ = q.execute("nbd-server-stop", nil) }()
	if !slices.ContainsFunc(nodes, func(n nodeInfo) bool { return strings.HasPrefix(n.NodeName, "cg-fleece") }) {
		return
	}
	for _, n := range nodes {
		if strings.HasPrefix(n.NodeName, "cg-fleece") {
			_, _ = q.execute("block-export-del", map[string]any{"id": n.NodeName, "mode": "hard"})
		}
	}
	b.waitExportsGone(q)
	_, _ = q.execute("nbd-server-stop", nil)
	for i := range b.d.cfg.Disks {
		_, _ = q.execute("block-job-cancel", map[string]any{"device": fmt.Sprintf("cg-job%d", i), "force": true})
	}
	b.waitJobsGone(q)
	for _, n := range nodes {
		if strings.HasPrefix(n.NodeName, "cg-fleece") {
			_, _ = q.execute("blockdev-del", map[string]any{"node-name": n.NodeName})
		}
	}
}

func (b *BlockBackup) addFleece(q *qmp, v *DiskView) error {
	_ = os.Remove(v.file)
	cmd := osexec.Command(b.d.qemuImg, "create", "-q", "-f", "qcow2", v.file, strconv.FormatInt(v.Size, 10))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("create the copy-before-write image %s: %w: %s", v.file, err, strings.TrimSpace(string(out)))
	}
	f, err := os.OpenFile(v.file, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open the copy-before-write image: %w", err)
	}
	defer f.Close()
	raw, err := q.executeFD("add-fd", nil, f)
	if err != nil {
		return err
	}
	var fd struct {
		FdsetID int `json:"fdset-id"`
	}
	if err := json.Unmarshal(raw, &fd); err != nil {
		return fmt.Errorf("QMP add-fd: %w", err)
	}
	_, err = q.execute("blockdev-add", map[string]any{
		"driver": "qcow2", "node-name": v.fleece, "backing": v.node, "discard": "unmap",
		"file": map[string]any{"driver": "file", "filename": fmt.Sprintf("/dev/fdset/%d", fd.FdsetID)},
	})
	// QEMU holds its own duplicate now; the set goes when the node does.
	_, _ = q.execute("remove-fd", map[string]any{"fdset-id": fd.FdsetID})
	return err
}

// startNBD listens on a socket in the agent's private state directory and
// hands QEMU the listening descriptor: QEMU's user needs no access there.
func (b *BlockBackup) startNBD(q *qmp) error {
	_ = os.Remove(b.sock)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: b.sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("NBD socket: %w", err)
	}
	l.SetUnlinkOnClose(false)
	f, err := l.File()
	_ = l.Close()
	if err != nil {
		return fmt.Errorf("NBD socket: %w", err)
	}
	b.listener = f
	if _, err := q.executeFD("getfd", map[string]any{"fdname": "cg-nbd"}, f); err != nil {
		return err
	}
	_, err = q.execute("nbd-server-start", map[string]any{"addr": map[string]any{"type": "fd", "data": map[string]any{"str": "cg-nbd"}}})
	return err
}

// Checkpoint is the only step that needs the VM stunned: one QMP
// transaction that, for every disk at once, starts the copy-before-write
// view (blockdev-backup sync=none into the fleece node), freezes the base
// bitmap (disable) and starts the new generation's persistent bitmap.
func (b *BlockBackup) Checkpoint(ctx context.Context) error {
	var actions []map[string]any
	for i, v := range b.Disks {
		if v.Base != 0 {
			actions = append(actions, map[string]any{"type": "block-dirty-bitmap-disable", "data": map[string]any{"node": v.node, "name": bitmapName(v.Base)}})
		}
		if v.Format == "qcow2" {
			actions = append(actions, map[string]any{"type": "block-dirty-bitmap-add", "data": map[string]any{"node": v.node, "name": bitmapName(b.Generation), "persistent": true}})
		}
		actions = append(actions, map[string]any{"type": "blockdev-backup", "data": map[string]any{
			"job-id": fmt.Sprintf("cg-job%d", i), "device": v.node, "target": v.fleece, "sync": "none", "auto-dismiss": true,
		}})
	}
	q, err := b.dial(ctx)
	if err != nil {
		return err
	}
	defer q.Close() //nolint:errcheck // the transaction is answered before it closes
	if _, err := q.execute("transaction", map[string]any{"actions": actions}); err != nil {
		return fmt.Errorf("%s: checkpoint: %w", b.d.cfg.Workload, err)
	}
	b.jobs = true
	return nil
}

// Open exports every view (with its base bitmap) and connects to it.
func (b *BlockBackup) Open(ctx context.Context) error {
	q, err := b.dial(ctx)
	if err != nil {
		return err
	}
	defer q.Close() //nolint:errcheck // commands are answered before it closes
	for _, v := range b.Disks {
		args := map[string]any{"type": "nbd", "id": v.fleece, "node-name": v.fleece, "name": v.fleece, "writable": false}
		if v.Base != 0 {
			args["bitmaps"] = []string{bitmapName(v.Base)}
		}
		if _, err := q.execute("block-export-add", args); err != nil {
			return fmt.Errorf("%s: disk %s: %w", b.d.cfg.Workload, v.Disk, err)
		}
		b.exported = true
		var dl net.Dialer
		conn, err := dl.DialContext(ctx, "unix", b.sock)
		if err != nil {
			return fmt.Errorf("%s: disk %s: connect to QEMU's NBD server: %w", b.d.cfg.Workload, v.Disk, err)
		}
		meta := ""
		if v.Base != 0 {
			meta = "qemu:dirty-bitmap:" + bitmapName(v.Base)
		}
		if v.nbd, err = dialNBD(conn, v.fleece, meta); err != nil {
			return fmt.Errorf("%s: disk %s: %w", b.d.cfg.Workload, v.Disk, err)
		}
		if v.nbd.Size() != v.Size {
			return fmt.Errorf("%s: disk %s: the view holds %d bytes, the disk %d", b.d.cfg.Workload, v.Disk, v.nbd.Size(), v.Size)
		}
	}
	return nil
}

// Finish tears the view down. With ok (the recovery point is stored) the
// new generation's bitmap becomes the base and the old one goes; otherwise
// the new bitmap's changes are merged back into the old one, which records
// again, so the next backup still sees every change since the base.
func (b *BlockBackup) Finish(ctx context.Context, ok bool) error {
	if b.finished {
		return nil
	}
	b.finished = true
	for _, v := range b.Disks {
		if v.nbd != nil {
			_ = v.nbd.Close()
			v.nbd = nil
		}
	}
	q, err := b.dial(ctx)
	if err != nil {
		return fmt.Errorf("%s: finish the block backup (the next backup cleans up): %w", b.d.cfg.Workload, err)
	}
	defer q.Close() //nolint:errcheck // commands are answered before it closes
	var errs []error
	if b.exported {
		for _, v := range b.Disks {
			_, _ = q.execute("block-export-del", map[string]any{"id": v.fleece, "mode": "hard"})
		}
		b.waitExportsGone(q)
	}
	_, _ = q.execute("nbd-server-stop", nil)
	if b.jobs {
		for i := range b.Disks {
			_, _ = q.execute("block-job-cancel", map[string]any{"device": fmt.Sprintf("cg-job%d", i), "force": true})
		}
		b.waitJobsGone(q)
	}
	for _, v := range b.Disks {
		if _, err := q.execute("blockdev-del", map[string]any{"node-name": v.fleece}); err != nil && !strings.Contains(err.Error(), "Failed to find node") {
			errs = append(errs, err)
		}
		_ = os.Remove(v.file)
	}
	if b.jobs {
		for _, v := range b.Disks {
			if v.Format != "qcow2" {
				continue
			}
			newBM := map[string]any{"node": v.node, "name": bitmapName(b.Generation)}
			var actions []map[string]any
			switch {
			case ok && v.Base != 0:
				actions = append(actions, map[string]any{"type": "block-dirty-bitmap-remove", "data": map[string]any{"node": v.node, "name": bitmapName(v.Base)}})
			case !ok && v.Base != 0:
				old := map[string]any{"node": v.node, "name": bitmapName(v.Base)}
				actions = append(actions,
					map[string]any{"type": "block-dirty-bitmap-enable", "data": old},
					map[string]any{"type": "block-dirty-bitmap-merge", "data": map[string]any{"node": v.node, "target": bitmapName(v.Base), "bitmaps": []string{bitmapName(b.Generation)}}},
					map[string]any{"type": "block-dirty-bitmap-remove", "data": newBM})
			case !ok:
				// No base: the next backup reads everything anyway, and
				// keeping the new bitmap would wrongly claim a checkpoint.
				actions = append(actions, map[string]any{"type": "block-dirty-bitmap-remove", "data": newBM})
			}
			if ok {
				for _, name := range v.stale {
					actions = append(actions, map[string]any{"type": "block-dirty-bitmap-remove", "data": map[string]any{"node": v.node, "name": name}})
				}
			}
			if len(actions) > 0 {
				if _, err := q.execute("transaction", map[string]any{"actions": actions}); err != nil {
					errs = append(errs, fmt.Errorf("disk %s: rotate dirty bitmaps: %w", v.Disk, err))
				}
			}
		}
	}
	if b.listener != nil {
		_ = b.listener.Close()
	}
	_ = os.Remove(b.sock)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: finish the block backup: %w", b.d.cfg.Workload, err)
	}
	return nil
}

func (b *BlockBackup) waitJobsGone(q *qmp) {
	b.waitFor(q, "query-block-jobs", func(raw json.RawMessage) bool {
		var jobs []struct {
			Device string `json:"device"`
		}
		_ = json.Unmarshal(raw, &jobs)
		return !slices.ContainsFunc(jobs, func(j struct {
			Device string `json:"device"`
		}) bool {
			return strings.HasPrefix(j.Device, "cg-")
		})
	})
}

func (b *BlockBackup) waitExportsGone(q *qmp) {
	b.waitFor(q, "query-block-exports", func(raw json.RawMessage) bool {
		var ex []struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(raw, &ex)
		return !slices.ContainsFunc(ex, func(e struct {
			ID string `json:"id"`
		}) bool {
			return strings.HasPrefix(e.ID, "cg-")
		})
	})
}

// waitFor polls a QMP query until done says so (QEMU ends jobs and exports
// asynchronously), for at most the driver's timeout.
func (b *BlockBackup) waitFor(q *qmp, query string, done func(json.RawMessage) bool) {
	deadline := time.Now().Add(b.d.cfg.Timeout)
	for time.Now().Before(deadline) {
		raw, err := q.execute(query, nil)
		if err != nil || done(raw) {
			return
		}
		time.Sleep(5 * time.Millisecond) // QEMU sends events, but polling is simpler and short
	}
}

// ReadExtents reads the given extents of the view with several requests
// in flight, handing each piece (at most 4 MiB) to f as it arrives, in any
// order; the data is reused after f returns.
func (v *DiskView) ReadExtents(ext []Extent, f func(off int64, data []byte) error) error {
	if v.nbd == nil {
		return fmt.Errorf("disk %s: view not open", v.Disk)
	}
	return v.nbd.ReadExtents(ext, f)
}
