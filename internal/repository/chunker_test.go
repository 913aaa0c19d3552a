package repository

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func testChunkerData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func chunkAll(c *chunker, data []byte) []int {
	var sizes []int
	for len(data) > 0 {
		n := c.cut(data)
		sizes = append(sizes, n)
		data = data[n:]
	}
	return sizes
}

func TestChunkerSizesWithinBounds(t *testing.T) {
	p := ChunkerParams{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}
	c := newChunker(p, []byte("seed"))
	data := testChunkerData(8<<20, 1)
	sizes := chunkAll(c, data)
	total := 0
	for i, s := range sizes {
		total += s
		if s > p.Max || (s < p.Min && i != len(sizes)-1) {
			t.Fatalf("chunk %d has size %d outside [%d,%d]", i, s, p.Min, p.Max)
		}
	}
	if total != len(data) {
		t.Fatalf("chunks cover %d bytes, want %d", total, len(data))
	}
	avg := total / len(sizes)
	if avg < p.Avg/2 || avg > p.Avg*2 {
		t.Fatalf("average chunk %d far from target %d", avg, p.Avg)
	}
}

// An insertion near the start must only change the chunks around it: the
// boundaries resynchronise, which is what makes dedup work on edited files.
func TestChunkerResynchronises(t *testing.T) {
	p := ChunkerParams{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}
	c := newChunker(p, []byte("seed"))
	data := testChunkerData(2<<20, 2)
	edited := append(append(append([]byte{}, data[:1000]...), []byte("inserted bytes")...), data[1000:]...)
	set := map[string]bool{}
	off := 0
	for _, s := range chunkAll(c, data) {
		set[string(data[off:off+s])] = true
		off += s
	}
	shared, n := 0, 0
	off = 0
	for _, s := range chunkAll(c, edited) {
		if set[string(edited[off:off+s])] {
			shared++
		}
		n++
		off += s
	}
	if shared < n-3 {
		t.Fatalf("only %d of %d chunks survive a small insertion", shared, n)
	}
}

func TestChunkerSeedChangesBoundaries(t *testing.T) {
	p := ChunkerParams{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}
	data := testChunkerData(1<<20, 3)
	a := chunkAll(newChunker(p, []byte("one")), data)
	b := chunkAll(newChunker(p, []byte("two")), data)
	if len(a) == len(b) && bytes.Equal(intsBytes(a), intsBytes(b)) {
		t.Fatal("different seeds produced identical boundaries")
	}
	a2 := chunkAll(newChunker(p, []byte("one")), data)
	if !bytes.Equal(intsBytes(a), intsBytes(a2)) {
		t.Fatal("same seed produced different boundaries")
	}
}

func intsBytes(v []int) []byte {
	var b []byte
	for _, x := range v {
		b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24))
	}
	return b
}

func BenchmarkChunker(b *testing.B) {
	c := newChunker(DefaultChunker, []byte("bench"))
	data := testChunkerData(32<<20, 4)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		chunkAll(c, data)
	}
}
