package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/zeebo/blake3"
)

// blobAD is the associated data of a sealed blob: its type and id. Because
// the id is the keyed hash of the content, a blob that authenticates under
// its AD is the content the id names; restore need not re-hash it.
func blobAD(t blobType, id ID) []byte {
	ad := make([]byte, 0, 33)
	ad = append(ad, byte(t))
	return append(ad, id[:]...)
}

// blobWorker holds per-goroutine scratch state for hashing and sealing.
type blobWorker struct {
	r      *Repository
	hasher [3]*blake3.Hasher // by blobType
	comp   []byte
	ad     [33]byte
}

func (r *Repository) newBlobWorker() *blobWorker {
	w := &blobWorker{r: r}
	for _, t := range []blobType{dataBlob, treeBlob} {
		h, err := blake3.NewKeyed(r.idKey(t))
		if err != nil {
			panic(err) // key lengths are validated when the key is loaded
		}
		w.hasher[t] = h
	}
	return w
}

// idKey is the hashing key for blobs of type t. Trees get a key derived
// from the chunk key, so a file that happens to contain a tree's encoding
// can never be mistaken for that tree.
func (r *Repository) idKey(t blobType) []byte {
	if t == treeBlob {
		k := make([]byte, 32)
		blake3.DeriveKey("clusterguard 2024 tree id key v1", r.key.ChunkID, k)
		return k
	}
	return r.key.ChunkID
}

// id returns the keyed BLAKE3 hash of data as a blob of type t.
func (w *blobWorker) id(t blobType, data []byte) ID {
	h := w.hasher[t]
	h.Reset()
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	return id
}

// store compresses data (unless it does not pay) and seals it into pk.
// It returns the stored (sealed) size.
func (w *blobWorker) store(ctx context.Context, pk *packer, t blobType, id ID, data []byte) (int, error) {
	e := blobEntry{ID: id, Type: t, RawLength: uint32(len(data))}
	plain := data
	if t == treeBlob || compressible(data) {
		w.comp = w.r.enc.EncodeAll(data, w.comp[:0])
		// Compression that saves under 3% is not worth the decode cost.
		if len(w.comp) < len(data)-len(data)/32 {
			plain = w.comp
			e.Flags |= flagCompressed
		}
	}
	w.ad[0] = byte(t)
	copy(w.ad[1:], id[:])
	return pk.sealAdd(ctx, e, plain, w.ad[:])
}

// openBlob authenticates and decompresses a sealed blob and returns the
// content. Stored (uncompressed) content is decrypted in place and aliases
// sealed; compressed content is decoded into dst's storage when it is big
// enough.
func (r *Repository) openBlob(e blobEntry, sealed, dst []byte) ([]byte, error) {
	plain, err := r.crypt.openInPlace(sealed, blobAD(e.Type, e.ID))
	if err != nil {
		return nil, err
	}
	if e.Flags&flagCompressed == 0 {
		if len(plain) != int(e.RawLength) {
			return nil, fmt.Errorf("content is %d bytes, index says %d", len(plain), e.RawLength)
		}
		return plain, nil
	}
	// Slack past the content lets the zstd decoder use its fast copy loops
	// (it needs room for a whole block plus 16 bytes); without it, it falls
	// back to bounds-exact copies at about half the speed.
	const decodeSlack = 128<<10 + 64
	if cap(dst) < int(e.RawLength)+decodeSlack {
		dst = make([]byte, 0, int(e.RawLength)+decodeSlack)
	}
	out, err := r.dec.DecodeAll(plain, dst[:0])
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if len(out) != int(e.RawLength) {
		return nil, fmt.Errorf("content is %d bytes, index says %d", len(out), e.RawLength)
	}
	return out, nil
}

// errBlobMissing: the index has no entry for a blob.
var errBlobMissing = errors.New("not in the index")

// loadBlob reads blob id of type t. If the pack has vanished (a prune in
// another process replaced it), the index is reloaded once and the read
// retried.
func (r *Repository) loadBlob(ctx context.Context, t blobType, id ID, dst []byte) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		loc, ok := r.index().lookup(id)
		if !ok || loc.Type != t {
			if attempt == 0 {
				if _, err := r.syncIndex(ctx); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("%s blob %s: %w", t, id.Short(), errBlobMissing)
		}
		sealed, err := r.be.Load(ctx, Handle{Type: PackFile, Name: loc.Pack.String()}, int64(loc.Offset), int64(loc.Length))
		if errors.Is(err, ErrNotExist) && attempt == 0 {
			if _, err := r.syncIndex(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s blob %s in pack %s: %w", t, id.Short(), loc.Pack.Short(), err)
		}
		if len(sealed) != int(loc.Length) {
			return nil, fmt.Errorf("%s blob %s in pack %s: short read (%d of %d bytes; pack truncated?)", t, id.Short(), loc.Pack.Short(), len(sealed), loc.Length)
		}
		out, err := r.openBlob(loc.blobEntry, sealed, dst)
		if err != nil {
			return nil, fmt.Errorf("%s blob %s in pack %s: %w", t, id.Short(), loc.Pack.Short(), err)
		}
		return out, nil
	}
}

// loadTree returns the decoded tree id, from cache when possible.
func (r *Repository) loadTree(ctx context.Context, id ID) (*tree, error) {
	if t := r.trees.get(id); t != nil {
		return t, nil
	}
	raw, err := r.loadBlob(ctx, treeBlob, id, nil)
	if err != nil {
		return nil, err
	}
	t, err := decodeTree(raw)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	r.trees.put(id, t, len(raw)+len(t.Nodes)*64)
	return t, nil
}

var zeroBlock [maxChunkLimit]byte

// isZero reports whether b is all zero bytes (memequal against a zero page
// runs at memory speed).
func isZero(b []byte) bool {
	if len(b) == 0 || b[0] != 0 || b[len(b)-1] != 0 {
		return len(b) == 0
	}
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// compressible estimates whether zstd will gain anything, from a byte
// histogram of a sample: random or already-compressed data has a near-flat
// histogram. Skipping those chunks avoids spending CPU on a compression
// attempt that would be thrown away.
func compressible(b []byte) bool {
	if len(b) < 512 {
		return len(b) > 0
	}
	var hist [256]uint32
	// Sample up to 16 KiB in 4 spread windows.
	const win = 4096
	samples := 0
	for i := 0; i < 4; i++ {
		off := (len(b) - win) * i / 3
		if off < 0 {
			off = 0
		}
		end := min(off+win, len(b))
		for _, c := range b[off:end] {
			hist[c]++
		}
		samples += end - off
	}
	// Shannon entropy estimate in bits per byte.
	var ent float64
	inv := 1 / float64(samples)
	for _, c := range hist {
		if c != 0 {
			p := float64(c) * inv
			ent -= p * math.Log2(p)
		}
	}
	return ent < 7.5
}
