// Package local is a repository.Backend on a local or shared directory
// (a cluster's shared volume, an NFS mount, a plain disk).
//
// Layout under the repository directory:
//
//	config                  the repository config (config objects live at the root under their name)
//	keys/<name>             wrapped master keys
//	data/<2-hex-prefix>/<id> pack files, fanned out by the first two characters of the id
//	index/<id>
//	snapshots/<id>
//	locks/<id>
//
// Writes are atomic: the data goes to a temporary file in the destination
// directory (".<name>.tmp-<random>"), is fsynced, renamed over the final name,
// and the directory is fsynced, so a crash leaves either the old object, the
// new one, or a stray temporary file that List ignores. Files are 0600 and
// directories 0700: the objects are encrypted, but their number and sizes are
// still nobody else's business.
package local

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

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

const (
	fileMode = 0o600
	dirMode  = 0o700
	// tmpMarker is part of every temporary file name; List skips dot-files.
	tmpMarker = ".tmp-"
)

// errUnsupportedSync is what filesystems that cannot fsync a directory return.
var errUnsupportedSync = syscall.EINVAL

// typeDirs maps each non-config type to its directory.
var typeDirs = map[repository.FileType]string{
	repository.KeyFile:      "keys",
	repository.PackFile:     "data",
	repository.IndexFile:    "index",
	repository.SnapshotFile: "snapshots",
	repository.LockFile:     "locks",
}

// Backend stores objects as files under a directory. Safe for concurrent use,
// including by several processes on several hosts sharing the directory (each
// object is written under a unique temporary name and renamed into place).
type Backend struct {
	root string
}

var _ repository.Backend = (*Backend)(nil)

// Create makes (if needed) the repository directory and its layout and returns
// a backend for it. It is fine if the directory already exists: Create does
// not know the repository format, so refusing to initialise twice is the
// repository's job (it checks for a config object).
func Create(path string) (*Backend, error) {
	root, err := cleanRoot(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, dirMode); err != nil {
		return nil, fmt.Errorf("local backend: create repository directory %s: %w (check the parent exists and is writable)", root, err)
	}
	b := &Backend{root: root}
	dirs := make([]string, 0, len(typeDirs)+256)
	for _, d := range typeDirs {
		dirs = append(dirs, filepath.Join(root, d))
	}
	// Pre-create the 256 pack fan-out directories so saves rarely need to.
	for i := range 256 {
		dirs = append(dirs, filepath.Join(root, "data", fmt.Sprintf("%02x", i)))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, fmt.Errorf("local backend: create %s: %w", d, err)
		}
	}
	if err := syncDir(root); err != nil {
		return nil, fmt.Errorf("local backend: sync %s: %w", root, err)
	}
	if err := syncDir(filepath.Join(root, "data")); err != nil {
		return nil, fmt.Errorf("local backend: sync %s: %w", filepath.Join(root, "data"), err)
	}
	return b, nil
}

// Open returns a backend for an existing directory. Missing type directories
// are created on first save, so a repository copied without empty directories
// (e.g. by some sync tools) still works.
func Open(path string) (*Backend, error) {
	root, err := cleanRoot(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local backend: repository directory %s does not exist (initialise a repository there first, or check the path and that the shared volume is mounted)", root)
	}
	if err != nil {
		return nil, fmt.Errorf("local backend: open repository directory %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local backend: %s is not a directory (a repository is a directory)", root)
	}
	return &Backend{root: root}, nil
}

func cleanRoot(path string) (string, error) {
	if path == "" {
		return "", errors.New("local backend: empty repository path (want an absolute directory, e.g. /var/lib/clusterguard/repo)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("local backend: repository path %q: %w", path, err)
	}
	return abs, nil
}

// Path returns the repository directory.
func (b *Backend) Path() string { return b.root }

// Location describes the backend for messages.
func (b *Backend) Location() string { return "local:" + b.root }

// Close does nothing: no handles are kept open between calls.
func (b *Backend) Close() error { return nil }

// dirOf returns the directory holding h and validates the name.
func (b *Backend) dirOf(h repository.Handle) (string, error) {
	if err := validName(h); err != nil {
		return "", err
	}
	if h.Type == repository.ConfigFile {
		for _, d := range typeDirs {
			if h.Name == d {
				return "", fmt.Errorf("local backend: config object name %q collides with the %s/ directory; use another name (the repository uses \"config\")", h.Name, d)
			}
		}
		return b.root, nil
	}
	d, ok := typeDirs[h.Type]
	if !ok {
		return "", fmt.Errorf("local backend: unknown object type %q for %q", h.Type, h.Name)
	}
	if h.Type == repository.PackFile {
		if len(h.Name) < 2 {
			return "", fmt.Errorf("local backend: pack name %q is shorter than the 2-character fan-out prefix (pack names are hex ids)", h.Name)
		}
		return filepath.Join(b.root, d, h.Name[:2]), nil
	}
	return filepath.Join(b.root, d), nil
}

func (b *Backend) pathOf(h repository.Handle) (string, error) {
	dir, err := b.dirOf(h)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, h.Name), nil
}

// validName rejects names that are empty, would leave their directory, or
// would be mistaken for temporary files.
func validName(h repository.Handle) error {
	switch {
	case h.Name == "":
		return fmt.Errorf("local backend: %s object with an empty name", h.Type)
	case strings.ContainsAny(h.Name, `/\`+"\x00"):
		return fmt.Errorf("local backend: %s name %q contains a path separator or NUL", h.Type, h.Name)
	case strings.HasPrefix(h.Name, "."):
		return fmt.Errorf("local backend: %s name %q starts with a dot (reserved for temporary files)", h.Type, h.Name)
	}
	return nil
}

// Save writes data to h atomically: temp file, write, fsync, rename, fsync dir.
func (b *Backend) Save(ctx context.Context, h repository.Handle, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local backend: save %s/%s: %w", h.Type, h.Name, err)
	}
	dir, err := b.dirOf(h)
	if err != nil {
		return err
	}
	final := filepath.Join(dir, h.Name)
	f, err := os.CreateTemp(dir, "."+h.Name+tmpMarker+"*")
	if errors.Is(err, fs.ErrNotExist) {
		// The type or fan-out directory is missing (Open on a copied
		// repository, or someone cleaned empty directories): make it.
		if err := b.mkdirSynced(dir); err != nil {
			return fmt.Errorf("local backend: save %s: %w", final, err)
		}
		f, err = os.CreateTemp(dir, "."+h.Name+tmpMarker+"*")
	}
	if err != nil {
		return fmt.Errorf("local backend: save %s: create temporary file: %w (check the directory is writable and the disk not full)", final, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600; Chmod pins it against unusual umask or
	// ACL defaults on shared volumes.
	if err := f.Chmod(fileMode); err != nil {
		return fmt.Errorf("local backend: save %s: chmod: %w", final, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("local backend: save %s: write %d bytes: %w (check free space)", final, len(data), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("local backend: save %s: fsync: %w", final, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("local backend: save %s: close: %w", final, err)
	}
	// Last chance to honour cancellation before the object becomes visible.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local backend: save %s: %w", final, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("local backend: save %s: rename into place: %w", final, err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("local backend: save %s: fsync directory: %w", final, err)
	}
	return nil
}

// mkdirSynced creates dir (and parents) and fsyncs the parent so the new
// directory entry survives a crash.
func (b *Backend) mkdirSynced(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	return syncDir(filepath.Dir(dir))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some filesystems (certain FUSE/SMB mounts) refuse fsync on
	// directories; the rename is still the best we can do there.
	if errors.Is(err, errUnsupportedSync) {
		return nil
	}
	return err
}

// Load reads length bytes at offset (length 0: to the end) with ReadAt.
func (b *Backend) Load(ctx context.Context, h repository.Handle, offset, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local backend: load %s/%s: %w", h.Type, h.Name, err)
	}
	p, err := b.pathOf(h)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local backend: load %s: %w", p, repository.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("local backend: load %s: %w", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("local backend: load %s: stat: %w", p, err)
	}
	size := fi.Size()
	end := size
	if length > 0 {
		end = offset + length
	}
	if offset < 0 || length < 0 || offset > size || end > size {
		return nil, fmt.Errorf("local backend: load %s: range offset %d length %d is outside the %d-byte object", p, offset, length, size)
	}
	buf := make([]byte, end-offset)
	n, err := f.ReadAt(buf, offset)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		return nil, fmt.Errorf("local backend: load %s: read %d bytes at %d: %w", p, len(buf), offset, err)
	}
	return buf, nil
}

// Stat reports the object's size.
func (b *Backend) Stat(ctx context.Context, h repository.Handle) (repository.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return repository.FileInfo{}, fmt.Errorf("local backend: stat %s/%s: %w", h.Type, h.Name, err)
	}
	p, err := b.pathOf(h)
	if err != nil {
		return repository.FileInfo{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return repository.FileInfo{}, fmt.Errorf("local backend: stat %s: %w", p, repository.ErrNotExist)
	}
	if err != nil {
		return repository.FileInfo{}, fmt.Errorf("local backend: stat %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return repository.FileInfo{}, fmt.Errorf("local backend: stat %s: not a regular file (something other than the repository wrote here)", p)
	}
	return repository.FileInfo{Name: h.Name, Size: fi.Size()}, nil
}

// Remove deletes h; an absent object is not an error.
func (b *Backend) Remove(ctx context.Context, h repository.Handle) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local backend: remove %s/%s: %w", h.Type, h.Name, err)
	}
	p, err := b.pathOf(h)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local backend: remove %s: %w", p, err)
	}
	return nil
}

// List calls fn for every object of type t. Directory entries are read before
// fn is called, so fn may save or remove objects.
func (b *Backend) List(ctx context.Context, t repository.FileType, fn func(repository.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local backend: list %s: %w", t, err)
	}
	var dirs []string
	switch {
	case t == repository.ConfigFile:
		dirs = []string{b.root}
	case t == repository.PackFile:
		top := filepath.Join(b.root, typeDirs[t])
		entries, err := os.ReadDir(top)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("local backend: list %s: %w", top, err)
		}
		for _, e := range entries {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				dirs = append(dirs, filepath.Join(top, e.Name()))
			}
		}
	default:
		d, ok := typeDirs[t]
		if !ok {
			return fmt.Errorf("local backend: list: unknown object type %q", t)
		}
		dirs = []string{filepath.Join(b.root, d)}
	}
	for _, dir := range dirs {
		if err := listDir(ctx, dir, fn); err != nil {
			return err
		}
	}
	return nil
}

func listDir(ctx context.Context, dir string, fn func(repository.FileInfo) error) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local backend: list %s: %w", dir, err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("local backend: list %s: %w", dir, err)
		}
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir (e.g. by a concurrent prune)
		}
		if err != nil {
			return fmt.Errorf("local backend: list %s: %w", filepath.Join(dir, e.Name()), err)
		}
		if err := fn(repository.FileInfo{Name: e.Name(), Size: fi.Size()}); err != nil {
			return err
		}
	}
	return nil
}
