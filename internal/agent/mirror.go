package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// MirrorStats says what a mirror sync did.
type MirrorStats struct {
	Files, Copied, Removed int64
	BytesCopied            int64
}

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
// exclude lists absolute paths on the volume left out of the copy (see
// CopyExcluder).
func syncMirror(ctx context.Context, volume string, relPaths []string, mirror string, exclude ...string) (MirrorStats, error) {
	var st MirrorStats
	skip := map[string]bool{}
	for _, p := range exclude {
		skip[filepath.Clean(p)] = true
	}
	seen := map[string]bool{}
	for _, rel := range relPaths {
		rel = filepath.Clean(rel)
		src := filepath.Join(volume, rel)
		info, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a workload may not have written anything yet
		}
		if err != nil {
			return st, err
		}
		if !info.IsDir() {
			if err := syncEntry(ctx, src, filepath.Join(mirror, rel), info, &st); err != nil {
				return st, err
			}
			markSeen(seen, rel)
			continue
		}
		err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if skip[p] { // not marked seen: an earlier copy of it is removed below
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			r, _ := filepath.Rel(volume, p)
			markSeen(seen, r)
			info, err := d.Info()
			if err != nil {
				return err
			}
			return syncEntry(ctx, p, filepath.Join(mirror, r), info, &st)
		})
		if err != nil {
			return st, fmt.Errorf("copy %s: %w", rel, err)
		}
	}
	// Remove what no longer exists on the volume, deepest first.
	var stale []string
	_ = filepath.WalkDir(mirror, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == mirror {
			return nil
		}
		r, _ := filepath.Rel(mirror, p)
		if !seen[r] {
			stale = append(stale, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	for _, p := range stale {
		if err := os.RemoveAll(p); err != nil {
			return st, err
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
					_ = os.Chtimes(filepath.Join(mirror, r), info.ModTime(), info.ModTime())
				}
			}
			return nil
		})
	}
	return st, nil
}

// markSeen records rel and its parent directories.
func markSeen(seen map[string]bool, rel string) {
	for r := rel; r != "." && r != "" && !seen[r]; r = filepath.Dir(r) {
		seen[r] = true
	}
}

func syncEntry(ctx context.Context, src, dst string, info fs.FileInfo, st *MirrorStats) error {
	switch {
	case info.IsDir():
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return err
		}
		if err := keepOwner(dst, info); err != nil {
			return err
		}
		return os.Chmod(dst, info.Mode().Perm())
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if cur, err := os.Readlink(dst); err == nil && cur == target {
			return keepOwner(dst, info)
		}
		_ = os.RemoveAll(dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		return keepOwner(dst, info)
	case info.Mode().IsRegular():
		st.Files++
		if cur, err := os.Lstat(dst); err == nil && cur.Mode().IsRegular() && cur.Size() == info.Size() &&
			cur.ModTime().Equal(info.ModTime()) && cur.Mode().Perm() == info.Mode().Perm() && sameOwner(cur, info) {
			return nil
		}
		n, err := copyFile(ctx, src, dst, info)
		st.BytesCopied += n
		if err == nil {
			st.Copied++
		}
		return err
	default:
		return nil // sockets, fifos and devices are not workload data
	}
}

func copyFile(ctx context.Context, src, dst string, info fs.FileInfo) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, err
	}
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	// O_NOFOLLOW guards only the last component: a workload that swapped a
	// parent directory for a symlink since the walk could make the agent
	// copy (and give away) a file outside its paths. Copy only the file
	// the walk saw, and take mode and owner from what was opened.
	opened, err := in.Stat()
	if err != nil {
		return 0, err
	}
	if !sameFile(opened, info) {
		return 0, fmt.Errorf("%s changed while being copied (a path component was replaced); nothing copied", src)
	}
	info = opened
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".cg-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, ctxReader{ctx: ctx, f: in})
	if err == nil {
		err = tmp.Chmod(info.Mode().Perm())
	}
	if err == nil {
		err = keepOwner(tmp.Name(), info)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if err := os.Chtimes(tmp.Name(), time.Now(), info.ModTime()); err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), dst)
}

// sameFile reports whether a and b are the same inode on the same device.
func sameFile(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// asRoot: only root can give files away; other agents keep their own user.
var asRoot = os.Geteuid() == 0

// keepOwner gives dst (not following a symlink) the owner of the source.
func keepOwner(dst string, src fs.FileInfo) error {
	st, ok := src.Sys().(*syscall.Stat_t)
	if !asRoot || !ok {
		return nil
	}
	err := os.Lchown(dst, int(st.Uid), int(st.Gid))
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EPERM) {
		// Root that cannot give files away (ids unmapped in a user
		// namespace, a root-squashed state directory): the copy keeps the
		// agent's owner rather than every backup failing.
		return nil
	}
	if err != nil {
		return fmt.Errorf("keep the owner of %s: %w", dst, err)
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
