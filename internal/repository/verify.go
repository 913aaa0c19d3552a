package repository

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// VerifyOptions choose how deep Verify looks.
type VerifyOptions struct {
	// ReadData reads every pack in full and authenticates, decompresses and
	// re-hashes every blob. Without it only structure is checked: index,
	// pack presence and sizes, snapshots, trees, and that every chunk a
	// file needs is indexed.
	ReadData bool
	// Concurrency overrides the repository's worker count.
	Concurrency int
}

// VerifyReport is what Verify found. Problems are damage; the lists name
// what is affected so an operator can judge which recovery points are
// still good. UnindexedPacks are not damage: interrupted backups leave them
// and prune removes them.
type VerifyReport struct {
	Snapshots int   `json:"snapshots"`
	Trees     int   `json:"trees"`
	Packs     int   `json:"packs"`
	Blobs     int   `json:"blobs"`
	BytesRead int64 `json:"bytes_read"`

	Problems         []string      `json:"problems,omitempty"`
	DamagedIndexes   []string      `json:"damaged_indexes,omitempty"`
	DamagedPacks     []string      `json:"damaged_packs,omitempty"`
	DamagedChunks    []string      `json:"damaged_chunks,omitempty"`
	DamagedSnapshots []string      `json:"damaged_snapshots,omitempty"`
	DamagedFiles     []DamagedFile `json:"damaged_files,omitempty"`
	UnindexedPacks   []string      `json:"unindexed_packs,omitempty"`
	Duration         time.Duration `json:"duration"`
}

// OK reports whether no damage was found.
func (v *VerifyReport) OK() bool { return len(v.Problems) == 0 }

// String renders the report for people.
func (v *VerifyReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "checked %d snapshots, %d trees, %d packs, %d blobs", v.Snapshots, v.Trees, v.Packs, v.Blobs)
	if v.BytesRead > 0 {
		fmt.Fprintf(&b, ", read %d bytes", v.BytesRead)
	}
	if len(v.UnindexedPacks) > 0 {
		fmt.Fprintf(&b, "\n%d packs are not indexed (left by interrupted backups; prune removes them, rebuild-index adopts them)", len(v.UnindexedPacks))
	}
	if v.OK() {
		b.WriteString("\nno errors were found")
		return b.String()
	}
	fmt.Fprintf(&b, "\n%d problems:", len(v.Problems))
	for _, p := range v.Problems {
		b.WriteString("\n  " + p)
	}
	list := func(title string, items []string) {
		if len(items) > 0 {
			fmt.Fprintf(&b, "\n%s: %s", title, strings.Join(items, ", "))
		}
	}
	list("damaged indexes", v.DamagedIndexes)
	list("damaged packs", v.DamagedPacks)
	list("damaged chunks", v.DamagedChunks)
	list("damaged snapshots", v.DamagedSnapshots)
	for _, f := range v.DamagedFiles {
		fmt.Fprintf(&b, "\ndamaged file: snapshot %s: %s (%s)", short(f.Snapshot), f.Path, f.Reason)
	}
	return b.String()
}

type verifier struct {
	r   *Repository
	o   VerifyOptions
	rep *VerifyReport
	mu  sync.Mutex

	badPacks    map[ID]string // pack -> reason
	badBlobs    map[ID]string // blob -> reason
	badSnaps    map[string]bool
	badFiles    map[DamagedFile]bool
	cleanTrees  map[ID]bool
	seenTrees   map[ID]bool
	problemSeen map[string]bool
}

func (v *verifier) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.problemSeen[msg] {
		v.problemSeen[msg] = true
		v.rep.Problems = append(v.rep.Problems, msg)
	}
}

// Verify checks the repository. The error is for failures to run the check
// (backend unreachable, locked); damage found is in the report.
func (r *Repository) Verify(ctx context.Context, o VerifyOptions) (*VerifyReport, error) {
	start := time.Now()
	if o.Concurrency <= 0 {
		o.Concurrency = r.opts.Concurrency
	}
	lk, err := r.lock(ctx, false, "verify")
	if err != nil {
		return nil, err
	}
	defer lk.unlock(ctx)
	v := &verifier{
		r: r, o: o, rep: &VerifyReport{},
		badPacks: map[ID]string{}, badBlobs: map[ID]string{}, badSnaps: map[string]bool{},
		badFiles: map[DamagedFile]bool{}, cleanTrees: map[ID]bool{}, seenTrees: map[ID]bool{}, problemSeen: map[string]bool{},
	}
	if err := v.checkIndex(ctx); err != nil {
		return nil, err
	}
	if o.ReadData {
		if err := v.readPacks(ctx); err != nil {
			return nil, err
		}
	}
	if err := v.checkSnapshots(ctx); err != nil {
		return nil, err
	}
	rep := v.rep
	for p := range v.badPacks {
		rep.DamagedPacks = append(rep.DamagedPacks, p.String())
	}
	for b := range v.badBlobs {
		rep.DamagedChunks = append(rep.DamagedChunks, b.String())
	}
	for s := range v.badSnaps {
		rep.DamagedSnapshots = append(rep.DamagedSnapshots, s)
	}
	for f := range v.badFiles {
		rep.DamagedFiles = append(rep.DamagedFiles, f)
	}
	sort.Strings(rep.DamagedPacks)
	sort.Strings(rep.DamagedChunks)
	sort.Strings(rep.DamagedSnapshots)
	sort.Strings(rep.UnindexedPacks)
	sort.Slice(rep.DamagedFiles, func(i, j int) bool {
		a, b := rep.DamagedFiles[i], rep.DamagedFiles[j]
		if a.Snapshot != b.Snapshot {
			return a.Snapshot < b.Snapshot
		}
		return a.Path < b.Path
	})
	rep.Duration = time.Since(start)
	return rep, nil
}

// packBlobs groups the in-memory index by pack.
func (x *index) packBlobs() map[ID][]blobEntry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[ID][]blobEntry, len(x.packs))
	for id, e := range x.blobs {
		p := x.packs[e.pack]
		out[p] = append(out[p], blobEntry{ID: id, Type: e.typ, Flags: e.flags, Offset: e.offset, Length: e.length, RawLength: e.rawLength})
	}
	return out
}

// checkIndex reloads the index from scratch and checks every indexed pack
// exists and is long enough for its blobs.
func (v *verifier) checkIndex(ctx context.Context) error {
	r := v.r
	// Reload from scratch so nothing cached hides damage.
	r.idxMu.Lock()
	r.idxSeen = map[string]bool{}
	r.idxMu.Unlock()
	r.setIndex(newIndex())
	problems, err := r.syncIndex(ctx)
	if err != nil {
		return err
	}
	for _, p := range problems {
		v.problem("%v (run rebuild-index)", p)
		var oe *objectError
		if errors.As(p, &oe) {
			v.rep.DamagedIndexes = append(v.rep.DamagedIndexes, oe.Name)
		}
	}
	sizes, err := r.listNames(ctx, PackFile)
	if err != nil {
		return err
	}
	byPack := r.index().packBlobs()
	v.rep.Packs = len(sizes)
	for pack, blobs := range byPack {
		size, ok := sizes[pack.String()]
		if !ok {
			v.badPack(pack, "missing from the backend", blobs)
			continue
		}
		var end int64
		for _, b := range blobs {
			end = max(end, int64(b.Offset)+int64(b.Length))
		}
		if size < end+packTrailerBytes+sealExtra {
			v.badPack(pack, fmt.Sprintf("truncated: %d bytes, blobs need at least %d", size, end+packTrailerBytes+sealExtra), blobs)
		}
	}
	for name := range sizes {
		id, err := ParseID(name)
		if err != nil {
			v.problem("pack file %q has an invalid name", name)
			continue
		}
		if _, ok := byPack[id]; !ok {
			v.rep.UnindexedPacks = append(v.rep.UnindexedPacks, name)
		}
	}
	return nil
}

func (v *verifier) badPack(pack ID, reason string, blobs []blobEntry) {
	v.problem("pack %s: %s", pack, reason)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.badPacks[pack] = reason
	for _, b := range blobs {
		if _, ok := v.badBlobs[b.ID]; !ok {
			v.badBlobs[b.ID] = fmt.Sprintf("pack %s %s", pack.Short(), reason)
		}
	}
}

func (v *verifier) badBlob(pack, blob ID, reason string) {
	v.problem("pack %s: blob %s: %s", pack, blob, reason)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.badPacks[pack] = reason
	v.badBlobs[blob] = fmt.Sprintf("in pack %s: %s", pack.Short(), reason)
}

// readPacks reads every indexed pack in full and checks each blob.
func (v *verifier) readPacks(ctx context.Context) error {
	byPack := v.r.index().packBlobs()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.o.Concurrency)
	var blobs atomic.Int64
	for pack, want := range byPack {
		v.mu.Lock()
		_, bad := v.badPacks[pack]
		v.mu.Unlock()
		if bad {
			continue
		}
		g.Go(func() error {
			n, err := v.readPack(gctx, pack, want)
			blobs.Add(int64(n))
			return err
		})
	}
	err := g.Wait()
	v.rep.Blobs = int(blobs.Load())
	return err
}

// readPack reads a whole pack (header, then the blobs in bounded spans so
// memory stays small) and authenticates, decompresses and re-hashes every
// blob the header lists; it also checks the index agrees with the header.
func (v *verifier) readPack(ctx context.Context, pack ID, want []blobEntry) (int, error) {
	r := v.r
	h := Handle{Type: PackFile, Name: pack.String()}
	fi, err := r.be.Stat(ctx, h)
	var hdr []blobEntry
	if err == nil {
		hdr, err = r.loadPackHeader(ctx, pack, fi.Size)
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		v.badPack(pack, fmt.Sprintf("header: %v", err), want)
		// The blobs may still be intact: check each one the index knows.
		hdr = nil
	}
	check := want
	if hdr != nil {
		inHeader := make(map[ID]blobEntry, len(hdr))
		for _, e := range hdr {
			inHeader[e.ID] = e
		}
		for _, w := range want {
			if h, ok := inHeader[w.ID]; !ok || h.Offset != w.Offset || h.Length != w.Length || h.Type != w.Type {
				v.badBlob(pack, w.ID, "index entry does not match the pack header")
			}
		}
		check = hdr
	}
	sort.Slice(check, func(i, j int) bool { return check[i].Offset < check[j].Offset })
	w := r.newBlobWorker()
	var out []byte
	n := 0
	for i := 0; i < len(check); {
		// A span of consecutive blobs up to 4 MiB (or one bigger blob).
		j, start, end := i, int64(check[i].Offset), int64(check[i].Offset)
		for j < len(check) && (j == i || int64(check[j].Offset)+int64(check[j].Length)-start <= 4<<20) {
			end = max(end, int64(check[j].Offset)+int64(check[j].Length))
			j++
		}
		data, err := r.be.Load(ctx, h, start, end-start)
		if err == nil && int64(len(data)) != end-start {
			err = fmt.Errorf("short read: %d of %d bytes", len(data), end-start)
		}
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			for _, e := range check[i:j] {
				v.badBlob(pack, e.ID, fmt.Sprintf("unreadable: %v", err))
			}
			i = j
			continue
		}
		atomic.AddInt64(&v.rep.BytesRead, int64(len(data)))
		for _, e := range check[i:j] {
			lo := int64(e.Offset) - start
			content, err := r.openBlob(e, data[lo:lo+int64(e.Length)], out)
			n++
			if err != nil {
				v.badBlob(pack, e.ID, err.Error())
				continue
			}
			if e.Flags&flagCompressed != 0 {
				out = content
			}
			if got := w.id(e.Type, content); got != e.ID {
				v.badBlob(pack, e.ID, fmt.Sprintf("content hashes to %s", got.Short()))
			}
		}
		i = j
	}
	return n, nil
}

func (v *verifier) checkSnapshots(ctx context.Context) error {
	snaps, problems, err := v.r.allSnapshots(ctx)
	if err != nil {
		return err
	}
	for _, p := range problems {
		v.problem("%v", p)
		var oe *objectError
		if errors.As(p, &oe) {
			v.badSnaps[oe.Name] = true
		}
	}
	v.rep.Snapshots = len(snaps) + len(problems)
	for _, s := range snaps {
		if err := v.checkTree(ctx, s, s.Tree, ""); err != nil {
			return err
		}
	}
	v.rep.Trees = len(v.seenTrees)
	return nil
}

// checkTree walks a tree; it returns an error only for cancellation.
// Damage is recorded against the snapshot and the paths that need it.
func (v *verifier) checkTree(ctx context.Context, s Snapshot, id ID, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if v.cleanTrees[id] {
		return nil
	}
	v.seenTrees[id] = true
	where := dir
	if where == "" {
		where = "/"
	}
	v.mu.Lock()
	reason, bad := v.badBlobs[id]
	v.mu.Unlock()
	var t *tree
	var err error
	if !bad {
		t, err = v.r.loadTree(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			reason, bad = err.Error(), true
		}
	}
	if bad {
		v.problem("snapshot %s: directory %s (tree %s): %s", s.ShortID(), where, id.Short(), reason)
		v.badSnaps[s.ID] = true
		v.badFiles[DamagedFile{Snapshot: s.ID, Path: where, Reason: "directory unreadable: " + reason}] = true
		return nil
	}
	clean := true
	x := v.r.index()
	for _, nd := range t.Nodes {
		p := nd.Name
		if dir != "" {
			p = dir + "/" + nd.Name
		}
		switch nd.Type {
		case NodeDir:
			if err := v.checkTree(ctx, s, nd.Subtree, p); err != nil {
				return err
			}
			if !v.cleanTrees[nd.Subtree] {
				clean = false
			}
		case NodeFile:
			for _, c := range nd.Content {
				if c.ID.IsZero() {
					continue
				}
				why := ""
				if loc, ok := x.lookup(c.ID); !ok || loc.Type != dataBlob {
					why = fmt.Sprintf("chunk %s is not in the index", c.ID.Short())
				} else if int64(loc.RawLength) != int64(c.Length) {
					why = fmt.Sprintf("chunk %s has length %d, file expects %d", c.ID.Short(), loc.RawLength, c.Length)
				} else {
					v.mu.Lock()
					r, bad := v.badBlobs[c.ID]
					v.mu.Unlock()
					if bad {
						why = fmt.Sprintf("chunk %s damaged (%s)", c.ID.Short(), r)
					}
				}
				if why != "" {
					clean = false
					v.problem("snapshot %s: file %s: %s", s.ShortID(), p, why)
					v.badSnaps[s.ID] = true
					v.badFiles[DamagedFile{Snapshot: s.ID, Path: p, Reason: why}] = true
					break
				}
			}
		}
	}
	if clean {
		v.cleanTrees[id] = true
	}
	return nil
}
