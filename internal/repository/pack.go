package repository

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// blobType says what a blob holds.
type blobType uint8

const (
	dataBlob blobType = 1 // a chunk of file content
	treeBlob blobType = 2 // an encoded directory (tree)
)

func (t blobType) String() string {
	switch t {
	case dataBlob:
		return "data"
	case treeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

// flagCompressed: the blob's plaintext is a zstd frame of RawLength bytes.
const flagCompressed = 1

// blobEntry locates one blob inside a pack.
type blobEntry struct {
	ID        ID
	Type      blobType
	Flags     uint8
	Offset    uint32 // of the sealed blob within the pack
	Length    uint32 // sealed length (nonce + ciphertext + tag)
	RawLength uint32 // length of the original content
}

// packEntries lists a pack's blobs in file order.
type packEntries struct {
	Pack  ID
	Blobs []blobEntry
}

// Pack header plaintext (sealed with adHeader, followed by its sealed length
// as a little-endian uint32 at the very end of the pack):
//
//	version  byte (1)
//	count    uvarint
//	count ×  type byte | flags byte | length uvarint | rawLength uvarint | id [32]byte
//
// Offsets are implicit: blobs are stored back to back from offset 0.
const packHeaderVersion = 1

const (
	maxPackSize      = 1 << 31 // sanity bound on pack sizes and offsets
	minHeaderEntry   = 1 + 1 + 1 + 1 + 32
	packTrailerBytes = 4
)

func encodePackHeader(blobs []blobEntry) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(blobs)*(2+2*binary.MaxVarintLen32+32))
	b = append(b, packHeaderVersion)
	b = binary.AppendUvarint(b, uint64(len(blobs)))
	for _, e := range blobs {
		b = append(b, byte(e.Type), e.Flags)
		b = binary.AppendUvarint(b, uint64(e.Length))
		b = binary.AppendUvarint(b, uint64(e.RawLength))
		b = append(b, e.ID[:]...)
	}
	return b
}

// decodePackHeader parses a header plaintext and fills in offsets.
func decodePackHeader(b []byte) ([]blobEntry, error) {
	d := decoder{b: b}
	if v := d.byte(); v != packHeaderVersion {
		if d.err != nil {
			return nil, fmt.Errorf("pack header: %w", d.err)
		}
		return nil, fmt.Errorf("pack header: unsupported version %d", v)
	}
	n := d.count(minHeaderEntry)
	var blobs []blobEntry
	if n > 0 {
		blobs = make([]blobEntry, 0, n)
	}
	var off uint64
	for i := 0; i < n && d.err == nil; i++ {
		var e blobEntry
		e.Type = blobType(d.byte())
		e.Flags = d.byte()
		length := d.uvarint()
		raw := d.uvarint()
		d.read(e.ID[:])
		if d.err != nil {
			break
		}
		if err := checkBlob(e.Type, e.Flags, length, raw); err != nil {
			return nil, fmt.Errorf("pack header entry %d: %w", i, err)
		}
		if off+length > maxPackSize {
			return nil, fmt.Errorf("pack header entry %d: blob ends beyond %d bytes", i, uint64(maxPackSize))
		}
		e.Offset, e.Length, e.RawLength = uint32(off), uint32(length), uint32(raw)
		off += length
		blobs = append(blobs, e)
	}
	if d.err != nil {
		return nil, fmt.Errorf("pack header: %w", d.err)
	}
	if d.rest() != 0 {
		return nil, fmt.Errorf("pack header: %d trailing bytes", d.rest())
	}
	return blobs, nil
}

func checkBlob(t blobType, flags uint8, length, raw uint64) error {
	if t != dataBlob && t != treeBlob {
		return fmt.Errorf("unknown blob type %d", t)
	}
	if flags&^flagCompressed != 0 {
		return fmt.Errorf("unknown blob flags %#x", flags)
	}
	if length < sealExtra || length > maxChunkLimit*2 {
		return fmt.Errorf("blob length %d out of range", length)
	}
	if raw > maxChunkLimit*2 {
		return fmt.Errorf("blob raw length %d out of range", raw)
	}
	if flags&flagCompressed == 0 && raw+sealExtra != length {
		return fmt.Errorf("uncompressed blob length %d does not match raw length %d", length, raw)
	}
	return nil
}

// decoder reads the binary formats; the first error sticks and later reads
// return zero values, so parsers check d.err once per record.
type decoder struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("truncated data")

func (d *decoder) rest() int { return len(d.b) - d.off }

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.err = errShort
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err = errShort
		if n < 0 {
			d.err = errors.New("varint overflows 64 bits")
		}
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.err = errShort
		if n < 0 {
			d.err = errors.New("varint overflows 64 bits")
		}
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) read(p []byte) {
	if d.err != nil {
		return
	}
	if d.rest() < len(p) {
		d.err = errShort
		return
	}
	copy(p, d.b[d.off:])
	d.off += len(p)
}

// bytes returns the next n bytes without copying.
func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(d.rest()) < n {
		d.err = errShort
		return nil
	}
	v := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return v
}

// count reads an element count and rejects counts that cannot fit in the
// remaining bytes (each element taking at least minSize), so a corrupted
// count cannot make the parser allocate huge slices.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(d.rest()/minSize) {
		d.err = fmt.Errorf("count %d exceeds what %d remaining bytes can hold", n, d.rest())
		return 0
	}
	return int(n)
}

// readPackHeader loads and decrypts the header of pack id (size bytes).
func (r *Repository) readPackHeader(ctx context.Context, id ID, size int64) ([]blobEntry, error) {
	h := Handle{Type: PackFile, Name: id.String()}
	if size < packTrailerBytes+sealExtra {
		return nil, fmt.Errorf("pack %s: %d bytes is too short to hold a header", id.Short(), size)
	}
	// Most headers are small: fetch a tail that probably holds all of it.
	tailLen := min(size, 64<<10)
	tail, err := r.be.Load(ctx, h, size-tailLen, tailLen)
	if err != nil {
		return nil, fmt.Errorf("pack %s: load header: %w", id.Short(), err)
	}
	if int64(len(tail)) != tailLen {
		return nil, fmt.Errorf("pack %s: short read of header (%d of %d bytes)", id.Short(), len(tail), tailLen)
	}
	return r.parsePackTail(id, tail, size)
}

// parsePackTail decodes the header from the last bytes of a pack of the
// given total size. If tail is shorter than the header it reports so.
func (r *Repository) parsePackTail(id ID, tail []byte, size int64) ([]blobEntry, error) {
	if len(tail) < packTrailerBytes {
		return nil, fmt.Errorf("pack %s: truncated trailer", id.Short())
	}
	hlen := int64(binary.LittleEndian.Uint32(tail[len(tail)-packTrailerBytes:]))
	if hlen < sealExtra || hlen+packTrailerBytes > size {
		return nil, fmt.Errorf("pack %s: header length %d is impossible for a %d-byte pack (truncated or corrupt)", id.Short(), hlen, size)
	}
	if hlen+packTrailerBytes > int64(len(tail)) {
		return nil, errHeaderBeyondTail{need: hlen + packTrailerBytes}
	}
	sealed := tail[int64(len(tail))-packTrailerBytes-hlen : len(tail)-packTrailerBytes]
	plain, err := r.crypt.open(nil, sealed, adHeader)
	if err != nil {
		return nil, fmt.Errorf("pack %s: header: %w", id.Short(), err)
	}
	blobs, err := decodePackHeader(plain)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	dataEnd := size - packTrailerBytes - hlen
	for _, b := range blobs {
		if int64(b.Offset)+int64(b.Length) > dataEnd {
			return nil, fmt.Errorf("pack %s: blob %s extends past the data area", id.Short(), b.ID.Short())
		}
	}
	return blobs, nil
}

type errHeaderBeyondTail struct{ need int64 }

func (e errHeaderBeyondTail) Error() string { return fmt.Sprintf("header needs %d bytes", e.need) }

// loadPackHeader is readPackHeader with a second, exact read when the header
// is bigger than the first guess.
func (r *Repository) loadPackHeader(ctx context.Context, id ID, size int64) ([]blobEntry, error) {
	blobs, err := r.readPackHeader(ctx, id, size)
	var big errHeaderBeyondTail
	if errors.As(err, &big) {
		tail, lerr := r.be.Load(ctx, Handle{Type: PackFile, Name: id.String()}, size-big.need, big.need)
		if lerr != nil {
			return nil, fmt.Errorf("pack %s: load header: %w", id.Short(), lerr)
		}
		return r.parsePackTail(id, tail, size)
	}
	return blobs, err
}

// finishedPack is a complete pack ready to upload.
type finishedPack struct {
	data  []byte
	blobs []blobEntry
	buf   *[]byte // returned to ring after upload
	ring  *bufRing
}

// packer accumulates sealed blobs into packs of about target bytes and hands
// complete packs to an uploader. Safe for concurrent use.
type packer struct {
	r      *Repository
	target int
	out    chan<- *finishedPack
	bufs   *bufRing

	mu    sync.Mutex
	buf   *[]byte
	blobs []blobEntry
}

func newPacker(r *Repository, target int, out chan<- *finishedPack, bufs *bufRing) *packer {
	return &packer{r: r, target: target, out: out, bufs: bufs}
}

// add appends a sealed blob. A pack that would grow past its target is
// finished first (and queued, blocking while the upload queue is full), so
// pack buffers never have to grow.
func (p *packer) add(ctx context.Context, e blobEntry, sealed []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.makeRoomLocked(ctx, len(sealed)); err != nil {
		return err
	}
	e.Offset = uint32(len(*p.buf))
	e.Length = uint32(len(sealed))
	*p.buf = append(*p.buf, sealed...)
	p.blobs = append(p.blobs, e)
	return nil
}

// sealAdd encrypts plain straight into the pack (saving a copy and a
// scratch buffer per worker); e gets its offset and length filled in.
func (p *packer) sealAdd(ctx context.Context, e blobEntry, plain, ad []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.makeRoomLocked(ctx, len(plain)+sealExtra); err != nil {
		return 0, err
	}
	start := len(*p.buf)
	out, err := p.r.crypt.seal(*p.buf, plain, ad)
	if err != nil {
		return 0, err
	}
	*p.buf = out
	e.Offset = uint32(start)
	e.Length = uint32(len(out) - start)
	p.blobs = append(p.blobs, e)
	return int(e.Length), nil
}

func (p *packer) makeRoomLocked(ctx context.Context, n int) error {
	if p.buf != nil && len(p.blobs) > 0 && len(*p.buf)+n > p.target {
		if err := p.finishLocked(ctx); err != nil {
			return err
		}
	}
	if p.buf == nil {
		b, err := p.bufs.get(ctx)
		if err != nil {
			return err
		}
		p.buf = b
		*p.buf = (*p.buf)[:0]
	}
	return nil
}

// flush finishes the current partial pack, if any.
func (p *packer) flush(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.blobs) == 0 {
		return nil
	}
	return p.finishLocked(ctx)
}

func (p *packer) finishLocked(ctx context.Context) error {
	hdr := encodePackHeader(p.blobs)
	data, err := p.r.crypt.seal(*p.buf, hdr, adHeader)
	if err != nil {
		return err
	}
	sealedLen := len(data) - len(*p.buf)
	data = binary.LittleEndian.AppendUint32(data, uint32(sealedLen))
	*p.buf = data
	fp := &finishedPack{data: data, blobs: p.blobs, buf: p.buf, ring: p.bufs}
	p.buf, p.blobs = nil, nil
	select {
	case p.out <- fp:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bufRing hands out at most n buffers, allocated on first use, so the
// memory of packs being filled or uploaded is bounded (n·size) however
// slow the backend is: get blocks until a buffer comes back.
type bufRing struct {
	free chan *[]byte
	size int
	mu   sync.Mutex
	made int
}

func newBufRing(n, size int) *bufRing {
	return &bufRing{free: make(chan *[]byte, n), size: size}
}

func (b *bufRing) get(ctx context.Context) (*[]byte, error) {
	select {
	case buf := <-b.free:
		return buf, nil
	default:
	}
	b.mu.Lock()
	if b.made < cap(b.free) {
		b.made++
		b.mu.Unlock()
		buf := make([]byte, 0, b.size)
		return &buf, nil
	}
	b.mu.Unlock()
	select {
	case buf := <-b.free:
		return buf, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *bufRing) put(buf *[]byte) {
	select {
	case b.free <- buf:
	default: // not one of ours; let it go
	}
}

// packBufSize is the capacity for packs of target bytes holding blobs of up
// to maxBlob bytes (a bigger blob gets a pack of its own), plus the header.
func packBufSize(target, maxBlob int) int {
	return max(target, maxBlob+sealExtra) + 64<<10
}

// randomID returns a fresh random id (pack, index and lock names).
func (r *Repository) randomID() (ID, error) {
	var id ID
	if _, err := io.ReadFull(r.opts.Rand, id[:]); err != nil {
		return id, fmt.Errorf("read random id: %w", err)
	}
	return id, nil
}
