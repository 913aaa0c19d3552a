package repository

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// RestoreOptions say where to restore and what.
type RestoreOptions struct {
	// Target directory; created if missing. Existing files at restored
	// paths are replaced. Nothing is ever written outside Target: entries
	// are created through an os.Root, so a symlink (restored or already
	// present) that points outside makes the write fail instead of escaping.
	Target string
	// Include limits the restore to these snapshot paths (slash-separated,
	// relative to the snapshot root) and everything below them.
	Include []string
	// Concurrency is the number of restore workers (default twice the
	// repository's worker count, as restore workers mostly wait for I/O).
	Concurrency int
	// KeepDamaged keeps files whose content could not be fully restored
	// (with the readable parts written) instead of removing them.
	KeepDamaged bool
	// KeepSetuid keeps the setuid and setgid bits of restored files. By
	// default they are dropped: a recovery point is data, and restoring it
	// should not hand out privileges (a setuid-root binary written into a
	// workload's path). Directories keep setgid, which only makes new
	// entries inherit the directory's group, and every entry keeps sticky.
	KeepSetuid bool
}

// RestoreStats summarise a restore.
type RestoreStats struct {
	Files        int64
	Dirs         int64
	Symlinks     int64
	Bytes        int64 // logical size of restored files
	BytesWritten int64 // data written (holes are not written)
	Damaged      []DamagedFile
	Duration     time.Duration
}

// Restore writes a snapshot (or the Include paths of it) into o.Target,
// in parallel, pack by pack, each pack read once. Zero runs become sparse
// holes; modes, owners (when running as root) and mtimes are restored. If
// some data is missing or corrupt, every other file is still restored and
// the error (a *DamageError) names the files that could not be.
func (r *Repository) Restore(ctx context.Context, snapshotID string, o RestoreOptions) (RestoreStats, error) {
	start := time.Now()
	var st RestoreStats
	if o.Target == "" {
		return st, errors.New("restore: no target directory given")
	}
	snap, err := r.Snapshot(ctx, snapshotID)
	if err != nil {
		return st, fmt.Errorf("restore: %w", err)
	}
	lk, err := r.lock(ctx, false, "restore")
	if err != nil {
		return st, err
	}
	defer lk.unlock(ctx)
	if _, err := r.syncIndex(ctx); err != nil {
		return st, fmt.Errorf("restore: load index: %w", err)
	}
	if err := os.MkdirAll(o.Target, 0o700); err != nil {
		return st, fmt.Errorf("restore: create target %s: %w", o.Target, err)
	}
	root, err := os.OpenRoot(o.Target)
	if err != nil {
		return st, fmt.Errorf("restore: open target %s: %w", o.Target, err)
	}
	defer func() { _ = root.Close() }()

	rs := &restoreSession{r: r, o: o, root: root, snap: snap, blobs: map[ID]*plannedBlob{},
		walkSem: make(chan struct{}, 7), asRoot: os.Geteuid() == 0}
	for _, inc := range o.Include {
		c := path.Clean(filepath.ToSlash(inc))
		if c == "." || c == "/" {
			rs.include = nil
			break
		}
		rs.include = append(rs.include, strings.TrimPrefix(c, "/"))
	}
	if err := rs.walk(ctx, snap.Tree, "", 0); err != nil {
		return st, err
	}
	rs.planData()
	for _, inc := range rs.include {
		if !rs.matched[inc] {
			return st, fmt.Errorf("restore: %s is not in snapshot %s: %w", inc, snap.ShortID(), ErrFileNotFound)
		}
	}
	workers := o.Concurrency
	if workers <= 0 {
		// Twice the CPUs: a worker often waits for a pack read or for the
		// filesystem to allocate an inode, and its buffers are small.
		workers = 2 * r.opts.Concurrency
	}
	if err := rs.writeData(ctx, workers); err != nil {
		return st, err
	}
	if err := rs.finish(ctx, workers); err != nil {
		return st, err
	}
	st = RestoreStats{
		Files: rs.nFiles, Dirs: rs.nDirs, Symlinks: rs.nLinks, Bytes: rs.bytes,
		BytesWritten: rs.written.Load(), Duration: time.Since(start),
	}
	for _, f := range rs.files {
		if f.damaged != "" {
			st.Damaged = append(st.Damaged, DamagedFile{Snapshot: snap.ID, Path: f.path, Reason: f.damaged})
		}
	}
	if len(st.Damaged) > 0 {
		return st, fmt.Errorf("restore of snapshot %s into %s: %w", snap.ShortID(), o.Target, &DamageError{Files: st.Damaged})
	}
	return st, nil
}

type restoreFile struct {
	seq       int // position in path order
	path      string
	node      *node
	mu        sync.Mutex
	created   bool
	f         *os.File
	remaining int // blobs still to write
	damaged   string
}

type blobTarget struct {
	file *restoreFile
	off  int64
}

type plannedBlob struct {
	loc     blobLoc
	targets []blobTarget
}

type restoreDir struct {
	path string
	node *node
}

type restoreSession struct {
	r       *Repository
	o       RestoreOptions
	root    *os.Root
	snap    Snapshot
	include []string
	matched map[string]bool

	mu      sync.Mutex // guards the lists and matched during the walk
	files   []*restoreFile
	dirs    []restoreDir
	links   []restoreDir
	blobs   map[ID]*plannedBlob
	walkSem chan struct{}
	asRoot  bool

	nFiles, nDirs, nLinks, bytes int64
	written                      atomic.Int64
}

// selected reports whether p is restored (fully) or only traversed.
func (rs *restoreSession) selected(p string) (full, traverse bool) {
	if len(rs.include) == 0 {
		return true, true
	}
	for _, inc := range rs.include {
		if p == inc || strings.HasPrefix(p, inc+"/") {
			if p == inc {
				rs.mu.Lock()
				if rs.matched == nil {
					rs.matched = map[string]bool{}
				}
				rs.matched[inc] = true
				rs.mu.Unlock()
			}
			return true, true
		}
		if strings.HasPrefix(inc, p+"/") {
			traverse = true
		}
	}
	return false, traverse
}

// walk loads the trees (subdirectories in parallel, which hides the
// latency of reading them) and creates the directories; files and symlinks
// are only listed here and created by the data and finish phases.
func (rs *restoreSession) walk(ctx context.Context, treeID ID, dir string, depth int) error {
	if depth > 4096 {
		return fmt.Errorf("restore: directory nesting deeper than 4096 at %s", dir)
	}
	t, err := rs.r.loadTree(ctx, treeID)
	if err != nil {
		return fmt.Errorf("restore: snapshot %s: directory %q: %w", rs.snap.ShortID(), dir, err)
	}
	type subdir struct {
		id   ID
		path string
	}
	var subdirs []subdir
	for _, nd := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := nd.Name
		if dir != "" {
			p = dir + "/" + nd.Name
		}
		full, traverse := rs.selected(p)
		if !full && (!traverse || nd.Type != NodeDir) {
			continue
		}
		osPath := filepath.FromSlash(p)
		switch nd.Type {
		case NodeDir:
			if err := rs.mkdir(osPath); err != nil {
				return err
			}
			rs.mu.Lock()
			rs.dirs = append(rs.dirs, restoreDir{path: osPath, node: nd})
			rs.mu.Unlock()
			subdirs = append(subdirs, subdir{nd.Subtree, p})
		case NodeSymlink:
			rs.mu.Lock()
			rs.links = append(rs.links, restoreDir{path: osPath, node: nd})
			rs.mu.Unlock()
		case NodeFile:
			rs.mu.Lock()
			rs.files = append(rs.files, &restoreFile{path: p, node: nd})
			rs.mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(subdirs))
	for i, sd := range subdirs {
		select {
		case rs.walkSem <- struct{}{}:
			wg.Add(1)
			go func() {
				defer func() { <-rs.walkSem; wg.Done() }()
				errs[i] = rs.walk(ctx, sd.id, sd.path, depth+1)
			}()
		default:
			errs[i] = rs.walk(ctx, sd.id, sd.path, depth+1)
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// planData orders the files and groups the data to write by blob.
func (rs *restoreSession) planData() {
	sort.Slice(rs.files, func(i, j int) bool { return rs.files[i].path < rs.files[j].path })
	rs.nDirs, rs.nLinks = int64(len(rs.dirs)), int64(len(rs.links))
	x := rs.r.index()
	for i, rf := range rs.files {
		rf.seq = i
		rs.nFiles++
		rs.bytes += int64(rf.node.Size)
		var off int64
		for _, c := range rf.node.Content {
			if !c.ID.IsZero() {
				pb := rs.blobs[c.ID]
				if pb == nil {
					loc, ok := x.lookup(c.ID)
					if !ok || loc.Type != dataBlob {
						rf.damaged = fmt.Sprintf("chunk %s is missing from the repository", c.ID.Short())
					} else {
						pb = &plannedBlob{loc: loc}
						rs.blobs[c.ID] = pb
					}
				}
				if pb != nil {
					if int64(pb.loc.RawLength) != int64(c.Length) {
						rf.damaged = fmt.Sprintf("chunk %s has length %d, file expects %d", c.ID.Short(), pb.loc.RawLength, c.Length)
					} else {
						pb.targets = append(pb.targets, blobTarget{file: rf, off: off})
						rf.remaining++
					}
				}
			}
			off += int64(c.Length)
		}
	}
}

func (rs *restoreSession) mkdir(p string) error {
	err := rs.root.Mkdir(p, 0o700)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("restore: create directory %s in %s: %w", p, rs.o.Target, err)
	}
	fi, lerr := rs.root.Lstat(p)
	if lerr == nil && fi.IsDir() {
		return nil
	}
	// Something else is in the way (a file, or a symlink that could lead
	// elsewhere): replace it.
	if err := rs.root.Remove(p); err != nil {
		return fmt.Errorf("restore: replace %s in %s with a directory: %w", p, rs.o.Target, err)
	}
	if err := rs.root.Mkdir(p, 0o700); err != nil {
		return fmt.Errorf("restore: create directory %s in %s: %w", p, rs.o.Target, err)
	}
	return nil
}

// removeExisting clears the way for a new file or symlink at p.
func (rs *restoreSession) removeExisting(p string) error {
	fi, err := rs.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore: inspect existing %s in %s: %w", p, rs.o.Target, err)
	}
	if fi.IsDir() {
		err = rs.root.RemoveAll(p)
	} else {
		err = rs.root.Remove(p)
	}
	if err != nil {
		return fmt.Errorf("restore: replace existing %s in %s: %w", p, rs.o.Target, err)
	}
	return nil
}

// create makes the file, empty and of its final size (unwritten ranges
// stay holes), replacing whatever was at its path. Called with f.mu held.
func (rs *restoreSession) create(f *restoreFile) error {
	osPath := filepath.FromSlash(f.path)
	h, err := rs.root.OpenFile(osPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if err := rs.removeExisting(osPath); err != nil {
			return err
		}
		h, err = rs.root.OpenFile(osPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	}
	if err != nil {
		return fmt.Errorf("restore: create %s in %s: %w", osPath, rs.o.Target, err)
	}
	// Sized up front only when the file ends in a hole: otherwise writing
	// the last chunk gives it its size (one syscall less per small file).
	if n := len(f.node.Content); n > 0 && (f.node.Content[n-1].ID.IsZero() || f.damaged != "") {
		if err := h.Truncate(int64(f.node.Size)); err != nil {
			_ = h.Close() // the error that matters is the truncate's
			return fmt.Errorf("restore: size %s in %s: %w", osPath, rs.o.Target, err)
		}
	}
	f.f, f.created = h, true
	return nil
}

// done closes a file whose last blob was handled and, if it is intact,
// applies its metadata. Called with f.mu held.
func (rs *restoreSession) done(f *restoreFile) error {
	if f.f == nil {
		return nil
	}
	var err error
	if f.damaged == "" {
		err = rs.applyFileMeta(f)
	}
	if cerr := f.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("restore: close %s in %s: %w", f.path, rs.o.Target, cerr)
	}
	f.f = nil
	return err
}

// applyFileMeta sets owner, mode and times through the open descriptor.
func (rs *restoreSession) applyFileMeta(f *restoreFile) error {
	nd := f.node
	if rs.asRoot {
		if err := f.f.Chown(int(nd.UID), int(nd.GID)); err != nil {
			return fmt.Errorf("restore: set owner of %s in %s: %w", f.path, rs.o.Target, err)
		}
	}
	mode := nd.Mode & modeMask
	if !rs.o.KeepSetuid {
		mode &^= fs.ModeSetuid | fs.ModeSetgid
	}
	// After the chown above, which would clear the bits.
	if err := f.f.Chmod(mode); err != nil {
		return fmt.Errorf("restore: set mode of %s in %s: %w", f.path, rs.o.Target, err)
	}
	if err := setFileTimes(f.f, nd.MTime); err != nil {
		return fmt.Errorf("restore: set mtime of %s in %s: %w", f.path, rs.o.Target, err)
	}
	return nil
}

// readSpan is a contiguous byte range of a pack read with one Load.
type readSpan struct {
	order spanOrder
	pack  ID
	start int64
	end   int64
	blobs []*plannedBlob
}

const maxReadSpan = 4 << 20

// spans groups the planned blobs by pack into contiguous reads, merging
// blobs separated by small gaps (reading a little extra beats a request).
func (rs *restoreSession) spans() []readSpan {
	byPack := map[ID][]*plannedBlob{}
	for _, pb := range rs.blobs {
		byPack[pb.loc.Pack] = append(byPack[pb.loc.Pack], pb)
	}
	var out []readSpan
	for pack, bs := range byPack {
		sort.Slice(bs, func(i, j int) bool { return bs[i].loc.Offset < bs[j].loc.Offset })
		var cur *readSpan
		for _, pb := range bs {
			s, e := int64(pb.loc.Offset), int64(pb.loc.Offset)+int64(pb.loc.Length)
			if cur != nil && s-cur.end <= 256<<10 && e-cur.start <= maxReadSpan {
				cur.end = max(cur.end, e)
				cur.blobs = append(cur.blobs, pb)
				continue
			}
			out = append(out, readSpan{pack: pack, start: s, end: e, blobs: []*plannedBlob{pb}})
			cur = &out[len(out)-1]
		}
	}
	// Write files front to back as far as possible: sequential writes let
	// the filesystem allocate contiguous extents, which is much cheaper
	// than filling a sparse file in random order.
	for i := range out {
		out[i].order = out[i].firstTarget()
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].order, out[j].order
		if a.file != b.file {
			return a.file < b.file
		}
		if a.off != b.off {
			return a.off < b.off
		}
		if out[i].pack != out[j].pack {
			return strings.Compare(out[i].pack.String(), out[j].pack.String()) < 0
		}
		return out[i].start < out[j].start
	})
	return out
}

type spanOrder struct {
	file int
	off  int64
}

// firstTarget is the earliest (file, offset) the span writes to.
func (sp *readSpan) firstTarget() spanOrder {
	o := spanOrder{file: int(^uint(0) >> 1)}
	for _, pb := range sp.blobs {
		for _, t := range pb.targets {
			if t.file.seq < o.file || (t.file.seq == o.file && t.off < o.off) {
				o = spanOrder{file: t.file.seq, off: t.off}
			}
		}
	}
	return o
}

func (rs *restoreSession) writeData(ctx context.Context, workers int) error {
	spans := rs.spans()
	work := make(chan *readSpan)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(work)
		for i := range spans {
			select {
			case work <- &spans[i]:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			var scratch []byte
			for sp := range work {
				var err error
				scratch, err = rs.restoreSpan(gctx, sp, scratch)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	for _, f := range rs.files { // close anything left open by an error
		if f.f != nil {
			_ = f.f.Close() // already failing; the first error is returned
			f.f = nil
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("restore interrupted: %w", ctx.Err())
		}
		return err
	}
	return nil
}

// restoreSpan reads one span and writes its blobs to their files. Read
// or authentication failures mark the affected files damaged and are not
// errors; failures to write the target are.
func (rs *restoreSession) restoreSpan(ctx context.Context, sp *readSpan, scratch []byte) ([]byte, error) {
	data, err := rs.r.be.Load(ctx, Handle{Type: PackFile, Name: sp.pack.String()}, sp.start, sp.end-sp.start)
	if err == nil && int64(len(data)) != sp.end-sp.start {
		err = fmt.Errorf("short read: %d of %d bytes (pack truncated?)", len(data), sp.end-sp.start)
	}
	if err != nil {
		if ctx.Err() != nil {
			return scratch, ctx.Err()
		}
		for _, pb := range sp.blobs {
			if err := rs.blobFailed(pb, fmt.Sprintf("pack %s unreadable: %v", sp.pack.Short(), err)); err != nil {
				return scratch, err
			}
		}
		return scratch, nil
	}
	for _, pb := range sp.blobs {
		lo := int64(pb.loc.Offset) - sp.start
		sealed := data[lo : lo+int64(pb.loc.Length)]
		content, err := rs.r.openBlob(pb.loc.blobEntry, sealed, scratch)
		if err != nil {
			if err := rs.blobFailed(pb, fmt.Sprintf("chunk %s in pack %s: %v", pb.loc.ID.Short(), sp.pack.Short(), err)); err != nil {
				return scratch, err
			}
			continue
		}
		if pb.loc.Flags&flagCompressed != 0 {
			scratch = content
		}
		for _, t := range pb.targets {
			if err := rs.writeTo(t, content); err != nil {
				return scratch, err
			}
		}
	}
	return scratch, nil
}

func (rs *restoreSession) blobFailed(pb *plannedBlob, reason string) error {
	for _, t := range pb.targets {
		f := t.file
		f.mu.Lock()
		if f.damaged == "" {
			f.damaged = reason
		}
		f.remaining--
		var err error
		if f.remaining == 0 {
			err = rs.done(f)
		}
		f.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func (rs *restoreSession) writeTo(t blobTarget, content []byte) error {
	f := t.file
	f.mu.Lock()
	if !f.created {
		if err := rs.create(f); err != nil {
			f.mu.Unlock()
			return err
		}
	}
	h := f.f
	f.mu.Unlock()
	if _, err := h.WriteAt(content, t.off); err != nil {
		return fmt.Errorf("restore: write %s in %s: %w", f.path, rs.o.Target, err)
	}
	rs.written.Add(int64(len(content)))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remaining--
	if f.remaining == 0 {
		return rs.done(f)
	}
	return nil
}

// finish creates the files that had no data to write (empty, all holes),
// removes damaged ones, creates symlinks, and sets directory metadata
// deepest first (creating entries changes a directory's mtime).
func (rs *restoreSession) finish(ctx context.Context, workers int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers * 2)
	for _, f := range rs.files {
		if f.remaining != 0 {
			continue // cannot happen after a complete data phase
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			switch {
			case f.damaged != "" && !rs.o.KeepDamaged:
				if f.created {
					if err := rs.root.Remove(filepath.FromSlash(f.path)); err != nil {
						return fmt.Errorf("restore: remove damaged %s from %s: %w", f.path, rs.o.Target, err)
					}
				}
				return nil
			case !f.created:
				if err := rs.create(f); err != nil {
					return err
				}
				return rs.done(f)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, l := range rs.links {
		if err := rs.removeExisting(l.path); err != nil {
			return err
		}
		if err := rs.root.Symlink(l.node.Target, l.path); err != nil {
			return fmt.Errorf("restore: create symlink %s in %s: %w", l.path, rs.o.Target, err)
		}
		if rs.asRoot {
			_ = rs.root.Lchown(l.path, int(l.node.UID), int(l.node.GID))
		}
	}
	sort.SliceStable(rs.dirs, func(i, j int) bool {
		return strings.Count(rs.dirs[i].path, string(filepath.Separator)) > strings.Count(rs.dirs[j].path, string(filepath.Separator))
	})
	for _, d := range rs.dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := rs.applyMeta(d.path, d.node); err != nil {
			return err
		}
	}
	return nil
}

func (rs *restoreSession) applyMeta(p string, nd *node) error {
	if rs.asRoot {
		if err := rs.root.Lchown(p, int(nd.UID), int(nd.GID)); err != nil {
			return fmt.Errorf("restore: set owner of %s in %s: %w", p, rs.o.Target, err)
		}
	}
	if err := rs.root.Chmod(p, nd.Mode&modeMask); err != nil {
		return fmt.Errorf("restore: set mode of %s in %s: %w", p, rs.o.Target, err)
	}
	mt := time.Unix(0, nd.MTime)
	if err := rs.root.Chtimes(p, mt, mt); err != nil {
		return fmt.Errorf("restore: set mtime of %s in %s: %w", p, rs.o.Target, err)
	}
	return nil
}
