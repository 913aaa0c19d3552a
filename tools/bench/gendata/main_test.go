package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestPickRanges(t *testing.T) {
	const size = 768 << 20
	ranges := pickRanges(size, 1, 7)
	var total int64
	for i, r := range ranges {
		if r.Offset%align != 0 || r.Length%align != 0 || r.Length <= 0 {
			t.Fatalf("range %d %+v is not a positive 4 KiB-aligned range", i, r)
		}
		if r.Offset+r.Length > size {
			t.Fatalf("range %d %+v runs past the %d-byte image", i, r, size)
		}
		if i > 0 && ranges[i-1].Offset+ranges[i-1].Length > r.Offset {
			t.Fatalf("ranges %d and %d overlap or are unsorted: %+v %+v", i-1, i, ranges[i-1], r)
		}
		total += r.Length
	}
	if want := int64(size / 100); total < want || total > want+align {
		t.Fatalf("ranges cover %d bytes, want 1%% = %d (rounded up to 4 KiB)", total, want)
	}
	if again := pickRanges(size, 1, 7); !reflect.DeepEqual(again, ranges) {
		t.Fatal("the same seed picked different ranges")
	}
	if other := pickRanges(size, 1, 8); reflect.DeepEqual(other, ranges) {
		t.Fatal("another seed picked the same ranges")
	}
}

func TestGenerateAndMutate(t *testing.T) {
	dir := t.TempDir()
	gen := func(d string) {
		if err := generate([]string{"-dir", d, "-image-mib", "8", "-small-mib", "1", "-seed", "3"}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	gen(a)
	gen(b)
	imgA, _ := os.ReadFile(filepath.Join(a, imageName))
	imgB, _ := os.ReadFile(filepath.Join(b, imageName))
	if len(imgA) != 8<<20 || string(imgA) != string(imgB) {
		t.Fatalf("generate is not deterministic or has the wrong size (%d bytes)", len(imgA))
	}

	rangesFile := filepath.Join(dir, "ranges.json")
	if err := mutate([]string{"-dir", a, "-ranges", rangesFile, "-seed", "4"}); err != nil {
		t.Fatal(err)
	}
	var got map[string][]Range
	raw, err := os.ReadFile(rangesFile)
	if err != nil || json.Unmarshal(raw, &got) != nil || len(got[imageName]) == 0 {
		t.Fatalf("ranges file %s: %s, %v", rangesFile, raw, err)
	}
	// Bytes differ only inside the reported ranges: the hints are complete.
	mutated, _ := os.ReadFile(filepath.Join(a, imageName))
	inRange := func(off int) bool {
		for _, r := range got[imageName] {
			if int64(off) >= r.Offset && int64(off) < r.Offset+r.Length {
				return true
			}
		}
		return false
	}
	changed := 0
	for i := range mutated {
		if mutated[i] != imgB[i] {
			if !inRange(i) {
				t.Fatalf("byte %d changed outside the reported ranges", i)
			}
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("mutate changed nothing in the image")
	}
}
