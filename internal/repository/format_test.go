package repository

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleTree() *tree {
	return &tree{Nodes: []*node{
		{Name: "a.txt", Type: NodeFile, Mode: 0o644, MTime: 1700000000123456789, UID: 1000, GID: 1000, Inode: 42, Size: 12,
			Content: []contentRef{{ID: ID{1, 2, 3}, Length: 10}, {Length: 2}}},
		{Name: "disk.img", Type: NodeFile, Mode: 0o600, MTime: -5, Size: 8192, BlockSize: 4096,
			Content: []contentRef{{Length: 4096}, {ID: ID{9}, Length: 4096}}},
		{Name: "empty", Type: NodeFile, Mode: 0o644},
		{Name: "link", Type: NodeSymlink, Mode: 0o777, Target: "../elsewhere"},
		{Name: "sub", Type: NodeDir, Mode: 0o755 | fs.ModeSticky, Subtree: ID{7, 7}},
	}}
}

func samplePacks() []packEntries {
	return []packEntries{
		{Pack: ID{1}, Blobs: []blobEntry{
			{ID: ID{2}, Type: dataBlob, Flags: flagCompressed, Offset: 0, Length: 100, RawLength: 1000},
			{ID: ID{3}, Type: treeBlob, Offset: 100, Length: 40, RawLength: 12},
		}},
		{Pack: ID{4}},
	}
}

func sampleSnapshot() []byte {
	b, _ := json.Marshal(Snapshot{
		SnapshotMeta: SnapshotMeta{Workload: "db", Node: "n1", Cluster: "c", Group: "g", RunID: "r1",
			Consistency: ConsistencyCrash, Tags: []string{"t"}, Labels: map[string]string{"a": "b"}, Time: time.Unix(1700000000, 0).UTC()},
		Root: "/data", Tree: ID{5}, Version: FormatVersion,
	})
	return b
}

func TestTreeRoundTrip(t *testing.T) {
	in := sampleTree()
	out, err := decodeTree(encodeTree(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the tree:\n%+v\n%+v", in.Nodes[0], out.Nodes[0])
	}
}

func TestTreeDecoderRejectsEscapingAndDuplicateNames(t *testing.T) {
	for _, name := range []string{"..", ".", "", "a/b", "x\x00"} {
		tr := &tree{Nodes: []*node{{Name: name, Type: NodeDir}}}
		if _, err := decodeTree(encodeTree(tr)); err == nil || !strings.Contains(err.Error(), "name") {
			t.Errorf("name %q accepted: %v", name, err)
		}
	}
	dup := &tree{Nodes: []*node{{Name: "a", Type: NodeDir}, {Name: "a", Type: NodeFile}}}
	if _, err := decodeTree(encodeTree(dup)); err == nil {
		t.Error("duplicate names accepted")
	}
	bad := sampleTree()
	bad.Nodes[0].Size = 13 // content adds up to 12
	if _, err := decodeTree(encodeTree(bad)); err == nil {
		t.Error("size mismatch accepted")
	}
}

func TestIndexAndHeaderRoundTrip(t *testing.T) {
	in := samplePacks()
	out, err := decodeIndex(encodeIndex(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || !reflect.DeepEqual(out[0], in[0]) || out[1].Pack != in[1].Pack || len(out[1].Blobs) != 0 {
		t.Fatalf("index round trip: %+v", out)
	}
	hdr, err := decodePackHeader(encodePackHeader(in[0].Blobs))
	if err != nil || !reflect.DeepEqual(hdr, in[0].Blobs) {
		t.Fatalf("header round trip: %+v %v", hdr, err)
	}
	// A count claiming more entries than the bytes can hold fails fast.
	if _, err := decodeIndex([]byte{indexVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Fatal("absurd count accepted")
	}
}

// Fuzz targets: every decoder of untrusted bytes must fail cleanly (never
// panic or allocate without bound), and whatever it accepts must encode
// back to something it decodes identically. The f.Add seeds run as
// ordinary tests; run longer with, for example,
//
//	go test ./internal/repository -run '^$' -fuzz '^FuzzTree$' -fuzztime 1m

func FuzzTree(f *testing.F) {
	f.Add(encodeTree(sampleTree()))
	f.Add(encodeTree(sampleTreeFastHash()))
	f.Add(encodeTree(&tree{}))
	f.Add([]byte{treeVersion, 1, 2, '.', '.', 2})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := decodeTree(b)
		if err != nil {
			return
		}
		again, err := decodeTree(encodeTree(tr))
		if err != nil || !reflect.DeepEqual(tr, again) {
			t.Fatalf("accepted tree does not round trip: %v", err)
		}
	})
}

func FuzzIndex(f *testing.F) {
	f.Add(encodeIndex(samplePacks()))
	f.Add(encodeIndex(nil))
	f.Add([]byte{indexVersion, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		packs, err := decodeIndex(b)
		if err != nil {
			return
		}
		again, err := decodeIndex(encodeIndex(packs))
		if err != nil || !reflect.DeepEqual(packs, again) {
			t.Fatalf("accepted index does not round trip: %v", err)
		}
	})
}

func FuzzPackHeader(f *testing.F) {
	f.Add(encodePackHeader(samplePacks()[0].Blobs))
	f.Add(encodePackHeader(nil))
	f.Add([]byte{packHeaderVersion, 3, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		blobs, err := decodePackHeader(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodePackHeader(blobs), b) {
			// Varints have one canonical encoding in our encoder; anything
			// accepted must be re-encodable and decode the same.
			again, err := decodePackHeader(encodePackHeader(blobs))
			if err != nil || !reflect.DeepEqual(again, blobs) {
				t.Fatalf("accepted header does not round trip: %v", err)
			}
		}
	})
}

// FuzzPackTail feeds whole (encrypted) pack tails through the parser a
// reader uses, so length fields read from disk are exercised too.
func FuzzPackTail(f *testing.F) {
	r := &Repository{}
	c, err := newCrypter(make([]byte, 32), bytes.NewReader(make([]byte, 1<<16)))
	if err != nil {
		f.Fatal(err)
	}
	r.crypt = c
	sealed, _ := c.seal(make([]byte, 140), encodePackHeader(samplePacks()[0].Blobs), adHeader)
	l := len(sealed) - 140
	f.Add(append(sealed, byte(l), byte(l>>8), 0, 0))
	f.Add([]byte{1, 2, 3, 4})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = r.parsePackTail(ID{}, b, int64(len(b)))
	})
}

func FuzzSnapshot(f *testing.F) {
	f.Add(sampleSnapshot())
	f.Add([]byte(`{"version":1,"tree":"00"}`))
	f.Add([]byte(`{"version":1,"tree":"0500000000000000000000000000000000000000000000000000000000000000","consistency":"maybe"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		raw, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeSnapshot(raw); err != nil {
			t.Fatalf("accepted snapshot does not round trip: %v", err)
		}
	})
}
