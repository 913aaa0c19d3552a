package repository

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Index file plaintext (sealed with adIndex, stored under index/<random id>):
//
//	version   byte (1)
//	packs     uvarint
//	packs ×   packID [32]byte | blobs uvarint |
//	          blobs × type byte | flags byte | offset uvarint | length uvarint | rawLength uvarint | id [32]byte
const indexVersion = 1

// maxIndexBlobs bounds one index file so no single object gets huge.
const maxIndexBlobs = 100_000

func encodeIndex(packs []packEntries) []byte {
	n := 0
	for _, p := range packs {
		n += 40 + len(p.Blobs)*50
	}
	b := make([]byte, 0, n+16)
	b = append(b, indexVersion)
	b = binary.AppendUvarint(b, uint64(len(packs)))
	for _, p := range packs {
		b = append(b, p.Pack[:]...)
		b = binary.AppendUvarint(b, uint64(len(p.Blobs)))
		for _, e := range p.Blobs {
			b = append(b, byte(e.Type), e.Flags)
			b = binary.AppendUvarint(b, uint64(e.Offset))
			b = binary.AppendUvarint(b, uint64(e.Length))
			b = binary.AppendUvarint(b, uint64(e.RawLength))
			b = append(b, e.ID[:]...)
		}
	}
	return b
}

func decodeIndex(b []byte) ([]packEntries, error) {
	d := decoder{b: b}
	if v := d.byte(); v != indexVersion {
		if d.err != nil {
			return nil, fmt.Errorf("index: %w", d.err)
		}
		return nil, fmt.Errorf("index: unsupported version %d", v)
	}
	np := d.count(33)
	packs := make([]packEntries, 0, np)
	for i := 0; i < np && d.err == nil; i++ {
		var p packEntries
		d.read(p.Pack[:])
		nb := d.count(minHeaderEntry + 1)
		if nb > 0 {
			p.Blobs = make([]blobEntry, 0, nb)
		}
		for j := 0; j < nb && d.err == nil; j++ {
			var e blobEntry
			e.Type = blobType(d.byte())
			e.Flags = d.byte()
			off, length, raw := d.uvarint(), d.uvarint(), d.uvarint()
			d.read(e.ID[:])
			if d.err != nil {
				break
			}
			if err := checkBlob(e.Type, e.Flags, length, raw); err != nil {
				return nil, fmt.Errorf("index: pack %s blob %d: %w", p.Pack.Short(), j, err)
			}
			if off+length > maxPackSize {
				return nil, fmt.Errorf("index: pack %s blob %d: ends beyond %d bytes", p.Pack.Short(), j, uint64(maxPackSize))
			}
			e.Offset, e.Length, e.RawLength = uint32(off), uint32(length), uint32(raw)
			p.Blobs = append(p.Blobs, e)
		}
		packs = append(packs, p)
	}
	if d.err != nil {
		return nil, fmt.Errorf("index: %w", d.err)
	}
	if d.rest() != 0 {
		return nil, fmt.Errorf("index: %d trailing bytes", d.rest())
	}
	return packs, nil
}

// indexEntry is the compact in-memory form of a blobEntry (the id is the
// map key, the pack a number into index.packs).
type indexEntry struct {
	pack      uint32
	offset    uint32
	length    uint32
	rawLength uint32
	typ       blobType
	flags     uint8
}

// blobLoc is where a blob lives, as returned by lookups.
type blobLoc struct {
	Pack ID
	blobEntry
}

// index maps blob ids to their location. When a blob is stored more than
// once (concurrent backups, interrupted prunes) any copy will do.
type index struct {
	mu      sync.RWMutex
	blobs   map[ID]indexEntry
	packs   []ID
	packNum map[ID]uint32
}

func newIndex() *index {
	return &index{blobs: make(map[ID]indexEntry), packNum: make(map[ID]uint32)}
}

func (x *index) add(p packEntries) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n, ok := x.packNum[p.Pack]
	if !ok {
		n = uint32(len(x.packs))
		x.packs = append(x.packs, p.Pack)
		x.packNum[p.Pack] = n
	}
	for _, e := range p.Blobs {
		if _, dup := x.blobs[e.ID]; dup {
			continue
		}
		x.blobs[e.ID] = indexEntry{pack: n, offset: e.Offset, length: e.Length, rawLength: e.RawLength, typ: e.Type, flags: e.Flags}
	}
}

func (x *index) has(id ID) bool {
	x.mu.RLock()
	_, ok := x.blobs[id]
	x.mu.RUnlock()
	return ok
}

func (x *index) lookup(id ID) (blobLoc, bool) {
	x.mu.RLock()
	e, ok := x.blobs[id]
	var pack ID
	if ok {
		pack = x.packs[e.pack]
	}
	x.mu.RUnlock()
	if !ok {
		return blobLoc{}, false
	}
	return blobLoc{Pack: pack, blobEntry: blobEntry{ID: id, Type: e.typ, Flags: e.flags, Offset: e.offset, Length: e.length, RawLength: e.rawLength}}, true
}

// loadIndexFile reads and decodes one index file.
func (r *Repository) loadIndexFile(ctx context.Context, name string) ([]packEntries, error) {
	raw, err := r.be.Load(ctx, Handle{Type: IndexFile, Name: name}, 0, 0)
	if err != nil {
		return nil, &objectError{IndexFile, name, fmt.Errorf("load: %w", err)}
	}
	plain, err := r.crypt.open(nil, raw, adIndex)
	if err != nil {
		return nil, &objectError{IndexFile, name, err}
	}
	packs, err := decodeIndex(plain)
	if err != nil {
		return nil, &objectError{IndexFile, name, err}
	}
	return packs, nil
}

func short(name string) string {
	if len(name) > 8 {
		return name[:8]
	}
	return name
}

// listNames lists the object names of type t.
func (r *Repository) listNames(ctx context.Context, t FileType) (map[string]int64, error) {
	names := map[string]int64{}
	err := r.be.List(ctx, t, func(fi FileInfo) error {
		names[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", t, r.be.Location(), err)
	}
	return names, nil
}

// syncIndex brings the in-memory index up to date with the index files:
// new files are added; if any file it had loaded is gone (a prune or
// rebuild replaced it), the index is rebuilt from scratch. Unreadable index
// files are skipped and returned as problems; verify reports them and
// rebuild-index repairs them.
func (r *Repository) syncIndex(ctx context.Context) (problems []error, err error) {
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	names, err := r.listNames(ctx, IndexFile)
	if err != nil {
		return nil, err
	}
	rebuild := false
	for n := range r.idxSeen {
		if _, ok := names[n]; !ok {
			rebuild = true
			break
		}
	}
	target := r.index()
	seen := r.idxSeen
	if rebuild {
		target = newIndex()
		seen = map[string]bool{}
	}
	var todo []string
	for n := range names {
		if !seen[n] {
			todo = append(todo, n)
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency * 2)
	for _, n := range todo {
		g.Go(func() error {
			packs, err := r.loadIndexFile(gctx, n)
			if errors.Is(err, ErrNotExist) {
				return nil
			}
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				mu.Lock()
				problems = append(problems, err)
				mu.Unlock()
				return nil
			}
			for _, p := range packs {
				target.add(p)
			}
			mu.Lock()
			seen[n] = true
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return problems, err
	}
	if rebuild {
		r.setIndex(target)
	}
	r.idxSeen = seen
	return problems, nil
}

func (r *Repository) index() *index {
	r.idxPtrMu.RLock()
	defer r.idxPtrMu.RUnlock()
	return r.idx
}

func (r *Repository) setIndex(x *index) {
	r.idxPtrMu.Lock()
	r.idx = x
	r.idxPtrMu.Unlock()
}

// saveIndex writes index files for packs and returns their names; a caller
// that saves several files must treat the set as written only when all are.
func (r *Repository) saveIndex(ctx context.Context, packs []packEntries) ([]string, error) {
	var names []string
	for len(packs) > 0 {
		n, blobs := 0, 0
		for n < len(packs) && (n == 0 || blobs+len(packs[n].Blobs) <= maxIndexBlobs) {
			blobs += len(packs[n].Blobs)
			n++
		}
		sealed, err := r.crypt.seal(nil, encodeIndex(packs[:n]), adIndex)
		if err != nil {
			return names, err
		}
		id, err := r.randomID()
		if err != nil {
			return names, err
		}
		if err := r.be.Save(ctx, Handle{Type: IndexFile, Name: id.String()}, sealed); err != nil {
			return names, fmt.Errorf("save index %s: %w", id.Short(), err)
		}
		r.idxMu.Lock()
		r.idxSeen[id.String()] = true
		r.idxMu.Unlock()
		names = append(names, id.String())
		packs = packs[n:]
	}
	return names, nil
}

// noteUploaded records a freshly uploaded pack: its blobs become visible for
// deduplication and it joins the list the next index save must cover.
func (r *Repository) noteUploaded(p packEntries) {
	r.unsavedL.Lock()
	r.unsaved = append(r.unsaved, p)
	r.unsavedL.Unlock()
	r.index().add(p)
}

// saveUnsaved writes an index covering every uploaded pack not yet covered,
// including other operations' packs in this process: a snapshot may use
// blobs another backup uploaded, so it must not be saved before they are
// indexed. Saves are serialised so a caller returns only once everything
// uploaded before the call is in a saved index file.
func (r *Repository) saveUnsaved(ctx context.Context) error {
	r.unsavedMu.Lock()
	defer r.unsavedMu.Unlock()
	r.unsavedL.Lock()
	todo := r.unsaved
	r.unsaved = nil
	r.unsavedL.Unlock()
	if len(todo) == 0 {
		return nil
	}
	if _, err := r.saveIndex(ctx, todo); err != nil {
		r.unsavedL.Lock()
		r.unsaved = append(todo, r.unsaved...)
		r.unsavedL.Unlock()
		return err
	}
	return nil
}
