package repository

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"
)

// RebuildStats say what RebuildIndex found.
type RebuildStats struct {
	Packs      int
	Blobs      int
	Unreadable []string // packs whose header could not be read (not indexed)
}

// RebuildIndex replaces the index with one built from the pack headers, for
// when index files are missing, truncated or corrupt. It adopts packs left
// unindexed by interrupted backups. It takes the exclusive lock and writes
// the new index before removing the old, so an interruption leaves both
// (which is valid).
func (r *Repository) RebuildIndex(ctx context.Context) (RebuildStats, error) {
	var st RebuildStats
	lk, err := r.lock(ctx, true, "rebuild-index")
	if err != nil {
		return st, err
	}
	defer lk.unlock(ctx)
	oldIndexes, err := r.listNames(ctx, IndexFile)
	if err != nil {
		return st, fmt.Errorf("rebuild-index: %w", err)
	}
	sizes, err := r.listNames(ctx, PackFile)
	if err != nil {
		return st, fmt.Errorf("rebuild-index: %w", err)
	}
	var (
		mu      sync.Mutex
		entries []packEntries
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency * 4)
	for name, size := range sizes {
		g.Go(func() error {
			id, err := ParseID(name)
			var blobs []blobEntry
			if err == nil {
				blobs, err = r.loadPackHeader(gctx, id, size)
			}
			if gctx.Err() != nil {
				return gctx.Err()
			}
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, ErrNotExist) {
				return nil
			}
			if err != nil {
				st.Unreadable = append(st.Unreadable, name)
				return nil
			}
			entries = append(entries, packEntries{Pack: id, Blobs: blobs})
			st.Blobs += len(blobs)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return st, fmt.Errorf("rebuild-index: %w", err)
	}
	sort.Strings(st.Unreadable)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Pack.String() < entries[j].Pack.String() })
	st.Packs = len(entries)
	if _, err := r.saveIndex(ctx, entries); err != nil {
		return st, fmt.Errorf("rebuild-index: save index: %w", err)
	}
	var old []string
	for n := range oldIndexes {
		old = append(old, n)
	}
	if err := r.removeAll(ctx, IndexFile, old); err != nil {
		return st, fmt.Errorf("rebuild-index: remove old index files: %w (the new index is saved; the repository is valid)", err)
	}
	r.resetIndex()
	if _, err := r.syncIndex(ctx); err != nil {
		return st, fmt.Errorf("rebuild-index: reload: %w", err)
	}
	return st, nil
}
