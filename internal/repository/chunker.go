package repository

import (
	"fmt"
	"math/bits"

	"github.com/zeebo/blake3"
)

// ChunkerParams bound content-defined chunk sizes in bytes. Avg must be a
// power of two; Min < Avg < Max.
type ChunkerParams struct {
	Min int `json:"min"`
	Avg int `json:"avg"`
	Max int `json:"max"`
}

// DefaultChunker targets 1 MiB chunks: big enough that per-chunk overhead
// (index entry, header entry, AEAD tag) is negligible, small enough that a
// local edit re-stores little.
var DefaultChunker = ChunkerParams{Min: 512 << 10, Avg: 1 << 20, Max: 4 << 20}

const maxChunkLimit = 64 << 20

func (p ChunkerParams) validate() error {
	if p.Min < 64 || p.Min >= p.Avg || p.Avg >= p.Max || p.Max > maxChunkLimit || bits.OnesCount(uint(p.Avg)) != 1 {
		return fmt.Errorf("invalid chunker sizes min %d avg %d max %d: want 64 <= min < avg < max <= %d with avg a power of two", p.Min, p.Avg, p.Max, maxChunkLimit)
	}
	return nil
}

// chunker is FastCDC (Xia et al., 2016/2020) with normalized chunking level 2.
// The gear table is derived from a per-repository secret, so chunk
// boundaries (and hence chunk sizes) reveal nothing about the content to
// someone without the key. We use our own implementation because
// jotfs/fastcdc-go mutates a package-level table when seeded, which is a data
// race and gives different tables to successive chunkers.
//
// Boundaries are tested on the top bits of the gear hash, which depend on the
// last 64 bytes (the low bits would only see the last few bytes).
type chunker struct {
	gear          [256]uint64
	min, avg, max int
	maskS, maskL  uint64
}

func newChunker(p ChunkerParams, seed []byte) *chunker {
	c := &chunker{min: p.Min, avg: p.Avg, max: p.Max}
	var raw [256 * 8]byte
	h := blake3.NewDeriveKey("clusterguard 2024 chunker gear table v1")
	_, _ = h.Write(seed)
	_, _ = h.Digest().Read(raw[:])
	for i := range c.gear {
		var v uint64
		for j := 0; j < 8; j++ {
			v = v<<8 | uint64(raw[i*8+j])
		}
		c.gear[i] = v
	}
	b := bits.TrailingZeros(uint(p.Avg))
	c.maskS = ^uint64(0) << (64 - (b + 2))
	c.maskL = ^uint64(0) << (64 - (b - 2))
	return c
}

// cut returns the length of the chunk that starts at data[0]. The caller
// passes at least max bytes unless the input ends sooner.
func (c *chunker) cut(data []byte) int {
	n := len(data)
	if n <= c.min {
		return n
	}
	if n > c.max {
		n = c.max
	}
	norm := c.avg
	if norm > n {
		norm = n
	}
	var fp uint64
	g := &c.gear
	i := c.min
	for ; i < norm; i++ {
		fp = fp<<1 + g[data[i]]
		if fp&c.maskS == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		fp = fp<<1 + g[data[i]]
		if fp&c.maskL == 0 {
			return i + 1
		}
	}
	return n
}
