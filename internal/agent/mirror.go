package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// MirrorStats says what a mirror sync did.
type MirrorStats struct {
	Files, Copied, Removed int64
	BytesCopied            int64
	BytesCloned            int64 // reflinked, not copied (a reflink view)
}

// mirrorModeBits are the mode bits the mirror keeps: setuid, setgid and
// sticky included, so a backup holds the workload's files as they are
// (restore drops setuid and setgid unless asked to keep them). Only the
// agent can reach them: the mirror's root directory is 0700.
const mirrorModeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// syncMirror makes mirror hold the same files as the workload's paths on
// the shared volume, with the same relative layout. A file whose size, mode
// and modification time are unchanged is left alone, so it keeps its inode
// and the repository's parent-snapshot check skips re-reading it; a changed
// file is copied to a temporary name and renamed into place. The copy uses
// (*os.File).ReadFrom, which on Linux uses copy_file_range (a reflink where
// the file system supports it). Symlinks are copied as links, never followed.
// An agent running as root keeps every entry's owner, so a workload running
// as its own user (a database) finds its files as it left them after a
// restore.
//
// Every write goes through an os.Root opened on the mirror, and whatever is
// at a destination that is not what the walk expects (a symlink copied by
// an earlier sync where the workload now has a directory, a directory where
// it now has a file) is removed before the entry is written. Otherwise a
// workload's user could turn a name it once made a symlink into a
// directory and have the root agent create, chmod and fill directories
// outside the mirror through the stale link. The volume is read the same
// way, directory by directory through descriptors, and a directory that is
// no longer the one the walk saw (swapped for a symlink) is refused, so the
// root agent never copies files from behind a link into the backup.
//
// exclude lists absolute paths on the volume left out of the copy (see
// CopyExcluder).
func syncMirror(ctx context.Context, volume string, relPaths []string, mirror string, exclude ...string) (MirrorStats, error) {
	if err := os.MkdirAll(mirror, 0o700); err != nil {
		return MirrorStats{}, fmt.Errorf("create the mirror %s: %w", mirror, err)
	}
	root, err := os.OpenRoot(mirror)
	if err != nil {
		return MirrorStats{}, fmt.Errorf("open the mirror %s: %w", mirror, err)
	}
	defer func() { _ = root.Close() }() // closing a read or directory handle loses nothing
	if err := root.Chmod(".", 0o700); err != nil {
		return MirrorStats{}, fmt.Errorf("restrict the mirror %s to the agent: %w", mirror, err)
	}
	return syncInto(ctx, root, volume, relPaths, false, exclude)
}

// syncInto is syncMirror into the directory root. With clone set, files
// are reflinked (FICLONE) instead of copied, which needs root on the
// volume's file system (a reflink view, view.go); a file the file system
// cannot clone is copied.
func syncInto(ctx context.Context, root *os.Root, volume string, relPaths []string, clone bool, exclude []string) (MirrorStats, error) {
	var st MirrorStats
	skip := map[string]bool{}
	for _, p := range exclude {
		skip[filepath.Clean(p)] = true
	}
	vol, err := os.OpenRoot(volume)
	if err != nil {
		return st, fmt.Errorf("open the shared volume %s: %w", volume, err)
	}
	defer func() { _ = vol.Close() }() // closing a read or directory handle loses nothing
	m := &mirrorWriter{root: root, st: &st, volume: volume, skip: skip, seen: map[string]bool{}, clone: clone}
	seen := m.seen
	defer m.closeParents()
	for _, rel := range relPaths {
		rel = filepath.Clean(rel)
		if skip[filepath.Join(volume, rel)] {
			continue
		}
		info, err := vol.Lstat(rel)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a workload may not have written anything yet
		}
		if err != nil {
			return st, err
		}
		if err := m.copyPath(ctx, vol, rel, info); err != nil {
			return st, fmt.Errorf("copy %s: %w", rel, err)
		}
	}
	// Remove what no longer exists on the volume, deepest first.
	var stale []string
	_ = fs.WalkDir(root.FS(), ".", func(r string, d fs.DirEntry, err error) error {
		if err != nil || r == "." {
			return nil
		}
		if !seen[r] {
			stale = append(stale, r)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	for _, r := range stale {
		if err := root.RemoveAll(r); err != nil {
			return st, fmt.Errorf("remove %s from the mirror: %w", r, err)
		}
		st.Removed++
	}
	// Directory times last: writing entries changed them.
	for _, rel := range relPaths {
		src := filepath.Join(volume, filepath.Clean(rel))
		_ = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				if info, err := d.Info(); err == nil {
					r, _ := filepath.Rel(volume, p)
					if cur, err := root.Lstat(r); err == nil && cur.IsDir() {
						_ = root.Chtimes(r, info.ModTime(), info.ModTime())
					}
				}
			}
			return nil
		})
	}
	return st, nil
}

// source is an entry of the shared volume: name in the directory dir.
type source struct {
	dir  *os.Root
	name string
}

func (s source) String() string { return filepath.Join(s.dir.Name(), s.name) }

// openDirAsSeen opens the directory name in dir and checks it is the one
// the walk saw: a workload that swapped it for a symlink since (to /etc,
// or to another workload's data) would otherwise have the root agent copy
// files it may not read into the mirror and the backup.
func openDirAsSeen(dir *os.Root, name string, seen fs.FileInfo) (*os.Root, error) {
	sub, err := dir.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	opened, err := sub.Stat(".")
	if err == nil && !sameFile(opened, seen) {
		err = fmt.Errorf("%s changed while being copied (replaced by a link or another directory); nothing copied from it", filepath.Join(dir.Name(), name))
	}
	if err != nil {
		_ = sub.Close() // a directory handle
		return nil, err
	}
	return sub, nil
}

// target is an entry of the mirror: name in the directory dir, rel from
// the mirror's root (for messages and the seen set).
type target struct {
	dir       *os.Root
	name, rel string
}

// copyPath copies the workload path rel (info as on the volume).
func (m *mirrorWriter) copyPath(ctx context.Context, vol *os.Root, rel string, info fs.FileInfo) error {
	if err := m.parents(rel); err != nil {
		return err
	}
	parent := m.root
	if d := filepath.Dir(rel); d != "." {
		p, err := m.root.OpenRoot(d)
		if err != nil {
			return fmt.Errorf("open %s in the mirror: %w", d, err)
		}
		m.opened = append(m.opened, p)
		parent = p
	}
	dst := target{parent, filepath.Base(rel), rel}
	if !info.IsDir() {
		markSeen(m.seen, rel)
		return m.syncEntry(ctx, source{vol, rel}, dst, info)
	}
	dir, err := openDirAsSeen(vol, rel, info)
	if err != nil {
		return err
	}
	defer func() { _ = dir.Close() }() // closing a read or directory handle loses nothing
	return m.walk(ctx, dir, dst, info)
}

func (m *mirrorWriter) closeParents() {
	for _, p := range m.opened {
		_ = p.Close() // a directory handle
	}
}

// walk copies the directory dir (rel on the volume, info as the walk saw
// it) and everything below it. Each directory is read through its own
// descriptor, so no path is resolved again on the way down.
func (m *mirrorWriter) walk(ctx context.Context, dir *os.Root, dst target, info fs.FileInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rel := dst.rel
	markSeen(m.seen, rel)
	if err := m.syncEntry(ctx, source{}, dst, info); err != nil {
		return err
	}
	// The mirror's directory was just made a real directory; nothing but
	// the agent writes the mirror, so its entries are reached through it.
	mdir, err := dst.dir.OpenRoot(dst.name)
	if err != nil {
		return fmt.Errorf("open %s in the mirror: %w", rel, err)
	}
	defer func() { _ = mdir.Close() }() // closing a read or directory handle loses nothing
	f, err := dir.Open(".")
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		child := filepath.Join(rel, name)
		if m.skip[filepath.Join(m.volume, child)] { // not marked seen: an earlier copy of it is removed
			continue
		}
		ci, err := dir.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since it was listed
		}
		if err != nil {
			return err
		}
		if !ci.IsDir() {
			markSeen(m.seen, child)
			if err := m.syncEntry(ctx, source{dir, name}, target{mdir, name, child}, ci); err != nil {
				return err
			}
			continue
		}
		sub, err := openDirAsSeen(dir, name, ci)
		if err != nil {
			return err
		}
		err = m.walk(ctx, sub, target{mdir, name, child}, ci)
		_ = sub.Close() // a directory handle
		if err != nil {
			return err
		}
	}
	return nil
}

// markSeen records rel and its parent directories.
func markSeen(seen map[string]bool, rel string) {
	for r := rel; r != "." && r != "" && !seen[r]; r = filepath.Dir(r) {
		seen[r] = true
	}
}

// mirrorWriter writes entries into the mirror, through its root only.
type mirrorWriter struct {
	root   *os.Root
	st     *MirrorStats
	volume string
	skip   map[string]bool // absolute paths on the volume left out
	seen   map[string]bool // entries copied, relative to the volume
	opened []*os.Root      // parents of workload paths in the mirror
	clone  bool            // reflink files instead of copying them
}

// parents makes every parent directory of rel in the mirror a real
// directory, replacing anything else there. The walk itself handles the
// entries below a workload path; this covers the path's own parents.
func (m *mirrorWriter) parents(rel string) error {
	dir := filepath.Dir(rel)
	if dir == "." {
		return nil
	}
	p := ""
	for _, c := range strings.Split(dir, string(filepath.Separator)) {
		p = filepath.Join(p, c)
		if _, err := m.clear(target{m.root, p, p}, fs.ModeDir); err != nil {
			return err
		}
		if err := m.root.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s in the mirror: %w", p, err)
		}
	}
	return nil
}

// clear removes whatever is at rel in the mirror unless it has the type
// the walk expects (fs.ModeDir, fs.ModeSymlink or 0 for a regular file).
// It returns what it left in place (nil when rel is now free).
func (m *mirrorWriter) clear(dst target, want fs.FileMode) (fs.FileInfo, error) {
	rel := dst.rel
	cur, err := dst.dir.Lstat(dst.name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect %s in the mirror: %w", rel, err)
	}
	if cur.Mode().Type() == want {
		return cur, nil
	}
	if cur.IsDir() {
		err = dst.dir.RemoveAll(dst.name)
	} else {
		err = dst.dir.Remove(dst.name)
	}
	if err != nil {
		return nil, fmt.Errorf("replace %s in the mirror (it is a %s, the volume has a %s): %w", rel, typeName(cur.Mode()), typeName(want), err)
	}
	return nil, nil
}

func typeName(m fs.FileMode) string {
	switch m.Type() {
	case fs.ModeDir:
		return "directory"
	case fs.ModeSymlink:
		return "symlink"
	case 0:
		return "file"
	default:
		return "special file"
	}
}

// syncEntry brings the mirror's entry rel up to date with src (unused
// for a directory).
func (m *mirrorWriter) syncEntry(ctx context.Context, src source, dst target, info fs.FileInfo) error {
	dir, name, rel := dst.dir, dst.name, dst.rel
	switch {
	case info.IsDir():
		if _, err := m.clear(dst, fs.ModeDir); err != nil {
			return err
		}
		if err := dir.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s in the mirror: %w", rel, err)
		}
		if err := keepOwner(dir, name, info); err != nil {
			return err
		}
		return dir.Chmod(name, info.Mode()&mirrorModeBits)
	case info.Mode()&fs.ModeSymlink != 0:
		link, err := src.dir.Readlink(src.name)
		if err != nil {
			return err
		}
		if _, err := m.clear(dst, fs.ModeSymlink); err != nil {
			return err
		}
		if cur, err := dir.Readlink(name); err == nil && cur == link {
			return keepOwner(dir, name, info)
		}
		if err := dir.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("replace the symlink %s in the mirror: %w", rel, err)
		}
		// The target is stored as is, never resolved: the mirror's root
		// refuses to follow a link that leads out of it.
		if err := dir.Symlink(link, name); err != nil {
			return fmt.Errorf("copy the symlink %s into the mirror: %w", rel, err)
		}
		return keepOwner(dir, name, info)
	case info.Mode().IsRegular():
		m.st.Files++
		cur, err := m.clear(dst, 0)
		if err != nil {
			return err
		}
		if cur != nil && cur.Size() == info.Size() &&
			cur.ModTime().Equal(info.ModTime()) && cur.Mode()&mirrorModeBits == info.Mode()&mirrorModeBits && sameOwner(cur, info) {
			return nil
		}
		n, cloned, err := fillFile(ctx, dir, src, name, info, m.clone)
		if cloned {
			m.st.BytesCloned += n
		} else {
			m.st.BytesCopied += n
		}
		if err == nil {
			m.st.Copied++
		}
		return err
	default:
		return nil // sockets, fifos and devices are not workload data
	}
}

// copyFile copies src to rel in root through a temporary file renamed into
// place; rel's parent must be a directory.
func copyFile(ctx context.Context, root *os.Root, src source, rel string, info fs.FileInfo) (int64, error) {
	n, _, err := fillFile(ctx, root, src, rel, info, false)
	return n, err
}

// fillFile is copyFile, reflinking the content instead when clone is set
// and the file system can (cloned says which happened).
func fillFile(ctx context.Context, root *os.Root, src source, rel string, info fs.FileInfo, clone bool) (n int64, cloned bool, err error) {
	in, err := src.dir.OpenFile(src.name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = in.Close() }() // closing a read or directory handle loses nothing
	// The entry may have been swapped for a symlink since the walk saw it
	// (the directory's root follows links that stay inside it): copy only
	// the file the walk saw, and take mode and owner from what was opened.
	opened, err := in.Stat()
	if err != nil {
		return 0, false, err
	}
	if !sameFile(opened, info) {
		return 0, false, fmt.Errorf("%s changed while being copied (a path component was replaced); nothing copied", src)
	}
	info = opened
	// A short fixed name: a name derived from the file's could exceed the
	// file system's name limit.
	tmpRel := filepath.Join(filepath.Dir(rel), ".cg-tmp-"+rand.Text())
	tmp, err := root.OpenFile(tmpRel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, false, fmt.Errorf("create a temporary file for %s in the mirror: %w", rel, err)
	}
	defer func() { _ = root.Remove(tmpRel) }() // gone after the rename
	if clone {
		n, cloned, err = cloneContent(tmp, in, opened.Size())
	}
	if !cloned && err == nil {
		n, err = io.Copy(tmp, ctxReader{ctx: ctx, f: in})
	}
	if err == nil {
		// Owner first: chown clears setuid and setgid.
		err = keepFileOwner(tmp, rel, info)
	}
	if err == nil {
		err = tmp.Chmod(info.Mode() & mirrorModeBits)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, cloned, err
	}
	if err := root.Chtimes(tmpRel, time.Now(), info.ModTime()); err != nil {
		return n, cloned, err
	}
	if err := root.Rename(tmpRel, rel); err != nil {
		return n, cloned, fmt.Errorf("move the copy of %s into place in the mirror: %w", rel, err)
	}
	return n, cloned, nil
}

// sameFile reports whether a and b are the same inode on the same device.
func sameFile(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// asRoot: only root can give files away; other agents keep their own user.
var asRoot = os.Geteuid() == 0

// keepOwner gives rel in root (not following a symlink) the owner of the source.
func keepOwner(root *os.Root, rel string, src fs.FileInfo) error {
	st, ok := src.Sys().(*syscall.Stat_t)
	if !asRoot || !ok {
		return nil
	}
	return ownerError(rel, root.Lchown(rel, int(st.Uid), int(st.Gid)))
}

// keepFileOwner gives the open file f the owner of the source.
func keepFileOwner(f *os.File, rel string, src fs.FileInfo) error {
	st, ok := src.Sys().(*syscall.Stat_t)
	if !asRoot || !ok {
		return nil
	}
	return ownerError(rel, f.Chown(int(st.Uid), int(st.Gid)))
}

func ownerError(rel string, err error) error {
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EPERM) {
		// Root that cannot give files away (ids unmapped in a user
		// namespace, a root-squashed state directory): the copy keeps the
		// agent's owner rather than every backup failing.
		return nil
	}
	if err != nil {
		return fmt.Errorf("keep the owner of %s: %w", rel, err)
	}
	return nil
}

// sameOwner reports whether a and b have the same owner (always true when
// the agent cannot change owners anyway).
func sameOwner(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return !asRoot || !ok1 || !ok2 || (sa.Uid == sb.Uid && sa.Gid == sb.Gid)
}

// ctxReader stops a long copy when the request is cancelled, while still
// letting io.Copy use the file's fast paths when it is not.
type ctxReader struct {
	ctx context.Context
	f   *os.File
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.f.Read(p)
}

// WriteTo lets io.Copy hand the whole file to (*os.File).ReadFrom
// (copy_file_range) in one call.
func (r ctxReader) WriteTo(w io.Writer) (int64, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if f, ok := w.(*os.File); ok {
		return f.ReadFrom(r.f)
	}
	return io.Copy(w, struct{ io.Reader }{r.f})
}

// safeName makes a run id usable as a directory name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == '.' {
			return '_'
		}
		return r
	}, s)
}
