package repository

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestDirectReaderReadsExactlyAndFallsBack(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := testChunkerData(3*directAlign*16+123, 9) // not a multiple of the alignment
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	d := openDirect(p)
	if d == nil {
		t.Skip("filesystem does not support O_DIRECT")
	}
	defer d.Close()
	bufs := newBufPools(1 << 20)
	bs := 16 * directAlign
	for off := 0; off < len(data); off += bs {
		b := bufs.get(bs)
		want := data[off:min(off+bs, len(data))]
		n, ok := d.readAt((*b)[:len(want)], int64(off))
		if !ok {
			t.Fatalf("direct read at %d not done (buffer alignment?)", off)
		}
		if !bytes.Equal((*b)[:n], want) {
			t.Fatalf("direct read at %d: got %d bytes, differ from the file", off, n)
		}
	}
	// Unaligned offsets and buffers are refused, not misread.
	if _, ok := d.readAt(make([]byte, 100), 7); ok {
		t.Fatal("unaligned read accepted")
	}
}
