package repository

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Range is a byte range of a file.
type Range struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// ErrParentBlocksUnusable: with BackupOptions.RangesOnly, a hinted file
// has no parent whose blocks can be reused (no parent, another block size,
// or data missing from the index); read it whole and back up again.
var ErrParentBlocksUnusable = errors.New("the parent snapshot's blocks of this file cannot be reused; read the file whole")

// NoParent as BackupOptions.Parent reads every file.
const NoParent = "none"

// Defaults for fixed-size chunking. Blocks of 256 KiB keep the read
// amplification of changed-range hints low (a hinted range costs at most
// one extra block at each end, and dirty bitmaps are typically 64 KiB
// granular) at about 40 bytes of index and tree per block.
const (
	DefaultFixedSizeThreshold = 64 << 20
	DefaultFixedBlockSize     = 256 << 10
)

// BackupOptions say what to back up and how.
type BackupOptions struct {
	// Root is the directory the snapshot is taken of; restore recreates its
	// content under a target directory.
	Root string
	// Paths, relative to Root (slash- or OS-separated), limit the backup to
	// these files or directories (and the directories leading to them).
	// Empty means all of Root.
	Paths []string
	Meta  SnapshotMeta
	// Parent is the snapshot whose unchanged files (same size, mtime and
	// inode) are reused without reading them: "" picks the latest snapshot
	// with the same workload, cluster and group; NoParent disables reuse;
	// anything else is a snapshot id or prefix.
	Parent string
	// ChangedRanges maps a file path (relative to Root, slash-separated) to
	// the byte ranges changed since the parent snapshot, e.g. from a VM
	// dirty bitmap. Such a file is chunked in fixed-size blocks, and blocks
	// outside the ranges are taken from the parent without reading them.
	// The hints are trusted: a wrong hint silently keeps stale data.
	ChangedRanges map[string][]Range
	// RangesOnly: the hinted files hold valid data only inside their
	// ranges' blocks (a sparse file of the changed extents), so a hinted
	// file whose parent blocks cannot be reused fails the backup with
	// ErrParentBlocksUnusable instead of being read whole.
	RangesOnly bool
	// FixedSizeThreshold: files at least this big are chunked in fixed-size
	// blocks (suits disk images, whose writes are block-aligned). 0 means
	// DefaultFixedSizeThreshold; negative means never (unless hinted).
	FixedSizeThreshold int64
	// FixedBlockSize for fixed-size chunking. 0 means DefaultFixedBlockSize.
	FixedBlockSize int
	// SecureBlockCompare: without hints, take a block of a changed
	// fixed-block file from the parent only if its keyed BLAKE3 content id
	// matches, not its fast hash (blockhash.go); for files whose writers
	// are not trusted. Costs about twice the CPU of such a re-read.
	SecureBlockCompare bool
	// Concurrency overrides the repository's worker count for this backup.
	Concurrency int
	// IgnoreInode recognises unchanged files by size and mtime alone: for
	// a Root whose files get new inodes on every backup (a reflink view).
	IgnoreInode bool
	// RootName, when set, is recorded as the snapshot's root instead of
	// Root (a Root such as /proc/self/fd/N names nothing to a reader).
	RootName string
	// Progress, if set, is called about every ProgressInterval (default 1s)
	// and once at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Progress is a running account of a backup.
type Progress struct {
	FilesDone  int64
	BytesDone  int64 // logical bytes of finished files
	BytesRead  int64
	BytesAdded int64
	Elapsed    time.Duration
}

// BackupStats summarise a finished backup.
type BackupStats struct {
	Files          int64 // regular files in the snapshot
	Dirs           int64
	Symlinks       int64
	FilesNew       int64 // not in the parent
	FilesChanged   int64 // in the parent but read again
	FilesUnchanged int64 // reused from the parent without reading
	Skipped        []string
	Bytes          int64 // logical size of all files
	BytesRead      int64 // read from disk
	BytesAdded     int64 // written in new packs (after compression and encryption)
	ChunksAdded    int64
	BlocksReused   int64 // fixed blocks of changed files found equal to the parent's (no hints)
	Parent         string
	Duration       time.Duration
}

// Backup stores a snapshot of o.Root (or of o.Paths under it). It holds a
// shared lock, so several backups may run at once, but not during a prune.
// A backup that fails or is interrupted leaves the repository valid: data
// uploaded so far is kept for the next run to reuse, and no snapshot refers
// to anything not stored.
func (r *Repository) Backup(ctx context.Context, o BackupOptions) (Snapshot, BackupStats, error) {
	start := time.Now()
	s, err := r.newBackupSession(ctx, o)
	if err != nil {
		return Snapshot{}, BackupStats{}, err
	}
	lk, err := r.lock(ctx, false, "backup")
	if err != nil {
		return Snapshot{}, BackupStats{}, err
	}
	defer lk.unlock(ctx)
	if _, err := r.syncIndex(ctx); err != nil {
		return Snapshot{}, BackupStats{}, fmt.Errorf("backup of %s: load index: %w", o.Root, err)
	}
	if err := s.findParent(ctx); err != nil {
		return Snapshot{}, BackupStats{}, err
	}
	stopProgress := s.startProgress(start)
	treeID, err := s.run(ctx)
	stopProgress()
	// Whatever happened, index what was uploaded so a rerun can reuse it.
	if serr := r.saveUnsaved(context.WithoutCancel(ctx)); serr != nil && err == nil {
		err = fmt.Errorf("backup of %s: save index: %w", o.Root, serr)
	}
	if err != nil {
		return Snapshot{}, s.statsNow(start), err
	}
	st := s.statsNow(start)
	snap := Snapshot{
		SnapshotMeta: o.Meta, Root: cmp.Or(o.RootName, s.root), Paths: s.paths, Tree: treeID, Hostname: r.opts.Hostname,
		Summary: SnapshotSummary{Files: st.Files, Dirs: st.Dirs, Bytes: st.Bytes, BytesRead: st.BytesRead, BytesAdded: st.BytesAdded, DurationMS: st.Duration.Milliseconds()},
	}
	if snap.Time.IsZero() {
		snap.Time = r.opts.Now()
	}
	if s.parent != nil {
		snap.Parent = s.parent.ID
	}
	if err := r.saveSnapshot(ctx, &snap); err != nil {
		return Snapshot{}, st, fmt.Errorf("backup of %s: %w", o.Root, err)
	}
	return snap, st, nil
}

type backupSession struct {
	r         *Repository
	o         BackupOptions
	root      string
	paths     []string
	sel       *selection
	ranges    map[string][]Range // changed-range hints by snapshot path
	blockSize int
	threshold int64
	workers   int
	uploaders int
	readers   int

	parent     *Snapshot
	parentTree ID

	fileCh  chan *fileJob
	chunkCh chan *chunkJob
	packCh  chan *finishedPack

	bufs       *bufPools
	packBufs   *bufRing
	windows    *bufRing // readCDC windows
	dataPacker *packer
	treePacker *packer

	inflightMu sync.Mutex
	inflight   map[ID]struct{}

	filesMu sync.Mutex
	files   []*fileState

	walkSem chan struct{} // extra directory walkers
	scans   chan struct{} // readFixedScan slots (each holds up to ~9 MiB)

	skippedMu sync.Mutex
	skipped   []string

	nFiles, nDirs, nLinks               atomic.Int64
	filesNew, filesChanged, filesReused atomic.Int64
	bytesTotal, bytesRead, bytesAdded   atomic.Int64
	chunksAdded, filesDone, bytesDone   atomic.Int64
	blocksReused                        atomic.Int64
	packsSinceSave                      atomic.Int64
}

// selection is the set of paths chosen under the root, as a trie.
type selection struct {
	all      bool // everything below is included
	children map[string]*selection
}

func (r *Repository) newBackupSession(ctx context.Context, o BackupOptions) (*backupSession, error) {
	if o.Root == "" {
		return nil, errors.New("backup: no root directory given")
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, fmt.Errorf("backup: resolve root %q: %w", o.Root, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("backup: root %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("backup: root %s is not a directory", root)
	}
	switch o.Meta.Consistency {
	case "", ConsistencyApplication, ConsistencyCrash:
	default:
		return nil, fmt.Errorf("backup: consistency %q must be %q or %q", o.Meta.Consistency, ConsistencyApplication, ConsistencyCrash)
	}
	s := &backupSession{r: r, o: o, root: root, inflight: map[ID]struct{}{}}
	s.sel = &selection{all: len(o.Paths) == 0}
	for _, p := range o.Paths {
		clean := path.Clean(filepath.ToSlash(p))
		if clean == "." || clean == "" {
			s.sel = &selection{all: true}
			s.paths = nil
			break
		}
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, fmt.Errorf("backup: path %q is not inside root %s; give paths relative to the root", p, root)
		}
		s.paths = append(s.paths, clean)
		cur := s.sel
		for _, part := range strings.Split(clean, "/") {
			if cur.all {
				break
			}
			if cur.children == nil {
				cur.children = map[string]*selection{}
			}
			next := cur.children[part]
			if next == nil {
				next = &selection{}
				cur.children[part] = next
			}
			cur = next
		}
		cur.all = true
	}
	sort.Strings(s.paths)
	// Hint keys are compared with snapshot paths, so normalise them
	// ("./disk.img" and "disk.img" are the same file).
	s.ranges = make(map[string][]Range, len(o.ChangedRanges))
	for p, rs := range o.ChangedRanges {
		for _, rg := range rs {
			if rg.Offset < 0 || rg.Length < 0 {
				return nil, fmt.Errorf("backup: changed range %+v of %s is negative", rg, p)
			}
		}
		s.ranges[cleanSnapPath(p)] = rs
	}
	s.blockSize = o.FixedBlockSize
	if s.blockSize == 0 {
		s.blockSize = DefaultFixedBlockSize
	}
	if s.blockSize < 4096 || s.blockSize > maxChunkLimit {
		return nil, fmt.Errorf("backup: fixed block size %d outside 4096..%d", s.blockSize, maxChunkLimit)
	}
	s.threshold = o.FixedSizeThreshold
	if s.threshold == 0 {
		s.threshold = DefaultFixedSizeThreshold
	}
	s.workers = o.Concurrency
	if s.workers <= 0 {
		s.workers = r.opts.Concurrency
	}
	bufSize := max(r.cfg.Chunker.Max, s.blockSize)
	s.bufs = newBufPools(bufSize)
	// One pack filling and one per uploader: 48 MiB with the defaults.
	s.uploaders = 2
	// Many readers keep several reads in flight, which hides per-file
	// latency (cold caches, network filesystems); they hold little memory
	// as small files are read straight into chunk-sized buffers and only
	// two large files at a time get a streaming window.
	s.readers = max(8, 2*s.workers)
	s.windows = newBufRing(2, 2*r.cfg.Chunker.Max)
	s.scans = make(chan struct{}, 2)
	s.packBufs = newBufRing(s.uploaders+1, packBufSize(r.opts.PackSize, bufSize))
	s.fileCh = make(chan *fileJob, 64)
	s.walkSem = make(chan struct{}, 7) // cold metadata reads are latency-bound
	s.chunkCh = make(chan *chunkJob, s.workers)
	s.packCh = make(chan *finishedPack)
	s.dataPacker = newPacker(r, r.opts.PackSize, s.packCh, s.packBufs)
	treeTarget := max(r.opts.PackSize/4, 1<<20)
	// Tree packs are small; a rare huge directory grows its buffer.
	s.treePacker = newPacker(r, treeTarget, s.packCh, newBufRing(2, treeTarget+64<<10))
	return s, nil
}

func (s *backupSession) findParent(ctx context.Context) error {
	switch s.o.Parent {
	case NoParent:
		return nil
	case "":
		all, err := s.r.Snapshots(ctx, SnapshotFilter{})
		if err != nil {
			return fmt.Errorf("backup of %s: list snapshots to find a parent: %w", s.root, err)
		}
		for _, sn := range all {
			if sn.Workload == s.o.Meta.Workload && sn.Cluster == s.o.Meta.Cluster && sn.Group == s.o.Meta.Group {
				sn := sn
				s.parent = &sn
				break
			}
		}
	default:
		sn, err := s.r.Snapshot(ctx, s.o.Parent)
		if err != nil {
			return fmt.Errorf("backup of %s: parent: %w", s.root, err)
		}
		s.parent = &sn
	}
	if s.parent != nil {
		s.parentTree = s.parent.Tree
	}
	return nil
}

func (s *backupSession) statsNow(start time.Time) BackupStats {
	st := BackupStats{
		Files: s.nFiles.Load(), Dirs: s.nDirs.Load(), Symlinks: s.nLinks.Load(),
		FilesNew: s.filesNew.Load(), FilesChanged: s.filesChanged.Load(), FilesUnchanged: s.filesReused.Load(),
		Bytes: s.bytesTotal.Load(), BytesRead: s.bytesRead.Load(), BytesAdded: s.bytesAdded.Load(),
		ChunksAdded: s.chunksAdded.Load(), BlocksReused: s.blocksReused.Load(), Duration: time.Since(start),
	}
	s.skippedMu.Lock()
	st.Skipped = append([]string(nil), s.skipped...)
	s.skippedMu.Unlock()
	if s.parent != nil {
		st.Parent = s.parent.ID
	}
	return st
}

func (s *backupSession) startProgress(start time.Time) (stop func()) {
	if s.o.Progress == nil {
		return func() {}
	}
	interval := s.o.ProgressInterval
	if interval <= 0 {
		interval = time.Second
	}
	report := func() {
		s.o.Progress(Progress{
			FilesDone: s.filesDone.Load(), BytesDone: s.bytesDone.Load(), BytesRead: s.bytesRead.Load(),
			BytesAdded: s.bytesAdded.Load(), Elapsed: time.Since(start),
		})
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				report()
				return
			case <-t.C:
				report()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// claim reports whether the caller should store blob id: false when it is
// already in the repository or another worker is storing it.
func (s *backupSession) claim(id ID) bool {
	if s.r.index().has(id) {
		return false
	}
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	if _, ok := s.inflight[id]; ok {
		return false
	}
	s.inflight[id] = struct{}{}
	return true
}

// fileState collects a file's content pieces, filled in by chunk workers
// in any order.
type fileState struct {
	node    *node
	mu      sync.Mutex
	content []contentRef
}

func (f *fileState) reserve(ref contentRef) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.content = append(f.content, ref)
	return len(f.content) - 1
}

func (f *fileState) set(i int, ref contentRef) {
	f.mu.Lock()
	f.content[i] = ref
	f.mu.Unlock()
}

type fileJob struct {
	abs, rel string
	st       *fileState
	fixed    bool
	parent   *node   // fixed mode with hints: blocks to reuse
	ranges   []Range // changed ranges (with parent)
	base     *node   // fixed mode without hints: parent to compare blocks with
}

type chunkJob struct {
	f   *fileState
	idx int
	buf *[]byte
	n   int
}

// dirState is a directory being built: its entries and, for subdirectories,
// their own states.
type dirState struct {
	nodes []*node
	sub   []*dirState
}

// run executes the pipeline and returns the root tree id.
func (s *backupSession) run(ctx context.Context) (ID, error) {
	g, gctx := errgroup.WithContext(ctx)
	for range s.uploaders {
		g.Go(func() error { return s.uploader(gctx) })
	}
	var root ID
	g.Go(func() error {
		defer close(s.packCh)
		var err error
		root, err = s.produce(gctx)
		return err
	})
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return ID{}, fmt.Errorf("backup of %s interrupted: %w", s.root, ctx.Err())
		}
		return ID{}, err
	}
	return root, nil
}

// produce runs walk → read/chunk → hash/compress/encrypt, then stores the
// trees and flushes the packers.
func (s *backupSession) produce(ctx context.Context) (ID, error) {
	g, gctx := errgroup.WithContext(ctx)
	var rootDir *dirState
	g.Go(func() error {
		defer close(s.fileCh)
		var parent *tree
		if !s.parentTree.IsZero() {
			t, err := s.r.loadTree(gctx, s.parentTree)
			if err != nil {
				// A damaged parent only costs speed: read everything.
				s.skip(fmt.Sprintf("parent snapshot %s unreadable, reading all files: %v", s.parent.ShortID(), err))
			} else {
				parent = t
			}
		}
		var err error
		rootDir, err = s.walkDir(gctx, s.root, "", s.sel, parent)
		return err
	})
	var readers sync.WaitGroup
	for range s.readers {
		readers.Add(1)
		g.Go(func() error {
			defer readers.Done()
			for job := range s.fileCh {
				if err := s.readFile(gctx, job); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		readers.Wait()
		close(s.chunkCh)
		return nil
	})
	for range s.workers {
		g.Go(func() error { return s.chunkWorker(gctx) })
	}
	if err := g.Wait(); err != nil {
		return ID{}, err
	}
	// All content is known now.
	for _, f := range s.files {
		f.node.Content = f.content
		var sum uint64
		for _, c := range f.content {
			sum += uint64(c.Length)
		}
		f.node.Size = sum
		s.bytesTotal.Add(int64(sum))
	}
	w := s.r.newBlobWorker()
	root, err := s.storeTree(ctx, rootDir, w)
	if err != nil {
		return ID{}, err
	}
	if err := s.dataPacker.flush(ctx); err != nil {
		return ID{}, err
	}
	if err := s.treePacker.flush(ctx); err != nil {
		return ID{}, err
	}
	return root, nil
}

func (s *backupSession) skip(msg string) {
	s.skippedMu.Lock()
	s.skipped = append(s.skipped, msg)
	s.skippedMu.Unlock()
}

// walkDir builds the state of directory abs (rel within the root) and
// queues the files that must be read.
func (s *backupSession) walkDir(ctx context.Context, abs, rel string, sel *selection, parent *tree) (*dirState, error) {
	var names []string
	if sel.all {
		ents, err := os.ReadDir(abs)
		if err != nil {
			return nil, fmt.Errorf("backup: read directory %s: %w", abs, err)
		}
		for _, e := range ents {
			names = append(names, e.Name())
		}
	} else {
		for n := range sel.children {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	d := &dirState{}
	type subdir struct {
		i        int
		abs, rel string
		sel      *selection
		parent   *node
	}
	var subdirs []subdir
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cabs := filepath.Join(abs, name)
		crel := name
		if rel != "" {
			crel = rel + "/" + name
		}
		fi, err := os.Lstat(cabs)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				if !sel.all {
					return nil, fmt.Errorf("backup: path %s does not exist under %s", crel, s.root)
				}
				s.skip(crel + ": vanished during the backup")
				continue
			}
			return nil, fmt.Errorf("backup: %w", err)
		}
		if !validName(name) {
			s.skip(crel + ": name cannot be stored")
			continue
		}
		nd := nodeFromInfo(name, fi)
		var pn *node
		if parent != nil {
			pn = parent.find(name)
		}
		switch {
		case fi.IsDir():
			childSel := sel
			if !sel.all {
				childSel = sel.children[name]
			}
			subdirs = append(subdirs, subdir{i: len(d.nodes), abs: cabs, rel: crel, sel: childSel, parent: pn})
			s.nDirs.Add(1)
		case fi.Mode()&fs.ModeSymlink != 0:
			nd.Target, err = os.Readlink(cabs)
			if err != nil {
				return nil, fmt.Errorf("backup: read symlink %s: %w", cabs, err)
			}
			s.nLinks.Add(1)
		case fi.Mode().IsRegular():
			s.nFiles.Add(1)
			if err := s.planFile(ctx, cabs, crel, nd, pn); err != nil {
				return nil, err
			}
		default:
			s.skip(crel + ": " + fi.Mode().Type().String() + " files are not backed up")
			continue
		}
		d.nodes = append(d.nodes, nd)
		d.sub = append(d.sub, nil)
	}
	// Subdirectories are walked in parallel while walker slots are free
	// (stat calls and parent-tree loads overlap), inline otherwise.
	var wg sync.WaitGroup
	errs := make([]error, len(subdirs))
	for k, sd := range subdirs {
		walk := func() {
			var ptree *tree
			if sd.parent != nil && sd.parent.Type == NodeDir {
				if t, err := s.r.loadTree(ctx, sd.parent.Subtree); err == nil {
					ptree = t
				}
			}
			d.sub[sd.i], errs[k] = s.walkDir(ctx, sd.abs, sd.rel, sd.sel, ptree)
		}
		select {
		case s.walkSem <- struct{}{}:
			wg.Add(1)
			go func() {
				defer func() { <-s.walkSem; wg.Done() }()
				walk()
			}()
		default:
			walk()
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

func nodeFromInfo(name string, fi fs.FileInfo) *node {
	nd := &node{Name: name, Mode: fi.Mode() & modeMask, MTime: fi.ModTime().UnixNano()}
	switch {
	case fi.IsDir():
		nd.Type = NodeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		nd.Type = NodeSymlink
	default:
		nd.Type = NodeFile
		nd.Size = uint64(fi.Size())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		nd.UID, nd.GID, nd.Inode = st.Uid, st.Gid, st.Ino
	}
	return nd
}

// indexed reports whether every stored piece of nd is in the index (so
// reusing it cannot produce a snapshot that refers to missing data).
func (s *backupSession) indexed(nd *node) bool {
	x := s.r.index()
	for _, c := range nd.Content {
		if !c.ID.IsZero() && !x.has(c.ID) {
			return false
		}
	}
	return true
}

// RacyMargin: a parent file modified less than this before the parent
// snapshot was taken (or after) is read again even when its size and
// modification time still match. File systems stamp times with a coarse
// clock (a few milliseconds), so a file rewritten in place at the same size
// right after a backup read it can keep the very same modification time;
// like git's "racily clean" entries, such a match proves nothing.
const RacyMargin = 2 * time.Second

// racy reports whether the parent's record of a file is too close to the
// parent snapshot's time to trust a size and time match. It assumes the
// clock that stamped the snapshot and the file system's agree within the
// margin: a time far from the snapshot's says nothing either way.
func (s *backupSession) racy(pn *node) bool {
	if s.parent == nil {
		return false
	}
	at := s.parent.Time
	return pn.MTime >= at.Add(-RacyMargin).UnixNano() && pn.MTime <= at.Add(RacyMargin).UnixNano()
}

// planFile decides how to get a file's content: reuse the parent's, read
// the changed blocks only, or read it all.
func (s *backupSession) planFile(ctx context.Context, abs, rel string, nd, pn *node) error {
	if pn != nil && pn.Type != NodeFile {
		pn = nil
	}
	ranges, hinted := s.ranges[rel]
	if pn == nil {
		s.filesNew.Add(1)
	}
	if !hinted && pn != nil && pn.Size == nd.Size && pn.MTime == nd.MTime && (pn.Inode == nd.Inode || s.o.IgnoreInode) && !s.racy(pn) && s.indexed(pn) {
		nd.Content, nd.BlockSize, nd.FastHash = pn.Content, pn.BlockSize, pn.FastHash
		s.filesReused.Add(1)
		s.filesDone.Add(1)
		s.bytesTotal.Add(int64(nd.Size))
		s.bytesDone.Add(int64(nd.Size))
		return nil
	}
	if pn != nil {
		s.filesChanged.Add(1)
	}
	st := &fileState{node: nd}
	s.filesMu.Lock()
	s.files = append(s.files, st)
	s.filesMu.Unlock()
	job := &fileJob{abs: abs, rel: rel, st: st}
	job.fixed = hinted || (s.threshold > 0 && int64(nd.Size) >= s.threshold)
	if job.fixed {
		nd.BlockSize = uint32(s.blockSize)
	}
	if hinted && pn != nil && pn.BlockSize == uint32(s.blockSize) && s.indexed(pn) {
		job.parent, job.ranges = pn, ranges
	}
	if job.fixed && !hinted && pn != nil && pn.BlockSize == uint32(s.blockSize) && s.indexed(pn) {
		job.base = pn
	}
	if hinted && s.o.RangesOnly && job.parent == nil {
		return fmt.Errorf("backup: %s: %w", rel, ErrParentBlocksUnusable)
	}
	select {
	case s.fileCh <- job:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bufPools hands out chunk buffers in power-of-two size classes, so small
// files do not each pin a max-chunk-sized buffer while in flight.
type bufPools struct {
	max     int
	classes []sync.Pool // class i holds buffers of 64 KiB << i
}

func newBufPools(maxSize int) *bufPools {
	p := &bufPools{max: maxSize}
	for sz := 64 << 10; ; sz <<= 1 {
		size := min(sz, maxSize)
		p.classes = append(p.classes, sync.Pool{New: func() any { b := make([]byte, size); return &b }})
		if sz >= maxSize {
			break
		}
	}
	return p
}

func (p *bufPools) class(n int) int {
	c := 0
	for sz := 64 << 10; sz < n && c < len(p.classes)-1; sz <<= 1 {
		c++
	}
	return c
}

// get returns a buffer of at least n bytes (n <= max).
func (p *bufPools) get(n int) *[]byte { return p.classes[p.class(n)].Get().(*[]byte) }

func (p *bufPools) put(b *[]byte) {
	c := p.class(cap(*b))
	if cap(*b) >= 64<<10<<c || cap(*b) == p.max {
		p.classes[c].Put(b)
	}
}

func (s *backupSession) emit(ctx context.Context, f *fileState, buf *[]byte, n int) error {
	idx := f.reserve(contentRef{Length: uint32(n)})
	select {
	case s.chunkCh <- &chunkJob{f: f, idx: idx, buf: buf, n: n}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readFile reads one file and emits its chunks. rb is the reader's scratch
// buffer for content-defined chunking.
func (s *backupSession) readFile(ctx context.Context, job *fileJob) error {
	f, err := os.OpenFile(job.abs, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			s.skip(job.rel + ": vanished during the backup")
			return nil
		}
		return fmt.Errorf("backup: open %s: %w", job.abs, err)
	}
	defer func() { _ = f.Close() }() // read-only: nothing to lose
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("backup: stat %s: %w", job.abs, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("backup: %s changed from a regular file to %s during the backup", job.abs, fi.Mode().Type())
	}
	// The content recorded is what is read now; record the matching times.
	job.st.node.MTime = fi.ModTime().UnixNano()
	switch {
	case job.fixed && job.parent == nil:
		err = s.readFixedScan(ctx, job, f, fi.Size())
	case job.fixed:
		err = s.readFixed(ctx, job, f, fi.Size())
	case fi.Size() < int64(s.r.chunk.max):
		err = s.readSmall(ctx, job, f, fi.Size())
	default:
		err = s.readCDC(ctx, job, f)
	}
	if err != nil {
		return err
	}
	s.filesDone.Add(1)
	s.bytesDone.Add(fi.Size())
	return nil
}

// readSmall reads a file shorter than the maximum chunk in one go into a
// chunk buffer; usually that buffer is the one chunk, with no copying.
func (s *backupSession) readSmall(ctx context.Context, job *fileJob, f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	buf := s.bufs.get(int(size) + 1)
	data := (*buf)[:cap(*buf)]
	n, err := io.ReadFull(f, data)
	s.bytesRead.Add(int64(n))
	switch {
	case n == len(data):
		// It grew past the buffer while we read: start over, streaming.
		s.bufs.put(buf)
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("backup: read %s: %w", job.abs, err)
		}
		s.bytesRead.Add(-int64(n))
		return s.readCDC(ctx, job, f)
	case err != nil && err != io.ErrUnexpectedEOF && err != io.EOF:
		s.bufs.put(buf)
		return fmt.Errorf("backup: read %s: %w", job.abs, err)
	case n == 0:
		s.bufs.put(buf)
		return nil
	}
	data = data[:n]
	first := s.r.chunk.cut(data)
	if first == n {
		return s.emit(ctx, job.st, buf, n)
	}
	for off := 0; off < n; {
		l := s.r.chunk.cut(data[off:])
		piece := s.bufs.get(l)
		copy(*piece, data[off:off+l])
		if err := s.emit(ctx, job.st, piece, l); err != nil {
			s.bufs.put(buf)
			return err
		}
		off += l
	}
	s.bufs.put(buf)
	return nil
}

// readCDC streams a large file through a window of twice the maximum chunk
// size and copies each chunk out.
func (s *backupSession) readCDC(ctx context.Context, job *fileJob, f *os.File) error {
	rbp, err := s.windows.get(ctx)
	if err != nil {
		return err
	}
	defer s.windows.put(rbp)
	rb := (*rbp)[:cap(*rbp)]
	c := s.r.chunk
	start, end := 0, 0
	eof := false
	for {
		if !eof && end-start < c.max {
			if start > 0 {
				end = copy(rb, rb[start:end])
				start = 0
			}
			for end < len(rb) {
				n, err := f.Read(rb[end:])
				end += n
				s.bytesRead.Add(int64(n))
				if err == io.EOF {
					eof = true
					break
				}
				if err != nil {
					return fmt.Errorf("backup: read %s: %w", job.abs, err)
				}
				if n == 0 {
					break
				}
			}
		}
		if start == end {
			return nil
		}
		n := c.cut(rb[start:end])
		buf := s.bufs.get(n)
		copy(*buf, rb[start:start+n])
		if err := s.emit(ctx, job.st, buf, n); err != nil {
			return err
		}
		start += n
	}
}

// readFixed chunks f in fixed blocks. With a parent and changed ranges it
// reads only blocks that overlap a range (or whose length changed); with
// SEEK_DATA support, blocks inside holes of a sparse file are not read.
func (s *backupSession) readFixed(ctx context.Context, job *fileJob, f *os.File, size int64) error {
	bs := int64(s.blockSize)
	nblocks := (size + bs - 1) / bs
	dirty := func(int64) bool { return true }
	if job.parent != nil {
		rs := append([]Range(nil), job.ranges...)
		sort.Slice(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
		ri := 0
		dirty = func(b int64) bool { // blocks are asked for in increasing order
			lo, hi := b*bs, (b+1)*bs
			for ri < len(rs) && rs[ri].Offset+rs[ri].Length <= lo {
				ri++
			}
			for k := ri; k < len(rs) && rs[k].Offset < hi; k++ {
				if rs[k].Length > 0 && rs[k].Offset+rs[k].Length > lo {
					return true
				}
			}
			return false
		}
	}
	ext, sparseOK := dataExtents(f, size)
	ei := 0
	inHole := func(lo, hi int64) bool {
		if !sparseOK {
			return false
		}
		for ei < len(ext) && ext[ei].Offset+ext[ei].Length <= lo {
			ei++
		}
		return ei >= len(ext) || ext[ei].Offset >= hi
	}
	direct := openDirect(job.abs)
	defer direct.Close()
	for b := int64(0); b < nblocks; b++ {
		lo := b * bs
		n := min(bs, size-lo)
		if job.parent != nil && b < int64(len(job.parent.Content)) &&
			int64(job.parent.Content[b].Length) == n && !dirty(b) {
			job.st.reserve(job.parent.Content[b])
			continue
		}
		if inHole(lo, lo+n) {
			job.st.reserve(contentRef{Length: uint32(n)})
			continue
		}
		buf := s.bufs.get(int(n))
		m, ok := direct.readAt((*buf)[:n], lo)
		var err error
		if !ok {
			m, err = f.ReadAt((*buf)[:n], lo)
		} else if int64(m) < n {
			err = io.EOF
		}
		s.bytesRead.Add(int64(m))
		if err == io.EOF && m > 0 {
			err = nil // file shrank: store what is there
		}
		if err != nil && err != io.EOF {
			s.bufs.put(buf)
			return fmt.Errorf("backup: read %s at %d: %w", job.abs, lo, err)
		}
		if m == 0 {
			s.bufs.put(buf)
			break
		}
		if err := s.emit(ctx, job.st, buf, m); err != nil {
			return err
		}
		if int64(m) < n {
			break
		}
	}
	return nil
}

func (s *backupSession) chunkWorker(ctx context.Context) error {
	w := s.r.newBlobWorker()
	for job := range s.chunkCh {
		data := (*job.buf)[:job.n]
		ref := contentRef{Length: uint32(job.n)}
		if !isZero(data) {
			ref.ID = w.id(dataBlob, data)
			if s.claim(ref.ID) {
				n, err := w.store(ctx, s.dataPacker, dataBlob, ref.ID, data)
				if err != nil {
					return err
				}
				s.bytesAdded.Add(int64(n))
				s.chunksAdded.Add(1)
			}
		}
		job.f.set(job.idx, ref)
		s.bufs.put(job.buf)
	}
	return nil
}

// storeTree encodes d (after its subdirectories) and stores it unless an
// identical tree already exists.
func (s *backupSession) storeTree(ctx context.Context, d *dirState, w *blobWorker) (ID, error) {
	if d == nil {
		d = &dirState{}
	}
	for i, nd := range d.nodes {
		if sub := d.sub[i]; sub != nil {
			id, err := s.storeTree(ctx, sub, w)
			if err != nil {
				return ID{}, err
			}
			nd.Subtree = id
		}
	}
	raw := encodeTree(&tree{Nodes: d.nodes})
	id := w.id(treeBlob, raw)
	if s.claim(id) {
		if len(raw) > maxTreeBlob {
			return ID{}, fmt.Errorf("backup: a directory's listing is %d bytes, over the %d-byte limit (split very large directories)", len(raw), maxTreeBlob)
		}
		n, err := w.store(ctx, s.treePacker, treeBlob, id, raw)
		if err != nil {
			return ID{}, err
		}
		s.bytesAdded.Add(int64(n))
	}
	return id, nil
}

// uploader saves finished packs and makes their blobs visible in the index.
func (s *backupSession) uploader(ctx context.Context) error {
	for p := range s.packCh {
		if err := ctx.Err(); err != nil {
			continue // drain so producers never block on a dead pipeline
		}
		pe, err := s.r.uploadPack(ctx, p)
		if err != nil {
			return fmt.Errorf("backup of %s: %w", s.root, err)
		}
		s.r.noteUploaded(pe)
		p.ring.put(p.buf)
		// Index every 64 packs, so an interrupted large backup keeps most
		// of its work for the next run.
		if s.packsSinceSave.Add(1)%64 == 0 {
			if err := s.r.saveUnsaved(ctx); err != nil {
				return fmt.Errorf("backup of %s: save index: %w", s.root, err)
			}
		}
	}
	return nil
}

// uploadPack stores a finished pack under a random name.
func (r *Repository) uploadPack(ctx context.Context, p *finishedPack) (packEntries, error) {
	id, err := r.randomID()
	if err != nil {
		return packEntries{}, err
	}
	if err := r.be.Save(ctx, Handle{Type: PackFile, Name: id.String()}, p.data); err != nil {
		return packEntries{}, fmt.Errorf("save pack %s: %w", id.Short(), err)
	}
	return packEntries{Pack: id, Blobs: p.blobs}, nil
}
