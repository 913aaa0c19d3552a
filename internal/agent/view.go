package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Snapshot methods: how a backup takes the point-in-time view of a
// workload's paths while the workload is frozen (snapshot_method in a
// workload block).
const (
	// SnapshotAuto picks btrfs_snapshot when every path is a btrfs
	// subvolume, else reflink when the shared volume's file system can
	// clone files, else mirror.
	SnapshotAuto = "auto"
	// SnapshotReflink clones every file (FICLONE) into a view directory on
	// the shared volume: metadata only, so the stun grows with the number
	// of files, not their size (XFS with reflink=1, btrfs).
	SnapshotReflink = "reflink"
	// SnapshotBtrfs takes a read-only btrfs snapshot of each path, which
	// must be a subvolume: constant time.
	SnapshotBtrfs = "btrfs_snapshot"
	// SnapshotMirror copies changed files into the node-local mirror under
	// state_dir: the stun grows with the bytes changed (ext4, tmpfs).
	SnapshotMirror = "mirror"
)

// SnapshotMethods are the accepted values of snapshot_method.
var SnapshotMethods = []string{SnapshotAuto, SnapshotReflink, SnapshotBtrfs, SnapshotMirror}

// ViewsDir, relative to the shared volume, holds the point-in-time views
// of running backups: views/<node>/<workload>/<run>-<random>. A view is
// removed after its backup, and an agent removes its node's leftovers
// (from a crash) when it starts.
var ViewsDir = filepath.Join(MetadataDir, "views")

// Linux file system magic numbers (statfs f_type) and btrfs constants.
const (
	btrfsMagic = 0x9123683e
	// btrfsSubvolIno is the inode number of a subvolume's root directory.
	btrfsSubvolIno = 256
	// btrfsEmptySubvolIno is the inode number of the placeholder a
	// snapshot holds where the source had a nested subvolume.
	btrfsEmptySubvolIno = 2
	btrfsSubvolRdonly   = 1 << 1
	// _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2), _IOW(0x94, 15, struct
	// btrfs_ioctl_vol_args), _IOW(0x94, 26, __u64): linux/btrfs.h.
	btrfsIocSnapCreateV2   = 0x50009417
	btrfsIocSnapDestroy    = 0x5000940f
	btrfsIocSubvolSetflags = 0x4008941a
)

// btrfsVolArgsV2 is struct btrfs_ioctl_vol_args_v2 (4096 bytes).
type btrfsVolArgsV2 struct {
	Fd      int64
	Transid uint64
	Flags   uint64
	Unused  [4]uint64
	Name    [4040]byte
}

// btrfsVolArgs is struct btrfs_ioctl_vol_args (4096 bytes).
type btrfsVolArgs struct {
	Fd   int64
	Name [4088]byte
}

// pointView is the point-in-time view one backup reads: prepared before
// the workload is frozen, taken while it is, read by the repository after
// the release, then removed.
type pointView struct {
	method string // SnapshotReflink, SnapshotBtrfs or SnapshotMirror
	why    string // why the mirror was chosen when auto found nothing better
	stats  MirrorStats

	volume  string
	paths   []string
	exclude []string
	mirror  string // the node-local mirror (SnapshotMirror)

	// A view on the shared volume: dir is <views>/<node>/<workload>/<name>,
	// held open from the moment it was created so no rename or link on the
	// volume can redirect what is written or read (the repository reads it
	// through /proc/self/fd).
	parent *os.Root
	name   string
	dir    *os.File
	root   *os.Root
}

// readRoot is the directory the repository backs up, once the view is
// known complete.
func (v *pointView) readRoot() (string, error) {
	if err := v.checkComplete(); err != nil {
		return "", err
	}
	if v.dir == nil {
		return v.mirror, nil
	}
	return "/proc/self/fd/" + strconv.Itoa(int(v.dir.Fd())), nil
}

// Name is where the view is, for the recovery point's record.
func (v *pointView) Name() string {
	if v.dir == nil {
		return v.mirror
	}
	return filepath.Join(v.parent.Name(), v.name)
}

// FreshInodes reports whether every file of the view has a new inode on
// each backup (a reflink view), so the repository must recognise
// unchanged files by size and modification time alone.
func (v *pointView) FreshInodes() bool { return v.method == SnapshotReflink }

// prepareView chooses the method for wl and creates an empty view
// directory; it runs before the workload is frozen. An explicit method
// that cannot work here is an error; auto falls back to the mirror (said
// once in the log). remove deletes the view after the backup.
func (s *Server) prepareView(wl *workload, runID string, log *slog.Logger) (v *pointView, remove func(), err error) {
	v, err = s.newView(wl, runID)
	if err != nil {
		return nil, nil, err
	}
	s.logMethod(wl, v)
	return v, func() {
		if err := v.remove(); err != nil {
			log.Warn("point-in-time view not removed; remove it by hand (btrfs subvolume delete for a snapshot)", "error", err)
		}
	}, nil
}

// mirrorView is the node-local mirror, leaving out extra paths too (a VM's
// disks, which QEMU's own view provides).
func (s *Server) mirrorView(wl *workload, extraExclude []string) *pointView {
	return &pointView{method: SnapshotMirror, volume: s.cfg.SharedVolume, paths: wl.cfg.Paths,
		exclude: append(s.copyExclusions(wl), extraExclude...),
		mirror:  filepath.Join(s.cfg.StateDir, "mirror", safeName(wl.cfg.Name))}
}

func (s *Server) newView(wl *workload, runID string) (*pointView, error) {
	v := &pointView{method: SnapshotMirror, volume: s.cfg.SharedVolume, paths: wl.cfg.Paths, exclude: s.copyExclusions(wl),
		mirror: filepath.Join(s.cfg.StateDir, "mirror", safeName(wl.cfg.Name))}
	want := wl.cfg.SnapshotMethod
	if want == "" {
		want = SnapshotAuto
	}
	if want == SnapshotMirror {
		return v, nil
	}
	method, err := chooseView(v, want)
	if err == nil {
		err = v.create(s.cfg.Node, wl.cfg.Name, runID)
	}
	if err == nil && method == SnapshotReflink {
		err = v.probeClone()
	}
	if err != nil {
		_ = v.remove() // what was made of the view; the reason to fall back is err
		if want != SnapshotAuto {
			return nil, fmt.Errorf("snapshot_method %q: %w; set snapshot_method = \"auto\" or \"mirror\" on workload %s", want, err, wl.cfg.Name)
		}
		v = &pointView{method: SnapshotMirror, why: err.Error(), volume: v.volume, paths: v.paths, exclude: v.exclude, mirror: v.mirror}
		return v, nil
	}
	v.method = method
	return v, nil
}

// chooseView decides between reflink and btrfs_snapshot for want.
func chooseView(v *pointView, want string) (string, error) {
	var vfs unix.Statfs_t
	if err := unix.Statfs(v.volume, &vfs); err != nil {
		return "", fmt.Errorf("inspect the shared volume %s: %w", v.volume, err)
	}
	volIsBtrfs := vfs.Type == btrfsMagic
	if want != SnapshotReflink && volIsBtrfs {
		subvols := 0
		for _, p := range v.paths {
			if ok, err := isSubvolume(filepath.Join(v.volume, p)); err == nil && ok {
				subvols++
			} else if want == SnapshotBtrfs {
				return "", fmt.Errorf("workload path %s is not a btrfs subvolume (create it with `btrfs subvolume create`)", p)
			}
		}
		if subvols == len(v.paths) {
			if nested := nestedSubvolume(v.volume, v.paths); nested != "" {
				if want == SnapshotBtrfs {
					return "", fmt.Errorf("%s is a nested subvolume, which a snapshot of its parent would leave empty", nested)
				}
			} else {
				return SnapshotBtrfs, nil
			}
		}
	}
	if want == SnapshotBtrfs {
		return "", fmt.Errorf("the shared volume %s is not on btrfs", v.volume)
	}
	// A clone only works within one file system: every path must be on the
	// volume's (btrfs subvolumes have their own device numbers, but one
	// file system; a cross-file-system clone there is copied instead).
	vst, err := os.Stat(v.volume)
	if err != nil {
		return "", err
	}
	for _, p := range v.paths {
		pst, err := os.Stat(filepath.Join(v.volume, p))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if !volIsBtrfs && pst.Sys().(*syscall.Stat_t).Dev != vst.Sys().(*syscall.Stat_t).Dev {
			return "", fmt.Errorf("workload path %s is on another file system than the shared volume %s, so its files cannot be cloned into a view there", p, v.volume)
		}
	}
	return SnapshotReflink, nil
}

// isSubvolume reports whether path is the root of a btrfs subvolume.
func isSubvolume(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() {
		return false, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == btrfsMagic && fi.Sys().(*syscall.Stat_t).Ino == btrfsSubvolIno, nil
}

// nestedSubvolume returns the first subvolume found below a workload path
// (a snapshot holds an empty directory in its place), or "".
func nestedSubvolume(volume string, paths []string) string {
	found := ""
	for _, p := range paths {
		top := filepath.Join(volume, p)
		_ = filepath.WalkDir(top, func(q string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || q == top {
				return nil
			}
			if fi, err := d.Info(); err == nil && fi.Sys().(*syscall.Stat_t).Ino == btrfsSubvolIno {
				found = q
				return fs.SkipAll
			}
			return nil
		})
		if found != "" {
			return found
		}
	}
	return ""
}

// openPrivateDir opens (creating it with mode when missing) the directory
// name in parent, refusing a symlink or anything but a directory, so the
// chain of view directories is made only of real directories.
func openPrivateDir(parent *os.Root, name string, mode fs.FileMode, mustOwn bool) (*os.Root, error) {
	if err := parent.Mkdir(name, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create %s: %w", filepath.Join(parent.Name(), name), err)
	}
	fi, err := parent.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is a %s, not a directory; remove it", filepath.Join(parent.Name(), name), typeName(fi.Mode()))
	}
	if st := fi.Sys().(*syscall.Stat_t); mustOwn && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("%s belongs to uid %d, not to the agent; remove it", filepath.Join(parent.Name(), name), st.Uid)
	}
	sub, err := openDirAsSeen(parent, name, fi)
	if err != nil {
		return nil, err
	}
	if mustOwn {
		if err := sub.Chmod(".", mode); err != nil {
			_ = sub.Close() // a directory handle
			return nil, err
		}
	}
	return sub, nil
}

// openViewsDir opens <volume>/.clusterguard/views/<node>, creating it.
// Everything from views down is the agent's alone (0700).
func openViewsDir(volume, node string) (*os.Root, error) {
	vol, err := os.OpenRoot(volume)
	if err != nil {
		return nil, err
	}
	defer func() { _ = vol.Close() }() // a directory handle
	meta, err := openPrivateDir(vol, MetadataDir, 0o755, false)
	if err != nil {
		return nil, err
	}
	defer func() { _ = meta.Close() }() // a directory handle
	views, err := openPrivateDir(meta, filepath.Base(ViewsDir), 0o700, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = views.Close() }() // a directory handle
	return openPrivateDir(views, safeName(node), 0o700, true)
}

// create makes the empty view directory of this run.
func (v *pointView) create(node, workload, runID string) error {
	nodeDir, err := openViewsDir(v.volume, node)
	if err != nil {
		return fmt.Errorf("create the views directory %s: %w", filepath.Join(v.volume, ViewsDir), err)
	}
	defer func() { _ = nodeDir.Close() }() // a directory handle
	v.parent, err = openPrivateDir(nodeDir, safeName(workload), 0o700, true)
	if err != nil {
		return err
	}
	// Random suffix: a retried run must not find a half-removed view.
	v.name = safeName(runID) + "-" + strings.ToLower(rand.Text()[:8])
	if err := v.parent.Mkdir(v.name, 0o700); err != nil {
		return fmt.Errorf("create the view %s: %w", filepath.Join(v.parent.Name(), v.name), err)
	}
	if v.dir, err = v.parent.OpenFile(v.name, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0); err != nil {
		return err
	}
	v.root, err = v.parent.OpenRoot(v.name)
	if err != nil {
		return err
	}
	if a, err1 := v.dir.Stat(); err1 != nil {
		return err1
	} else if b, err2 := v.root.Stat("."); err2 != nil || !sameFile(a, b) {
		return fmt.Errorf("the view %s changed while it was created", filepath.Join(v.parent.Name(), v.name))
	}
	return nil
}

// probeClone checks that the view's file system clones files.
func (v *pointView) probeClone() error {
	a, err := v.root.OpenFile(".probe-a", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = a.Close(); _ = v.root.Remove(".probe-a") }() // a probe file
	b, err := v.root.OpenFile(".probe-b", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = b.Close(); _ = v.root.Remove(".probe-b") }() // a probe file
	if _, err := a.WriteString("clusterguard reflink probe"); err != nil {
		return err
	}
	if err := unix.IoctlFileClone(int(b.Fd()), int(a.Fd())); err != nil {
		return fmt.Errorf("the file system of %s cannot clone files (FICLONE: %w)", v.volume, err)
	}
	return nil
}

// take fills the view while the workload is frozen.
func (v *pointView) take(ctx context.Context) (MirrorStats, error) {
	var err error
	switch v.method {
	case SnapshotMirror:
		v.stats, err = syncMirror(ctx, v.volume, v.paths, v.mirror, v.exclude...)
	case SnapshotReflink:
		v.stats, err = syncInto(ctx, v.root, v.volume, v.paths, true, v.exclude)
	case SnapshotBtrfs:
		err = v.snapshot()
	}
	return v.stats, err
}

// snapshot takes a btrfs snapshot of every workload path into the view,
// at the same relative place. Paths holding excluded files get a writable
// snapshot, the files are removed, then it is made read-only.
func (v *pointView) snapshot() error {
	vol, err := os.OpenRoot(v.volume)
	if err != nil {
		return err
	}
	defer func() { _ = vol.Close() }() // a directory handle
	for _, p := range v.paths {
		rel := filepath.Clean(p)
		info, err := vol.Lstat(rel)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a workload may not have written anything yet
		}
		if err != nil {
			return err
		}
		src, err := vol.OpenFile(rel, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", rel, err)
		}
		opened, err := src.Stat()
		if err == nil && (!sameFile(opened, info) || opened.Sys().(*syscall.Stat_t).Ino != btrfsSubvolIno) {
			err = fmt.Errorf("%s changed since it was checked (replaced by a link or another directory); nothing snapshotted", rel)
		}
		if err == nil {
			err = v.snapshotOne(src, rel)
		}
		_ = src.Close() // a directory handle
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", rel, err)
		}
		v.stats.Files++
	}
	return nil
}

func (v *pointView) snapshotOne(src *os.File, rel string) error {
	dir := filepath.Dir(rel)
	if dir != "." {
		if err := v.root.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	parent, err := v.root.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer func() { _ = parent.Close() }() // a directory handle
	var inside []string
	for _, x := range v.exclude {
		if r, err := filepath.Rel(filepath.Join(v.volume, rel), x); err == nil && r != "." && !strings.HasPrefix(r, "..") {
			inside = append(inside, r)
		}
	}
	args := btrfsVolArgsV2{Fd: int64(src.Fd())}
	if len(inside) == 0 {
		args.Flags = btrfsSubvolRdonly
	}
	name := filepath.Base(rel)
	copy(args.Name[:len(args.Name)-1], name)
	if err := ioctlPtr(parent.Fd(), btrfsIocSnapCreateV2, &args); err != nil {
		return fmt.Errorf("BTRFS_IOC_SNAP_CREATE_V2: %w", err)
	}
	if len(inside) == 0 {
		return nil
	}
	snap, err := v.root.OpenRoot(rel)
	if err != nil {
		return err
	}
	defer func() { _ = snap.Close() }() // a directory handle
	for _, r := range inside {
		if err := snap.RemoveAll(r); err != nil {
			return fmt.Errorf("leave %s out of the snapshot: %w", r, err)
		}
	}
	f, err := snap.OpenFile(".", os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // a directory handle
	flags := uint64(btrfsSubvolRdonly)
	if err := ioctlPtr(f.Fd(), btrfsIocSubvolSetflags, &flags); err != nil {
		return fmt.Errorf("make the snapshot read-only: %w", err)
	}
	return nil
}

// checkComplete refuses a btrfs view that holds a placeholder where the
// source had a nested subvolume (created since prepareView looked): the
// backup would silently miss its files.
func (v *pointView) checkComplete() error {
	if v.method != SnapshotBtrfs {
		return nil
	}
	var missing string
	_ = fs.WalkDir(v.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Sys().(*syscall.Stat_t).Ino == btrfsEmptySubvolIno {
			missing = p
			return fs.SkipAll
		}
		return nil
	})
	if missing != "" {
		return fmt.Errorf("%s is a nested btrfs subvolume, which the snapshot does not include; set snapshot_method = \"reflink\"", missing)
	}
	return nil
}

// remove deletes the view (its btrfs snapshots first); a mirror stays.
func (v *pointView) remove() error {
	if v.root != nil {
		_ = v.root.Close() // a directory handle
	}
	if v.dir != nil {
		_ = v.dir.Close() // a directory handle
	}
	if v.parent == nil {
		return nil
	}
	defer func() { _ = v.parent.Close() }() // a directory handle
	if v.name == "" {
		return nil
	}
	return removeView(v.parent, v.name)
}

// removeView removes the view name in parent: subvolumes inside it are
// deleted with BTRFS_IOC_SNAP_DESTROY (a read-only snapshot cannot be
// emptied file by file), then the rest.
func removeView(parent *os.Root, name string) error {
	// Inode 256 marks a subvolume only on btrfs; elsewhere it is any inode.
	if onBtrfs(parent) {
		if err := destroySubvolumes(parent, name, 0); err != nil {
			return err
		}
	}
	if err := parent.RemoveAll(name); err != nil {
		return fmt.Errorf("remove the view %s: %w", filepath.Join(parent.Name(), name), err)
	}
	return nil
}

// onBtrfs reports whether dir is on a btrfs file system.
func onBtrfs(dir *os.Root) bool {
	f, err := dir.Open(".")
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }() // a directory handle
	var st unix.Statfs_t
	return unix.Fstatfs(int(f.Fd()), &st) == nil && st.Type == btrfsMagic
}

// destroySubvolumes deletes every btrfs subvolume at or below name in dir,
// looking only at directories and never following a link. Snapshots sit
// where the workload paths are, so the walk stops at their depth.
func destroySubvolumes(dir *os.Root, name string, depth int) error {
	fi, err := dir.Lstat(name)
	if err != nil || !fi.IsDir() {
		return nil
	}
	if fi.Sys().(*syscall.Stat_t).Ino == btrfsSubvolIno && depth > 0 {
		f, err := dir.OpenFile(".", os.O_RDONLY|syscall.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }() // a directory handle
		var args btrfsVolArgs
		copy(args.Name[:len(args.Name)-1], name)
		if err := ioctlPtr(f.Fd(), btrfsIocSnapDestroy, &args); err != nil {
			return fmt.Errorf("delete the snapshot %s: BTRFS_IOC_SNAP_DESTROY: %w", filepath.Join(dir.Name(), name), err)
		}
		return nil
	}
	if depth > 32 {
		return nil
	}
	sub, err := dir.OpenRoot(name)
	if err != nil {
		return nil
	}
	defer func() { _ = sub.Close() }() // a directory handle
	d, err := sub.Open(".")
	if err != nil {
		return nil
	}
	ents, _ := d.ReadDir(-1)
	_ = d.Close() // a directory handle
	for _, e := range ents {
		if e.IsDir() {
			if err := destroySubvolumes(sub, e.Name(), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeStaleViews removes the views this node left behind (an agent that
// crashed during a backup); no backup runs yet when the agent starts.
func (s *Server) removeStaleViews() {
	dir := filepath.Join(s.cfg.SharedVolume, ViewsDir, safeName(s.cfg.Node))
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return
	}
	nodeDir, err := openViewsDir(s.cfg.SharedVolume, s.cfg.Node)
	if err != nil {
		s.logger.Warn("cannot inspect the point-in-time views left by an earlier run", "dir", dir, "error", err)
		return
	}
	defer func() { _ = nodeDir.Close() }() // a directory handle
	f, err := nodeDir.Open(".")
	if err != nil {
		return
	}
	workloads, _ := f.ReadDir(-1)
	_ = f.Close() // a directory handle
	for _, w := range workloads {
		if err := removeView(nodeDir, w.Name()); err != nil {
			s.logger.Warn("cannot remove the point-in-time views left by an earlier run; remove them by hand (btrfs subvolume delete for snapshots)", "dir", filepath.Join(dir, w.Name()), "error", err)
			continue
		}
		s.logger.Info("removed point-in-time views left by an earlier run", "dir", filepath.Join(dir, w.Name()))
	}
}

func ioctlPtr[T any](fd uintptr, req uintptr, arg *T) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(unsafe.Pointer(arg))); errno != 0 {
		return errno
	}
	return nil
}

// cloneContent reflinks src's content into dst. A file the file system
// will not clone (another file system, a swap file) reports cloned false
// and is copied by the caller.
func cloneContent(dst, src *os.File, size int64) (n int64, cloned bool, err error) {
	err = unix.IoctlFileClone(int(dst.Fd()), int(src.Fd()))
	switch {
	case err == nil:
		return size, true, nil
	case errors.Is(err, unix.EXDEV), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOTTY), errors.Is(err, unix.ETXTBSY):
		return 0, false, nil
	default:
		return 0, false, fmt.Errorf("clone %s: %w", src.Name(), err)
	}
}

// mirrorFallbackLogged holds the workloads whose fallback to the mirror
// was logged: the log says it once per agent run, the backup result every
// time.
var mirrorFallbackLogged sync.Map // *workload -> struct{}

// logMethod says once per workload that auto found no snapshot method.
func (s *Server) logMethod(wl *workload, v *pointView) {
	if v.why == "" {
		return
	}
	if _, seen := mirrorFallbackLogged.LoadOrStore(wl, struct{}{}); !seen {
		s.logger.Warn("no reflink or snapshot on the shared volume: backups copy changed files into the node-local mirror while the workload is frozen, so the stun grows with the data changed",
			"workload", wl.cfg.Name, "reason", v.why)
	}
}
