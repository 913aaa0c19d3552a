// Command gendata writes the deterministic benchmark dataset for
// tools/bench/repo-bench.sh and applies the "1% change" to it.
//
//	gendata generate -dir DIR [-seed N] [-image-mib 768] [-small-mib 256]
//	gendata mutate   -dir DIR -ranges FILE [-seed N] [-percent 1]
//
// generate writes DIR/disk.img, a disk-image-like file made of zero, random
// (incompressible) and text (compressible) extents, and DIR/files/, thousands
// of small text and binary files. mutate overwrites about 1% of disk.img in
// scattered 64 KiB-1 MiB ranges (the granularity of block-level change
// tracking), writes those ranges to FILE in the format
// `engine repo backup --changed-ranges` reads ({"disk.img": [{"offset": N,
// "length": N}, ...]}, paths relative to DIR), and modifies 1% of the small
// files. The same seed always gives the same bytes.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"
)

const (
	imageName = "disk.img"
	smallDir  = "files"
	align     = 4 << 10
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gendata generate|mutate [flags] (see the package comment)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "generate":
		err = generate(os.Args[2:])
	case "mutate":
		err = mutate(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q: want generate or mutate", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendata:", err)
		os.Exit(1)
	}
}

func newRand(seed uint64, stream string) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	copy(s[8:], stream)
	return rand.NewChaCha8(s)
}

func generate(args []string) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	dir := fs.String("dir", "", "output directory (created)")
	seed := fs.Uint64("seed", 1, "seed")
	imageMiB := fs.Int("image-mib", 768, "size of disk.img in MiB")
	smallMiB := fs.Int("small-mib", 256, "total size of the small files in MiB")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("generate: -dir is required")
	}
	start := time.Now()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	if err := writeImage(filepath.Join(*dir, imageName), int64(*imageMiB)<<20, *seed); err != nil {
		return err
	}
	n, total, err := writeSmallFiles(filepath.Join(*dir, smallDir), int64(*smallMiB)<<20, *seed)
	if err != nil {
		return err
	}
	fmt.Printf("generated %s: %s of %d MiB, %d small files totalling %.1f MiB, in %s\n",
		*dir, imageName, *imageMiB, n, float64(total)/(1<<20), time.Since(start).Round(time.Millisecond))
	return nil
}

// writeImage lays out extents of 1-16 MiB: ~30% zero, ~35% random, ~35% text,
// like a used VM disk (free space, compressed/encrypted data, logs and text).
func writeImage(path string, size int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 4<<20)
	r := rand.New(newRand(seed, "image-layout"))
	data := newRand(seed, "image-random")
	text := newTextGen(seed, "image-text")
	zero := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		n := (1 + r.Int64N(16)) << 20
		n = min(n, size-off)
		switch p := r.IntN(100); {
		case p < 30:
			for left := n; left > 0; left -= int64(len(zero)) {
				if _, err := w.Write(zero[:min(left, int64(len(zero)))]); err != nil {
					return err
				}
			}
		case p < 65:
			if _, err := io.CopyN(w, data, n); err != nil {
				return err
			}
		default:
			if err := text.write(w, n); err != nil {
				return err
			}
		}
		off += n
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// writeSmallFiles writes files of 1-64 KiB (mean ~32 KiB) into 64
// directories until total bytes are written: 85% text, 15% random.
func writeSmallFiles(dir string, total int64, seed uint64) (int, int64, error) {
	r := rand.New(newRand(seed, "small-layout"))
	data := newRand(seed, "small-random")
	text := newTextGen(seed, "small-text")
	var written int64
	n := 0
	for ; written < total; n++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", n%64))
		if n < 64 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return 0, 0, err
			}
		}
		size := min(1<<10+r.Int64N(63<<10), total-written)
		f, err := os.Create(filepath.Join(sub, fmt.Sprintf("f%05d.txt", n)))
		if err != nil {
			return 0, 0, err
		}
		w := bufio.NewWriterSize(f, 64<<10)
		if r.IntN(100) < 15 {
			_, err = io.CopyN(w, data, size)
		} else {
			err = text.write(w, size)
		}
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, 0, err
		}
		written += size
	}
	return n, written, nil
}

// textGen produces log-like lines from a fixed vocabulary: compressible
// (zstd ~3-4x) but not repetitive enough to deduplicate.
type textGen struct {
	r     *rand.Rand
	words []string
	line  []byte
	seq   uint64
}

func newTextGen(seed uint64, stream string) *textGen {
	r := rand.New(newRand(seed, stream))
	words := make([]string, 2048)
	const letters = "abcdefghijklmnopqrstuvwxyz"
	for i := range words {
		b := make([]byte, 2+r.IntN(9))
		for j := range b {
			b[j] = letters[r.IntN(len(letters))]
		}
		words[i] = string(b)
	}
	return &textGen{r: r, words: words}
}

var levels = []string{"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}

func (g *textGen) write(w io.Writer, n int64) error {
	for n > 0 {
		g.seq++
		g.line = g.line[:0]
		g.line = fmt.Appendf(g.line, "2026-02-%02d %02d:%02d:%02d.%03d %s [%d] ",
			1+g.r.IntN(28), g.r.IntN(24), g.r.IntN(60), g.r.IntN(60), g.r.IntN(1000),
			levels[g.r.IntN(len(levels))], g.seq)
		for range 4 + g.r.IntN(14) {
			g.line = append(g.line, g.words[g.r.IntN(len(g.words))]...)
			g.line = append(g.line, ' ')
		}
		g.line = fmt.Appendf(g.line, "id=%x\n", g.r.Uint32())
		out := g.line
		if int64(len(out)) > n {
			out = out[:n]
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
		n -= int64(len(out))
	}
	return nil
}

// Range is one changed byte range, as the CLI's --changed-ranges reads it.
type Range struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

func mutate(args []string) error {
	fs := flag.NewFlagSet("mutate", flag.ContinueOnError)
	dir := fs.String("dir", "", "dataset directory written by generate")
	rangesFile := fs.String("ranges", "", "where to write the changed ranges (JSON)")
	seed := fs.Uint64("seed", 1, "seed (use another seed for another round of changes)")
	percent := fs.Float64("percent", 1, "percentage of the image and of the small files to change")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *rangesFile == "" {
		return fmt.Errorf("mutate: -dir and -ranges are required")
	}
	img := filepath.Join(*dir, imageName)
	fi, err := os.Stat(img)
	if err != nil {
		return fmt.Errorf("mutate: %w (run generate first)", err)
	}
	ranges := pickRanges(fi.Size(), *percent, *seed)
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	data := newRand(*seed, "mutate-data")
	var changed int64
	for _, rg := range ranges {
		buf := make([]byte, rg.Length)
		_, _ = data.Read(buf)
		if _, err := f.WriteAt(buf, rg.Offset); err != nil {
			f.Close()
			return err
		}
		changed += rg.Length
	}
	if err := f.Close(); err != nil {
		return err
	}
	out, err := json.MarshalIndent(map[string][]Range{imageName: ranges}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*rangesFile, out, 0o644); err != nil {
		return err
	}

	touched, err := touchSmallFiles(filepath.Join(*dir, smallDir), *percent, *seed)
	if err != nil {
		return err
	}
	fmt.Printf("mutated %s: %d ranges, %.2f MiB (%.2f%% of the image); %d small files changed; ranges in %s\n",
		*dir, len(ranges), float64(changed)/(1<<20), 100*float64(changed)/float64(fi.Size()), touched, *rangesFile)
	return nil
}

// pickRanges chooses non-overlapping 4 KiB-aligned ranges of 64 KiB-1 MiB
// until percent of size is covered, sorted by offset.
func pickRanges(size int64, percent float64, seed uint64) []Range {
	r := rand.New(newRand(seed, "mutate-layout"))
	target := int64(float64(size) * percent / 100)
	var ranges []Range
	var covered int64
	overlaps := func(c Range) bool {
		for _, o := range ranges {
			if c.Offset < o.Offset+o.Length && o.Offset < c.Offset+c.Length {
				return true
			}
		}
		return false
	}
	for covered < target {
		length := (64<<10 + r.Int64N(960<<10)) / align * align
		length = min(length, (target-covered+align-1)/align*align)
		c := Range{Offset: r.Int64N((size-length)/align) * align, Length: length}
		if overlaps(c) {
			continue
		}
		ranges = append(ranges, c)
		covered += length
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i].Offset < ranges[j].Offset })
	return ranges
}

// touchSmallFiles rewrites the first line of percent of the small files (so
// content, size and mtime all change, as an edited file's would).
func touchSmallFiles(dir string, percent float64, seed uint64) (int, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	sort.Strings(files)
	r := rand.New(newRand(seed, "mutate-files"))
	n := int(float64(len(files)) * percent / 100)
	for _, i := range r.Perm(len(files))[:n] {
		old, err := os.ReadFile(files[i])
		if err != nil {
			return 0, err
		}
		edited := append(fmt.Appendf(nil, "edited by gendata mutate seed %d: %x\n", seed, r.Uint64()), old...)
		if err := os.WriteFile(files[i], edited, 0o644); err != nil {
			return 0, err
		}
	}
	return n, nil
}
