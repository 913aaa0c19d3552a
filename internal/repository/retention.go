package repository

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrRetained is returned (wrapped) by a backend refusing to delete an
// object whose retention period (S3 Object Lock) has not passed.
var ErrRetained = errors.New("object is under retention (object lock) and cannot be deleted before its retention passes")

// RetentionBackend is implemented by backends that write objects with a
// retention period (S3 Object Lock). Prune and forget ask it which objects
// are still retained and leave those alone instead of failing.
type RetentionBackend interface {
	Backend
	// RetainedUntil is the time before which h cannot be deleted or
	// overwritten; zero when it is not retained (or never was).
	RetainedUntil(ctx context.Context, h Handle) (time.Time, error)
	// Retains reports whether objects of type t are written with a
	// retention period (lock files, which are rewritten, are not).
	Retains(t FileType) bool
}

// retained reports whether h is still under retention on r's backend.
func (r *Repository) retained(ctx context.Context, h Handle) (bool, error) {
	rb, ok := r.be.(RetentionBackend)
	if !ok || !rb.Retains(h.Type) {
		return false, nil
	}
	until, err := rb.RetainedUntil(ctx, h)
	if errors.Is(err, ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("retention of %s %s: %w", h.Type, short(h.Name), err)
	}
	// The backend's clock decides; a small margin keeps us from racing it.
	return until.After(time.Now().Add(-time.Minute)), nil
}

// pruneRetained removes from prune's plan what retention forbids: retained
// old index files stay, so the packs they name must stay too (deleting them
// would leave an index naming missing packs); retained packs stay (indexed
// again when they were indexed). It returns the old index files that may be
// removed and a note for the result.
func (r *Repository) pruneRetained(ctx context.Context, oldIndexes []string, drop, repack, keep *[]ID, orphans *[]string) ([]string, int, error) {
	if _, ok := r.be.(RetentionBackend); !ok {
		return oldIndexes, 0, nil
	}
	retainedCount := 0
	pinned := map[ID]bool{}
	var removable []string
	for _, n := range oldIndexes {
		ret, err := r.retained(ctx, Handle{Type: IndexFile, Name: n})
		if err != nil {
			return nil, 0, err
		}
		if !ret {
			removable = append(removable, n)
			continue
		}
		retainedCount++
		packs, err := r.loadIndexFile(ctx, n)
		if err != nil {
			return nil, 0, err
		}
		for _, p := range packs {
			pinned[p.Pack] = true
		}
	}
	filter := func(ps []ID) ([]ID, error) {
		var out []ID
		for _, p := range ps {
			ret := pinned[p]
			if !ret {
				var err error
				if ret, err = r.retained(ctx, Handle{Type: PackFile, Name: p.String()}); err != nil {
					return nil, err
				}
			}
			if ret {
				retainedCount++
				*keep = append(*keep, p)
				continue
			}
			out = append(out, p)
		}
		return out, nil
	}
	var err error
	if *drop, err = filter(*drop); err != nil {
		return nil, 0, err
	}
	if *repack, err = filter(*repack); err != nil {
		return nil, 0, err
	}
	var orph []string
	for _, n := range *orphans {
		ret, err := r.retained(ctx, Handle{Type: PackFile, Name: n})
		if err != nil {
			return nil, 0, err
		}
		if ret {
			retainedCount++
			continue
		}
		orph = append(orph, n)
	}
	*orphans = orph
	return removable, retainedCount, nil
}
