package repository

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestDirectReadvReadsPiecesAndStopsAtEOF(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := testChunkerData(5*directAlign*4+321, 3)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	d := openDirect(p)
	if d == nil {
		t.Skip("filesystem does not support O_DIRECT")
	}
	defer d.Close()
	pools := newBufPools(1 << 20)
	bs := 4 * directAlign
	// Three pieces from the second block; the last two (the very last one
	// short); two full pieces where the file has less (it shrank).
	for _, c := range []struct{ off, pieces, last, want int }{
		{bs, 3, bs, 3 * bs},
		{4 * bs, 2, 321, bs + 321},
		{4 * bs, 2, bs, bs + 321},
	} {
		views := make([][]byte, c.pieces)
		for i := range views {
			views[i] = (*pools.get(bs))[:bs]
		}
		views[c.pieces-1] = views[c.pieces-1][:c.last]
		n, ok := d.readvAt(views, int64(c.off))
		if !ok || n != c.want {
			t.Fatalf("readv at %d: %d bytes (ok %v), want %d", c.off, n, ok, c.want)
		}
		var got []byte
		for _, v := range views {
			got = append(got, v...)
		}
		if !bytes.Equal(got[:n], data[c.off:c.off+n]) {
			t.Fatalf("readv at %d: bytes differ from the file", c.off)
		}
	}
	// A piece not a multiple of the alignment before the last is refused.
	short := (*pools.get(bs))[:100]
	if _, ok := d.readvAt([][]byte{short, (*pools.get(bs))[:bs]}, 0); ok {
		t.Fatal("misaligned piece accepted")
	}
}
