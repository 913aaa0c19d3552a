package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Labels a copied snapshot carries in the target repository: where it came
// from. They also make Copy idempotent: a source snapshot whose copy is
// already in the target is not copied again.
const (
	LabelCopySourceRepository = "clusterguard.copy.source_repository"
	LabelCopySourceSnapshot   = "clusterguard.copy.source_snapshot"
)

// CopyOptions tune Copy.
type CopyOptions struct {
	// SkipVerify skips reading back the copied snapshots from the target
	// (every tree and chunk they need, authenticated under the target's key).
	SkipVerify bool
	// Labels are added to every copied snapshot (after the source's labels).
	Labels map[string]string
	// Progress, when set, is called after each snapshot.
	Progress func(CopiedSnapshot)
}

// CopiedSnapshot pairs a source snapshot with its copy in the target.
type CopiedSnapshot struct {
	Source string `json:"source"`
	Target string `json:"target"`
	// Existing: the target already held this copy (an earlier run).
	Existing bool `json:"existing,omitempty"`
}

// CopyResult is what Copy did.
type CopyResult struct {
	Snapshots    []CopiedSnapshot `json:"snapshots"`
	BlobsCopied  int64            `json:"blobs_copied"`  // stored in the target by this run
	BlobsPresent int64            `json:"blobs_present"` // already in the target, not sent
	BytesAdded   int64            `json:"bytes_added"`   // sealed bytes uploaded to the target
	Reencrypted  bool             `json:"reencrypted"`   // the repositories have different keys
	Verified     bool             `json:"verified"`
	Duration     time.Duration    `json:"duration"`
}

// Copy copies snapshots (with the trees and chunks they need) from src to
// dst, sending only the blobs dst lacks.
//
// Blob ids are keyed hashes under each repository's own chunk key, so
// between repositories with different master keys every blob is decrypted
// from src, re-hashed and re-encrypted for dst, and trees are rewritten with
// the new ids (bottom-up). Chunk boundaries are kept as src cut them: a tree
// entry lists its chunks with their lengths, so a restore never needs dst's
// chunker; copies of related snapshots still deduplicate against each other
// (equal source chunks map to equal target ids). Between repositories
// sharing a chunk key, ids are equal and present blobs are not even read.
//
// Copy is resumable: packs are indexed every few packs, so a rerun after an
// interruption reads the target's index and skips what arrived; a pack cut
// off mid-upload is never indexed and is removed by the target's next
// prune, as after an interrupted backup. A snapshot whose copy is already
// in dst (found by its LabelCopySource* labels) is skipped. Each copy's
// manifest keeps the source's metadata (workload, cluster, group, run,
// consistency, tags, time, summary) and gets labels naming its source; its
// id differs from the source's (it is the hash of the target's sealed
// manifest). Unless SkipVerify, the copies are read back and authenticated
// from dst before Copy returns.
func Copy(ctx context.Context, src, dst *Repository, snapshotIDs []string, o CopyOptions) (CopyResult, error) {
	start := time.Now()
	res := CopyResult{Reencrypted: !bytes.Equal(src.key.ChunkID, dst.key.ChunkID) || !bytes.Equal(src.key.Encryption, dst.key.Encryption)}
	if src.ID() == dst.ID() && !res.Reencrypted {
		return res, fmt.Errorf("copy: source and target are the same repository (%s); choose another target", src.ID())
	}
	slk, err := src.lock(ctx, false, "copy")
	if err != nil {
		return res, fmt.Errorf("copy: lock source %s: %w", src.Location(), err)
	}
	defer slk.unlock(ctx)
	dlk, err := dst.lock(ctx, false, "copy")
	if err != nil {
		return res, fmt.Errorf("copy: lock target %s: %w", dst.Location(), err)
	}
	defer dlk.unlock(ctx)
	if _, err := src.syncIndex(ctx); err != nil {
		return res, fmt.Errorf("copy: load source index: %w", err)
	}
	if _, err := dst.syncIndex(ctx); err != nil {
		return res, fmt.Errorf("copy: load target index: %w", err)
	}
	snaps := make([]Snapshot, 0, len(snapshotIDs))
	for _, id := range snapshotIDs {
		s, err := src.Snapshot(ctx, id)
		if err != nil {
			return res, fmt.Errorf("copy: source snapshot %s: %w", id, err)
		}
		snaps = append(snaps, s)
	}
	sortSnapshots(snaps)
	slices.Reverse(snaps) // oldest first, so parents are copied before children
	existing, err := dst.copiesOf(ctx, src.ID())
	if err != nil {
		return res, err
	}

	c := &copier{src: src, dst: dst, res: &res, same: !res.Reencrypted,
		worker: dst.newBlobWorker(), data: map[ID]ID{}, trees: map[ID]ID{}}
	for _, s := range snaps {
		if id, ok := existing[s.ID]; ok {
			cs := CopiedSnapshot{Source: s.ID, Target: id, Existing: true}
			res.Snapshots = append(res.Snapshots, cs)
			if o.Progress != nil {
				o.Progress(cs)
			}
			continue
		}
		target, err := c.copySnapshot(ctx, s, existing, o.Labels)
		if err != nil {
			return res, err
		}
		existing[s.ID] = target
		cs := CopiedSnapshot{Source: s.ID, Target: target}
		res.Snapshots = append(res.Snapshots, cs)
		if o.Progress != nil {
			o.Progress(cs)
		}
	}
	res.BlobsCopied, res.BlobsPresent, res.BytesAdded = c.copied.Load(), c.present.Load(), c.bytes.Load()
	if !o.SkipVerify {
		for _, cs := range res.Snapshots {
			if err := dst.verifySnapshotData(ctx, cs.Target); err != nil {
				return res, fmt.Errorf("copy: verify copy %s of snapshot %s in %s: %w", short(cs.Target), short(cs.Source), dst.Location(), err)
			}
		}
		res.Verified = true
	}
	res.Duration = time.Since(start)
	return res, nil
}

// copiesOf maps source snapshot ids to their copies in r, for copies made
// from the repository with id srcRepo.
func (r *Repository) copiesOf(ctx context.Context, srcRepo string) (map[string]string, error) {
	all, problems, err := r.allSnapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("copy: list target snapshots: %w", err)
	}
	_ = problems // a damaged manifest in the target is only copied again
	out := map[string]string{}
	for _, s := range all {
		if s.Labels[LabelCopySourceRepository] == srcRepo && s.Labels[LabelCopySourceSnapshot] != "" {
			out[s.Labels[LabelCopySourceSnapshot]] = s.ID
		}
	}
	return out, nil
}

// copier carries the id mappings of one Copy call across its snapshots.
type copier struct {
	src, dst *Repository
	res      *CopyResult
	same     bool // same chunk and encryption keys: ids are equal
	worker   *blobWorker
	pk       *packer

	data  map[ID]ID // source data blob id -> target id
	trees map[ID]ID // source tree id -> target id

	copied, present, bytes atomic.Int64
}

func (c *copier) copySnapshot(ctx context.Context, s Snapshot, existing map[string]string, extra map[string]string) (string, error) {
	bufs := newBufRing(3, packBufSize(c.dst.opts.PackSize, maxChunkLimit))
	out := make(chan *finishedPack)
	c.pk = newPacker(c.dst, c.dst.opts.PackSize, out, bufs)
	var packs atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range 2 {
		g.Go(func() error {
			for fp := range out {
				if gctx.Err() != nil {
					continue // drain so the producer never blocks
				}
				pe, err := c.dst.uploadPack(gctx, fp)
				if err != nil {
					return err
				}
				c.dst.noteUploaded(pe)
				bufs.put(fp.buf)
				// Index often: a copy to a remote target is the operation
				// most likely to be cut off, and a rerun skips what is indexed.
				if packs.Add(1)%4 == 0 {
					if err := c.dst.saveUnsaved(gctx); err != nil {
						return fmt.Errorf("save index: %w", err)
					}
				}
			}
			return nil
		})
	}
	var root ID
	g.Go(func() error {
		defer close(out)
		var err error
		if root, err = c.copyTree(gctx, s.Tree); err != nil {
			return err
		}
		return c.pk.flush(gctx)
	})
	err := g.Wait()
	// Whatever happened, index what was uploaded so a rerun can reuse it.
	if serr := c.dst.saveUnsaved(context.WithoutCancel(ctx)); serr != nil && err == nil {
		err = fmt.Errorf("save index: %w", serr)
	}
	if err != nil {
		return "", fmt.Errorf("copy: snapshot %s from %s to %s: %w (run the copy again to resume)", s.ShortID(), c.src.Location(), c.dst.Location(), err)
	}
	ns := Snapshot{SnapshotMeta: s.SnapshotMeta, Root: s.Root, Paths: s.Paths, Tree: root, Hostname: s.Hostname, Summary: s.Summary}
	ns.Labels = maps.Clone(s.Labels)
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	maps.Copy(ns.Labels, extra)
	ns.Labels[LabelCopySourceRepository] = c.src.ID()
	ns.Labels[LabelCopySourceSnapshot] = s.ID
	if s.Parent != "" {
		ns.Parent = existing[s.Parent] // empty when the parent was not copied
	}
	if err := c.dst.saveSnapshot(ctx, &ns); err != nil {
		return "", fmt.Errorf("copy: snapshot %s: %w", s.ShortID(), err)
	}
	return ns.ID, nil
}

// copyTree copies tree id and everything under it and returns the id of
// the tree in the target.
func (c *copier) copyTree(ctx context.Context, id ID) (ID, error) {
	if nid, ok := c.trees[id]; ok {
		return nid, nil
	}
	t, err := c.src.loadTree(ctx, id)
	if err != nil {
		return ID{}, fmt.Errorf("source tree %s: %w", id.Short(), err)
	}
	nt := &tree{Nodes: make([]*node, len(t.Nodes))}
	for i, nd := range t.Nodes {
		n := *nd
		switch nd.Type {
		case NodeDir:
			if n.Subtree, err = c.copyTree(ctx, nd.Subtree); err != nil {
				return ID{}, err
			}
		case NodeFile:
			n.Content = make([]contentRef, len(nd.Content))
			for j, cr := range nd.Content {
				n.Content[j] = cr
				if cr.ID.IsZero() { // a hole
					continue
				}
				if n.Content[j].ID, err = c.copyData(ctx, cr.ID); err != nil {
					return ID{}, fmt.Errorf("file %s: %w", nd.Name, err)
				}
			}
		}
		nt.Nodes[i] = &n
	}
	enc := encodeTree(nt)
	nid := c.worker.id(treeBlob, enc)
	if err := c.put(ctx, treeBlob, nid, enc); err != nil {
		return ID{}, err
	}
	c.trees[id] = nid
	return nid, nil
}

// copyData copies one data blob and returns its id in the target.
func (c *copier) copyData(ctx context.Context, id ID) (ID, error) {
	if nid, ok := c.data[id]; ok {
		return nid, nil
	}
	if c.same && c.dst.index().has(id) {
		c.present.Add(1)
		c.data[id] = id
		return id, nil
	}
	// loadBlob authenticates: damage in the source is not carried over.
	plain, err := c.src.loadBlob(ctx, dataBlob, id, nil)
	if err != nil {
		return ID{}, fmt.Errorf("source chunk: %w", err)
	}
	nid := c.worker.id(dataBlob, plain)
	if err := c.put(ctx, dataBlob, nid, plain); err != nil {
		return ID{}, err
	}
	c.data[id] = nid
	return nid, nil
}

// put stores a blob in the target unless it is there already.
func (c *copier) put(ctx context.Context, t blobType, id ID, plain []byte) error {
	if c.dst.index().has(id) || c.pending(id) {
		c.present.Add(1)
		return nil
	}
	n, err := c.worker.store(ctx, c.pk, t, id, plain)
	if err != nil {
		return fmt.Errorf("store %s blob %s in target: %w", t, id.Short(), err)
	}
	c.copied.Add(1)
	c.bytes.Add(int64(n))
	return nil
}

// pending reports whether id is already in a pack of this copy that has not
// reached the index yet (the packer's current pack).
func (c *copier) pending(id ID) bool {
	c.pk.mu.Lock()
	defer c.pk.mu.Unlock()
	for _, b := range c.pk.blobs {
		if b.ID == id {
			return true
		}
	}
	return false
}

// verifySnapshotData reads every tree and chunk snapshot id needs and
// authenticates it (a blob that authenticates is the content its id names).
func (r *Repository) verifySnapshotData(ctx context.Context, id string) error {
	if _, err := r.syncIndex(ctx); err != nil {
		return err
	}
	s, err := r.loadSnapshot(ctx, id)
	if err != nil {
		return err
	}
	seen := map[ID]bool{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency)
	var walk func(ID) error
	walk = func(tid ID) error {
		t, err := r.loadTree(gctx, tid)
		if err != nil {
			return err
		}
		for _, nd := range t.Nodes {
			switch nd.Type {
			case NodeDir:
				if err := walk(nd.Subtree); err != nil {
					return err
				}
			case NodeFile:
				for _, cr := range nd.Content {
					mu.Lock()
					dup := cr.ID.IsZero() || seen[cr.ID]
					seen[cr.ID] = true
					mu.Unlock()
					if dup {
						continue
					}
					g.Go(func() error {
						b, err := r.loadBlob(gctx, dataBlob, cr.ID, nil)
						if err != nil {
							return fmt.Errorf("file %s: %w", nd.Name, err)
						}
						if len(b) != int(cr.Length) {
							return fmt.Errorf("file %s: chunk %s is %d bytes, the tree says %d", nd.Name, cr.ID.Short(), len(b), cr.Length)
						}
						return nil
					})
				}
			}
		}
		return nil
	}
	werr := walk(s.Tree)
	gerr := g.Wait()
	return errors.Join(werr, gerr)
}
