package repository_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/mem"
)

// Fixed-block files without changed-range hints: blocks equal to the
// parent's are taken from it, changed ones are stored, and the result
// always restores to the source's bytes.

const scanBS = 4096

// scanImage is 40 random blocks with two zero blocks and a short tail.
func scanImage(seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 11))
	img := randBytes(r, 40*scanBS+1000)
	clear(img[10*scanBS : 12*scanBS])
	return img
}

type scanFixture struct {
	t     *testing.T
	r     *repository.Repository
	be    *mem.Backend
	clock *fakeClock
	src   string
	path  string
	mtime time.Time
	opts  repository.BackupOptions
}

func newScanFixture(t *testing.T) *scanFixture {
	r, be, clock := newTestRepo(t)
	src := t.TempDir()
	f := &scanFixture{t: t, r: r, be: be, clock: clock, src: src, path: filepath.Join(src, "vm.img"), mtime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.opts = repository.BackupOptions{Root: src, FixedSizeThreshold: 8 * scanBS, FixedBlockSize: scanBS, Meta: repository.SnapshotMeta{Workload: "vm"}}
	return f
}

// write replaces the image in place (same inode) with a new mtime, like a
// VM writing to its disk.
func (f *scanFixture) write(img []byte) {
	f.t.Helper()
	if err := os.WriteFile(f.path, img, 0o600); err != nil {
		f.t.Fatal(err)
	}
	f.mtime = f.mtime.Add(time.Minute)
	f.clock.Add(time.Hour) // the next snapshot is the latest: the parent after it
	if err := os.Chtimes(f.path, f.mtime, f.mtime); err != nil {
		f.t.Fatal(err)
	}
}

// backup stores a snapshot and checks it restores to img exactly.
func (f *scanFixture) backup(img []byte) repository.BackupStats {
	f.t.Helper()
	ctx := context.Background()
	snap, st, err := f.r.Backup(ctx, f.opts)
	if err != nil {
		f.t.Fatal(err)
	}
	rc, _, err := f.r.OpenFile(ctx, snap.ID, "vm.img")
	if err != nil {
		f.t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil {
		f.t.Fatal(err)
	}
	if !bytes.Equal(got, img) {
		f.t.Fatalf("snapshot %s: restored %d bytes differ from the %d-byte source", snap.ShortID(), len(got), len(img))
	}
	dst := f.t.TempDir()
	if _, err := f.r.Restore(ctx, snap.ID, repository.RestoreOptions{Target: dst}); err != nil {
		f.t.Fatal(err)
	}
	disk, err := os.ReadFile(filepath.Join(dst, "vm.img"))
	if err != nil || !bytes.Equal(disk, img) {
		f.t.Fatalf("restore to disk differs from the source (%v)", err)
	}
	return st
}

func (f *scanFixture) expect(st repository.BackupStats, reused, added int64) {
	f.t.Helper()
	if st.BlocksReused != reused || st.ChunksAdded != added {
		f.t.Fatalf("reused %d blocks and added %d chunks, want %d and %d (stats %+v)", st.BlocksReused, st.ChunksAdded, reused, added, st)
	}
}

func TestUnhintedChangesReuseParentBlocks(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast hash", true: "content id"}[secure], func(t *testing.T) {
			t.Parallel()
			testUnhintedChanges(t, secure)
		})
	}
}

func testUnhintedChanges(t *testing.T, secure bool) {
	f := newScanFixture(t)
	f.opts.SecureBlockCompare = secure
	img := scanImage(1)
	f.write(img)
	st := f.backup(img)
	const data = 38 + 1 // non-zero blocks: 38 full ones and the tail
	f.expect(st, 0, data)

	// One changed block in the middle: the other blocks come from the parent.
	orig := bytes.Clone(img[20*scanBS : 21*scanBS])
	copy(img[20*scanBS+100:], "changed in the middle")
	f.write(img)
	st = f.backup(img)
	f.expect(st, data-1, 1)
	if st.BytesRead != int64(len(img))-2*scanBS && st.BytesRead != int64(len(img)) {
		t.Fatalf("read %d bytes of a %d-byte file", st.BytesRead, len(img))
	}

	// The short last block changed.
	copy(img[len(img)-10:], "end change")
	f.write(img)
	f.expect(f.backup(img), data-1, 1)

	// The block changed back to its older content: nothing new to store.
	copy(img[20*scanBS:], orig)
	f.write(img)
	f.expect(f.backup(img), data-1, 0)

	// Grown by two blocks and a bit: the old tail block (now full) and
	// the new blocks are stored.
	img = append(img, scanImage(2)[:2*scanBS+500]...)
	f.write(img)
	f.expect(f.backup(img), data-1, 3)

	// Shrunk to 30 blocks and a bit: the blocks before the cut are reused.
	img = img[:30*scanBS+123]
	f.write(img)
	f.expect(f.backup(img), 30-2, 1)

	// Blocks that became zeros are holes, not chunks.
	clear(img[0 : 2*scanBS])
	f.write(img)
	f.expect(f.backup(img), 30-2-2+1, 0)
}

func TestUnhintedWithoutUsableParentReadsEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newScanFixture(t)
	img := scanImage(3)
	f.write(img)
	f.backup(img)
	copy(img[5*scanBS:], "x")
	f.write(img)

	// No parent: every block is stored or deduplicated, none compared.
	f.opts.Parent = repository.NoParent
	f.expect(f.backup(img), 0, 1)
	f.opts.Parent = ""

	// A parent chunked with another block size cannot be compared.
	f.opts.FixedBlockSize = 2 * scanBS
	f.write(img)
	f.expect(f.backup(img), 0, 19) // 20 blocks, one of them zeros; the tail is deduplicated
	f.opts.FixedBlockSize = scanBS
	f.write(img)
	f.expect(f.backup(img), 0, 0) // all deduplicated, none compared

	// A parent whose data packs are gone (the index rebuilt without
	// them) but whose tree is readable: its blocks must not be reused.
	var big []string
	if err := f.be.List(ctx, repository.PackFile, func(fi repository.FileInfo) error {
		if fi.Size > 16<<10 { // data packs; the tree pack is small
			big = append(big, fi.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, n := range big {
		if err := f.be.Remove(ctx, repository.Handle{Type: repository.PackFile, Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.r.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	copy(img[6*scanBS:], "y")
	f.write(img)
	if st := f.backup(img); st.BlocksReused != 0 || st.ChunksAdded < 38 {
		t.Fatalf("parent without its data: reused %d blocks, added %d chunks; want 0 and all the lost ones", st.BlocksReused, st.ChunksAdded)
	}

	// A parent that cannot be read at all (index files lost): the file is
	// read and stored in full.
	var names []string
	if err := f.be.List(ctx, repository.IndexFile, func(fi repository.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := f.be.Remove(ctx, repository.Handle{Type: repository.IndexFile, Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	reopened, err := repository.Open(ctx, f.be, "secret", testOpenOptions(f.clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reopened.Close() })
	f.r = reopened
	copy(img[7*scanBS:], "z")
	f.write(img)
	f.expect(f.backup(img), 0, 38+1)
}

// A backup comparing blocks with its parent, interrupted at every point,
// leaves a valid repository, and the next backup restores exactly.
func TestUnhintedBackupCrashAtEveryPoint(t *testing.T) {
	t.Parallel()
	img := scanImage(5)
	for _, cancelMode := range []bool{false, true} {
		for n := int64(0); ; n++ {
			f := newScanFixture(t)
			f.write(img)
			f.backup(img)
			changed := bytes.Clone(img)
			for b := 0; b < 40; b += 3 { // a third of the blocks: several packs
				copy(changed[b*scanBS:], "crash test change")
			}
			f.write(changed)
			ctx, cancel := context.WithCancel(context.Background())
			var c context.CancelFunc
			if cancelMode {
				c = cancel
			}
			count := crashAfter(f.be, n, c)
			_, _, err := f.r.Backup(ctx, f.opts)
			cancel()
			crashed := count.Load() > n
			if !crashed && err != nil {
				t.Fatalf("cancel=%v n=%d: backup failed without a crash: %v", cancelMode, n, err)
			}
			f.r = reopen(t, f.be, f.clock)
			mustVerify(t, f.r)
			f.write(changed)
			st := f.backup(changed)
			if st.BlocksReused == 0 {
				t.Fatalf("cancel=%v n=%d: the backup after the crash compared no blocks: %+v", cancelMode, n, st)
			}
			mustVerify(t, f.r)
			if !crashed {
				if n < 3 {
					t.Fatalf("backup needed only %d mutations", n)
				}
				break
			}
		}
	}
}

// A fixed-block file backed up without hints records one fast hash per
// block (zero for holes): the seeded XXH3 of the block, seeded per
// repository. Unchanged files keep them; hinted backups record none.
func TestUnhintedBackupRecordsFastHashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newScanFixture(t)
	img := scanImage(7)[:3*scanBS+100]
	clear(img[scanBS : 2*scanBS])
	f.write(img)
	f.opts.FixedSizeThreshold = scanBS
	f.backup(img)
	check := func(want [][16]byte) {
		t.Helper()
		snaps, err := f.r.Snapshots(ctx, repository.SnapshotFilter{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.r.FastHashesForTest(ctx, snaps[0].ID, "vm.img")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || (want != nil && !reflect.DeepEqual(got, want)) {
			t.Fatalf("fast hashes %x, want %x", got, want)
		}
	}
	h := f.r.BlockFastHashForTest
	want := [][16]byte{h(img[:scanBS]), {}, h(img[2*scanBS : 3*scanBS]), h(img[3*scanBS:])}
	check(want)
	f.clock.Add(time.Hour)
	f.backup(img) // unchanged: taken from the parent with its hashes
	check(want)
	f.write(img)
	f.opts.ChangedRanges = map[string][]repository.Range{"vm.img": nil}
	f.backup(img) // hinted: blocks from the parent, no hashes
	check(nil)
	// Without hashes in the parent, blocks are compared by content id.
	f.opts.ChangedRanges = nil
	copy(img[2*scanBS:], "change")
	f.write(img)
	f.expect(f.backup(img), 2, 1)
	want[2] = h(img[2*scanBS : 3*scanBS])
	check(want)

	other, _, _ := newTestRepo(t)
	if other.BlockFastHashForTest(img[:scanBS]) == want[0] {
		t.Fatal("the fast hash does not depend on the repository key")
	}
}

// A file of several read segments (1 MiB each): changes in the second and
// last segments, a segment boundary inside the changed bytes, and a tail.
func TestUnhintedChangesAcrossSegments(t *testing.T) {
	t.Parallel()
	f := newScanFixture(t)
	r := rand.New(rand.NewPCG(8, 8))
	img := randBytes(r, 3<<20+5000) // 769 full blocks and a tail
	f.write(img)
	f.expect(f.backup(img), 0, 770)
	copy(img[(1<<20)-10:], "across the first segment boundary") // blocks 255 and 256
	copy(img[3<<20+10:], "tail")
	copy(img[2<<20+4096*7:], "third segment")
	f.write(img)
	f.expect(f.backup(img), 770-4, 4) // blocks 255, 256, 519 and 768
}

// More large files than scan slots: all are read, compared and restored.
func TestUnhintedManyLargeFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, clock := newTestRepo(t)
	src := t.TempDir()
	opts := repository.BackupOptions{Root: src, FixedSizeThreshold: 8 * scanBS, FixedBlockSize: scanBS}
	imgs := make([][]byte, 6)
	for i := range imgs {
		imgs[i] = scanImage(uint64(20 + i))
		writeFile(t, filepath.Join(src, "d", string(rune('a'+i))+".img"), imgs[i], 0o600)
	}
	if _, _, err := r.Backup(ctx, opts); err != nil {
		t.Fatal(err)
	}
	for i := range imgs {
		copy(imgs[i][(i+1)*scanBS:], "changed")
		p := filepath.Join(src, "d", string(rune('a'+i))+".img")
		writeFile(t, p, imgs[i], 0o600)
		later := time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC)
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(time.Hour)
	snap, st, err := r.Backup(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.BlocksReused != 6*38 || st.ChunksAdded != 6 {
		t.Fatalf("reused %d blocks, added %d chunks; want %d and 6", st.BlocksReused, st.ChunksAdded, 6*38)
	}
	dst := t.TempDir()
	if _, err := r.Restore(ctx, snap.ID, repository.RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, summarize(t, src), summarize(t, dst))
}
