package repository

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// PruneOptions tune Prune.
type PruneOptions struct {
	// MaxUnused: a pack whose unused fraction exceeds this is repacked
	// (its live blobs copied into new packs, then it is deleted). Default
	// 0.5, i.e. packs that are mostly garbage; 1 disables repacking.
	MaxUnused float64
	// KeepSmallPacks disables combining packs smaller than a quarter of the
	// pack size (many small backups leave many small packs).
	KeepSmallPacks bool
	// DryRun computes what would be done and changes nothing.
	DryRun bool
}

// PruneStats say what Prune did (or, with DryRun, would do).
type PruneStats struct {
	Snapshots       int
	UsedBlobs       int
	PacksBefore     int
	PacksDeleted    int // wholly unused, or left unindexed by interrupted backups
	PacksRepacked   int
	PacksWritten    int
	BytesBefore     int64
	BytesFreed      int64
	BytesRepacked   int64
	IndexFilesAfter int
	// Retained counts packs and index files prune left in place because
	// their retention (S3 Object Lock) has not passed; a later prune
	// removes them.
	Retained int
	Duration time.Duration
}

// Prune deletes data no snapshot refers to. It takes the exclusive lock.
// Order of effects, each step safe to interrupt:
//  1. upload new packs holding the live blobs of packs to repack
//     (interrupted: the new packs are unindexed garbage),
//  2. save index files covering kept and new packs
//     (interrupted: old and new indexes overlap; duplicates are harmless),
//  3. delete the old index files,
//  4. delete the packs no index refers to any more.
//
// Prune refuses to delete anything if a snapshot, tree or index file cannot
// be read, because it could then not know what is still needed.
func (r *Repository) Prune(ctx context.Context, o PruneOptions) (PruneStats, error) {
	start := time.Now()
	var st PruneStats
	if o.MaxUnused <= 0 {
		o.MaxUnused = 0.5
	}
	lk, err := r.lock(ctx, true, "prune")
	if err != nil {
		return st, err
	}
	defer lk.unlock(ctx)
	if err := r.saveUnsaved(ctx); err != nil {
		return st, fmt.Errorf("prune: save pending index: %w", err)
	}

	// Everything the index files say, per pack, and which files said it.
	oldIndexes, packs, err := r.loadFullIndex(ctx)
	if err != nil {
		return st, fmt.Errorf("prune: %w (run rebuild-index, then prune again)", err)
	}
	if _, err := r.syncIndex(ctx); err != nil {
		return st, fmt.Errorf("prune: %w", err)
	}
	sizes, err := r.listNames(ctx, PackFile)
	if err != nil {
		return st, fmt.Errorf("prune: %w", err)
	}
	st.PacksBefore = len(sizes)
	for _, sz := range sizes {
		st.BytesBefore += sz
	}

	used, nsnaps, err := r.markUsed(ctx)
	if err != nil {
		return st, fmt.Errorf("prune: %w; nothing was deleted", err)
	}
	st.Snapshots, st.UsedBlobs = nsnaps, len(used)

	// Each used blob is owned by one existing pack; other copies are garbage.
	packIDs := make([]ID, 0, len(packs))
	for id := range packs {
		if _, ok := sizes[id.String()]; ok {
			packIDs = append(packIDs, id)
		}
	}
	sort.Slice(packIDs, func(i, j int) bool { return packIDs[i].String() < packIDs[j].String() })
	owner := map[ID]ID{}
	for _, p := range packIDs {
		for _, b := range packs[p] {
			if _, ok := used[b.ID]; ok {
				if _, taken := owner[b.ID]; !taken {
					owner[b.ID] = p
				}
			}
		}
	}
	for id := range used {
		if _, ok := owner[id]; !ok {
			return st, fmt.Errorf("prune: blob %s used by a snapshot is in no existing pack; run verify; nothing was deleted", id.Short())
		}
	}

	var keep, repack, drop []ID
	var small []ID
	for _, p := range packIDs {
		var usedBytes, total int64
		for _, b := range packs[p] {
			total += int64(b.Length)
			if owner[b.ID] == p {
				usedBytes += int64(b.Length)
			}
		}
		switch {
		case usedBytes == 0:
			drop = append(drop, p)
		case float64(total-usedBytes) > o.MaxUnused*float64(total):
			repack = append(repack, p)
		case !o.KeepSmallPacks && sizes[p.String()] < int64(r.opts.PackSize/4):
			small = append(small, p)
		default:
			keep = append(keep, p)
		}
	}
	// Small packs are combined when there are two, or when packs are being
	// rewritten anyway; otherwise a prune's own small output pack and one
	// left-over small pack would make the next prune repack again.
	if len(small) >= 2 || (len(small) == 1 && len(repack) > 0) {
		repack = append(repack, small...)
	} else {
		keep = append(keep, small...)
	}
	indexed := map[string]bool{}
	for p := range packs {
		indexed[p.String()] = true
	}
	var orphans []string
	for name := range sizes {
		if !indexed[name] {
			orphans = append(orphans, name)
		}
	}
	if oldIndexes, st.Retained, err = r.pruneRetained(ctx, oldIndexes, &drop, &repack, &keep, &orphans); err != nil {
		return st, fmt.Errorf("prune: %w; nothing was deleted", err)
	}
	if st.Retained > 0 && len(drop)+len(repack)+len(orphans) == 0 {
		// Everything prunable is retained: writing a new index would only
		// add one more retained file.
		st.Duration = time.Since(start)
		return st, nil
	}
	st.PacksRepacked = len(repack)
	st.PacksDeleted = len(drop) + len(orphans)
	for _, p := range drop {
		st.BytesFreed += sizes[p.String()]
	}
	for _, n := range orphans {
		st.BytesFreed += sizes[n]
	}
	for _, p := range repack {
		st.BytesFreed += sizes[p.String()]
	}
	if o.DryRun {
		st.Duration = time.Since(start)
		return st, nil
	}

	// 1. Copy live blobs out of the packs being repacked.
	newPacks, err := r.repack(ctx, repack, packs, owner)
	if err != nil {
		return st, fmt.Errorf("prune: repack: %w; nothing was deleted", err)
	}
	st.PacksWritten = len(newPacks)
	for _, np := range newPacks {
		for _, b := range np.Blobs {
			st.BytesRepacked += int64(b.Length)
		}
	}
	st.BytesFreed -= st.BytesRepacked

	// 2. Index the packs that stay.
	var entries []packEntries
	for _, p := range keep {
		entries = append(entries, packEntries{Pack: p, Blobs: packs[p]})
	}
	entries = append(entries, newPacks...)
	newNames, err := r.saveIndex(ctx, entries)
	if err != nil {
		return st, fmt.Errorf("prune: save new index: %w; nothing was deleted", err)
	}
	st.IndexFilesAfter = len(newNames)

	// 3. Retire the old index files.
	for _, n := range oldIndexes {
		if err := r.be.Remove(ctx, Handle{Type: IndexFile, Name: n}); err != nil {
			return st, fmt.Errorf("prune: remove old index %s: %w (the repository is valid; run prune again)", short(n), err)
		}
	}
	// 4. Delete packs nothing indexes now.
	var victims []string
	for _, p := range append(drop, repack...) {
		victims = append(victims, p.String())
	}
	victims = append(victims, orphans...)
	if err := r.removeAll(ctx, PackFile, victims); err != nil {
		return st, fmt.Errorf("prune: %w (the repository is valid; run prune again to finish)", err)
	}
	r.resetIndex()
	if _, err := r.syncIndex(ctx); err != nil {
		return st, fmt.Errorf("prune: reload index: %w", err)
	}
	st.Duration = time.Since(start)
	return st, nil
}

// resetIndex drops the in-memory index so the next sync reloads it.
func (r *Repository) resetIndex() {
	r.idxMu.Lock()
	r.idxSeen = map[string]bool{}
	r.idxMu.Unlock()
	r.setIndex(newIndex())
}

func (r *Repository) removeAll(ctx context.Context, t FileType, names []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency * 4)
	for _, n := range names {
		g.Go(func() error {
			if err := r.be.Remove(gctx, Handle{Type: t, Name: n}); err != nil {
				return fmt.Errorf("remove %s %s: %w", t, short(n), err)
			}
			return nil
		})
	}
	return g.Wait()
}

// loadFullIndex reads every index file, keeping every copy of every blob.
// Any unreadable index file is an error: packs it lists would look unused.
func (r *Repository) loadFullIndex(ctx context.Context) ([]string, map[ID][]blobEntry, error) {
	names, err := r.listNames(ctx, IndexFile)
	if err != nil {
		return nil, nil, err
	}
	var (
		mu    sync.Mutex
		list  []string
		packs = map[ID][]blobEntry{}
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency * 2)
	for n := range names {
		g.Go(func() error {
			pe, err := r.loadIndexFile(gctx, n)
			if errors.Is(err, ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			list = append(list, n)
			for _, p := range pe {
				if _, dup := packs[p.Pack]; !dup {
					packs[p.Pack] = p.Blobs
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return list, packs, nil
}

// markUsed walks every snapshot and returns the set of blobs they use.
func (r *Repository) markUsed(ctx context.Context) (map[ID]struct{}, int, error) {
	snaps, problems, err := r.allSnapshots(ctx)
	if err != nil {
		return nil, 0, err
	}
	if len(problems) > 0 {
		return nil, 0, fmt.Errorf("%w (forget or repair the unreadable snapshot first)", problems[0])
	}
	used := map[ID]struct{}{}
	x := r.index()
	var walk func(id ID, depth int) error
	walk = func(id ID, depth int) error {
		if _, seen := used[id]; seen {
			return nil
		}
		if depth > 4096 {
			return errors.New("directory nesting deeper than 4096")
		}
		t, err := r.loadTree(ctx, id)
		if err != nil {
			return err
		}
		used[id] = struct{}{}
		for _, nd := range t.Nodes {
			switch nd.Type {
			case NodeDir:
				if err := walk(nd.Subtree, depth+1); err != nil {
					return err
				}
			case NodeFile:
				for _, c := range nd.Content {
					if c.ID.IsZero() {
						continue
					}
					if !x.has(c.ID) {
						return fmt.Errorf("chunk %s is not in the index", c.ID.Short())
					}
					used[c.ID] = struct{}{}
				}
			}
		}
		return nil
	}
	for _, s := range snaps {
		if err := walk(s.Tree, 0); err != nil {
			return nil, 0, fmt.Errorf("snapshot %s: %w", s.ShortID(), err)
		}
	}
	return used, len(snaps), nil
}

// repack copies the blobs owned by each pack in ps into new packs and
// returns the new packs' entries. Every copied blob is authenticated first
// so damage is not carried over silently.
func (r *Repository) repack(ctx context.Context, ps []ID, packs map[ID][]blobEntry, owner map[ID]ID) ([]packEntries, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	bufs := newBufRing(3, packBufSize(r.opts.PackSize, r.cfg.Chunker.Max))
	out := make(chan *finishedPack)
	pk := newPacker(r, r.opts.PackSize, out, bufs)
	var (
		mu     sync.Mutex
		result []packEntries
	)
	g, gctx := errgroup.WithContext(ctx)
	for range 2 {
		g.Go(func() error {
			for fp := range out {
				if gctx.Err() != nil {
					continue
				}
				pe, err := r.uploadPack(gctx, fp)
				if err != nil {
					return err
				}
				bufs.put(fp.buf)
				mu.Lock()
				result = append(result, pe)
				mu.Unlock()
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(out)
		for _, p := range ps {
			data, err := r.be.Load(gctx, Handle{Type: PackFile, Name: p.String()}, 0, 0)
			if err != nil {
				return fmt.Errorf("read pack %s: %w", p.Short(), err)
			}
			scratch := make([]byte, 0, 1<<20)
			for _, b := range packs[p] {
				if owner[b.ID] != p {
					continue
				}
				if int64(b.Offset)+int64(b.Length) > int64(len(data)) {
					return fmt.Errorf("pack %s is shorter than its index says", p.Short())
				}
				sealed := data[b.Offset : b.Offset+b.Length]
				scratch = append(scratch[:0], sealed...)
				if _, err := r.openBlob(b, scratch, nil); err != nil {
					return fmt.Errorf("pack %s: blob %s: %w (run verify --read-data)", p.Short(), b.ID.Short(), err)
				}
				if err := pk.add(gctx, b, sealed); err != nil {
					return err
				}
			}
		}
		return pk.flush(gctx)
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return result, nil
}
