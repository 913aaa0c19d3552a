package repository

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func sampleTreeFastHash() *tree {
	t := sampleTree()
	t.Nodes[1].FastHash = [][16]byte{{}, {1, 2, 3, 4}} // disk.img: a hole, a block
	return t
}

// Trees without fast hashes keep the version 1 encoding (same bytes, same
// ids as before fast hashes existed); a tree with them is version 2, and
// both decode.
func TestTreeFastHashVersions(t *testing.T) {
	v1 := encodeTree(sampleTree())
	if v1[0] != treeVersion {
		t.Fatalf("tree without fast hashes encoded as version %d", v1[0])
	}
	in := sampleTreeFastHash()
	v2 := encodeTree(in)
	if v2[0] != treeVersionFastHash {
		t.Fatalf("tree with fast hashes encoded as version %d", v2[0])
	}
	out, err := decodeTree(v2)
	if err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("version 2 round trip: %v\n%+v\n%+v", err, in.Nodes[1], out.Nodes[1])
	}
	// A version 1 reader's view: same entries, no hashes.
	old, err := decodeTree(v1)
	if err != nil || old.Nodes[1].FastHash != nil || !reflect.DeepEqual(old.Nodes[1].Content, out.Nodes[1].Content) {
		t.Fatalf("version 1: %v %+v", err, old.Nodes[1])
	}
}

func TestTreeFastHashDecoderRejects(t *testing.T) {
	good := encodeTree(sampleTreeFastHash())
	cases := map[string][]byte{
		"truncated hashes": good[:len(good)-1],
		"unknown version":  append([]byte{3}, good[1:]...),
	}
	// Unknown kind and a fast hash on a content-defined file.
	bad := sampleTreeFastHash()
	bad.Nodes[0].FastHash = [][16]byte{{}, {}}
	enc := encodeTree(bad)
	i := bytes.Index(enc, []byte("a.txt"))
	// a.txt's body ends with its kind byte, right before disk.img's name length.
	j := bytes.Index(enc, []byte("disk.img")) - 1 - 2*16 - 1
	if i < 0 || enc[j] != fastHashXXH3 {
		t.Fatalf("test encoding layout changed (kind byte at %d is %d)", j, enc[j])
	}
	cases["fast hash on a content-defined file"] = enc
	unknown := bytes.Clone(enc)
	unknown[j] = 7
	cases["unknown kind"] = unknown
	for name, b := range cases {
		if _, err := decodeTree(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := decodeTree(append([]byte{3}, good[1:]...)); err == nil || !strings.Contains(err.Error(), "unsupported version 3") {
		t.Errorf("unknown version: %v", err)
	}
}
