package repository_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t testing.TB, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// makeTree writes a varied test tree and returns its root.
func makeTree(t testing.TB, seed uint64) string {
	t.Helper()
	root := t.TempDir()
	r := rand.New(rand.NewPCG(seed, 7))
	writeFile(t, filepath.Join(root, "empty"), nil, 0o644)
	writeFile(t, filepath.Join(root, "small.txt"), []byte("hello, world\n"), 0o640)
	writeFile(t, filepath.Join(root, "random.bin"), randBytes(r, 300<<10), 0o600)
	writeFile(t, filepath.Join(root, "text.log"), bytes.Repeat([]byte("line of a log file that compresses well\n"), 5000), 0o644)
	// zeros in the middle of data: must come back, as holes
	mixed := append(append(randBytes(r, 50<<10), make([]byte, 200<<10)...), randBytes(r, 50<<10)...)
	writeFile(t, filepath.Join(root, "disk.img"), mixed, 0o600)
	writeFile(t, filepath.Join(root, "exec.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	for i := 0; i < 20; i++ {
		writeFile(t, filepath.Join(root, "dir", "sub", "f"+string(rune('a'+i))), randBytes(r, r.IntN(20<<10)), 0o644)
	}
	writeFile(t, filepath.Join(root, "dir", "dup1"), bytes.Repeat([]byte{1, 2, 3}, 40000), 0o644)
	writeFile(t, filepath.Join(root, "dir", "dup2"), bytes.Repeat([]byte{1, 2, 3}, 40000), 0o644)
	if err := os.Symlink("dir/dup1", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "abslink")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "small.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(root, "emptydir"), old, old); err != nil {
		t.Fatal(err)
	}
	return root
}

type fileSummary struct {
	Mode   fs.FileMode
	MTime  int64
	Data   string
	Target string
}

// summarize reads a directory tree into a comparable map.
func summarize(t testing.TB, root string) map[string]fileSummary {
	t.Helper()
	out := map[string]fileSummary{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		s := fileSummary{Mode: fi.Mode()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			s.Target, _ = os.Readlink(p)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s.Data = string(b)
			s.MTime = fi.ModTime().UnixNano()
		case fi.IsDir():
			s.MTime = fi.ModTime().UnixNano()
		}
		out[filepath.ToSlash(rel)] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t testing.TB, want, got map[string]fileSummary) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s missing after restore", p)
			continue
		}
		if g.Mode != w.Mode || g.Data != w.Data || g.Target != w.Target || g.MTime != w.MTime {
			t.Errorf("%s differs: got mode %v mtime %d len %d target %q, want mode %v mtime %d len %d target %q",
				p, g.Mode, g.MTime, len(g.Data), g.Target, w.Mode, w.MTime, len(w.Data), w.Target)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s restored but not in the source", p)
		}
	}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, _ := newTestRepo(t)
	src := makeTree(t, 1)
	want := summarize(t, src)
	snap, st, err := r.Backup(ctx, repository.BackupOptions{Root: src, Meta: repository.SnapshotMeta{
		Workload: "db", Node: "n1", Cluster: "c1", Group: "g1", RunID: "run-1",
		Consistency: repository.ConsistencyApplication, Tags: []string{"daily"}, Labels: map[string]string{"k": "v"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 28 || st.FilesNew != 28 || st.Symlinks != 2 || st.Dirs != 3 {
		t.Fatalf("stats = %+v", st)
	}
	if st.BytesAdded >= st.Bytes {
		t.Errorf("no saving from dedup/compression: added %d of %d bytes", st.BytesAdded, st.Bytes)
	}
	got, err := r.Snapshot(ctx, snap.ID[:10])
	if err != nil {
		t.Fatal(err)
	}
	if got.Workload != "db" || got.Node != "n1" || got.Cluster != "c1" || got.Group != "g1" || got.RunID != "run-1" ||
		got.Consistency != repository.ConsistencyApplication || got.Tags[0] != "daily" || got.Labels["k"] != "v" ||
		!got.Time.Equal(newClock().Now()) {
		t.Fatalf("snapshot metadata = %+v", got)
	}
	dst := t.TempDir()
	rst, err := r.Restore(ctx, snap.ID, repository.RestoreOptions{Target: dst})
	if err != nil {
		t.Fatal(err)
	}
	compareTrees(t, want, summarize(t, dst))
	if rst.BytesWritten >= rst.Bytes {
		t.Errorf("holes were written: wrote %d of %d bytes", rst.BytesWritten, rst.Bytes)
	}
	var sys syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dst, "disk.img"), &sys); err != nil {
		t.Fatal(err)
	}
	if sys.Blocks*512 >= 300<<10 {
		t.Errorf("disk.img uses %d bytes on disk; the 200 KiB zero run should be a hole", sys.Blocks*512)
	}
}

func TestRestoreIncludeAndOpenFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, _ := newTestRepo(t)
	src := makeTree(t, 2)
	snap, _, err := r.Backup(ctx, repository.BackupOptions{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, err := r.Restore(ctx, snap.ID, repository.RestoreOptions{Target: dst, Include: []string{"dir/sub/fa", "text.log"}}); err != nil {
		t.Fatal(err)
	}
	got := summarize(t, dst)
	var names []string
	for p := range got {
		names = append(names, p)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "dir,dir/sub,dir/sub/fa,text.log" {
		t.Fatalf("restored %v", names)
	}
	if _, err := r.Restore(ctx, snap.ID, repository.RestoreOptions{Target: dst, Include: []string{"nope"}}); !errors.Is(err, repository.ErrFileNotFound) {
		t.Fatalf("include of a missing path: %v", err)
	}

	rc, fe, err := r.OpenFile(ctx, snap.ID, "disk.img")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	_ = rc.Close()
	want, _ := os.ReadFile(filepath.Join(src, "disk.img"))
	if err != nil || !bytes.Equal(data, want) || fe.Size != int64(len(want)) {
		t.Fatalf("OpenFile content differs (err %v, %d vs %d bytes)", err, len(data), len(want))
	}
	files, err := r.Files(ctx, snap.ID, "dir/sub")
	if err != nil || len(files) != 21 || files[0].Path != "dir/sub" || files[1].Path != "dir/sub/fa" {
		t.Fatalf("Files = %d entries %v, %v", len(files), files, err)
	}
	if _, _, err := r.OpenFile(ctx, snap.ID, "dir/none"); !errors.Is(err, repository.ErrFileNotFound) {
		t.Fatalf("OpenFile of missing path: %v", err)
	}
}

func TestUnchangedFilesAreNotRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be, clock := newTestRepo(t)
	src := makeTree(t, 3)
	meta := repository.SnapshotMeta{Workload: "w"}
	first, st1, err := r.Backup(ctx, repository.BackupOptions{Root: src, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	second, st2, err := r.Backup(ctx, repository.BackupOptions{Root: src, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	if st2.BytesRead != 0 || st2.FilesUnchanged != st1.Files || st2.BytesAdded != 0 || st2.Parent != first.ID {
		t.Fatalf("unchanged re-backup read %d bytes, reused %d of %d files, added %d bytes, parent %q",
			st2.BytesRead, st2.FilesUnchanged, st1.Files, st2.BytesAdded, st2.Parent)
	}
	if second.Tree != first.Tree {
		t.Errorf("identical content produced a different tree")
	}
	// change one file: only it is read
	p := filepath.Join(src, "dir", "sub", "fb")
	writeFile(t, p, []byte("changed content"), 0o644)
	clock.Add(time.Hour)
	third, st3, err := r.Backup(ctx, repository.BackupOptions{Root: src, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	if st3.FilesChanged != 1 || st3.BytesRead != int64(len("changed content")) {
		t.Fatalf("after one change: %+v", st3)
	}
	// a different workload does not use it as parent
	_, st4, err := r.Backup(ctx, repository.BackupOptions{Root: src, Meta: repository.SnapshotMeta{Workload: "other"}})
	if err != nil || st4.Parent != "" || st4.FilesNew != st1.Files {
		t.Fatalf("other workload: %+v %v", st4, err)
	}
	// a fresh Repository on the same backend sees everything
	r2, err := repository.Open(ctx, be, "secret", testOpenOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, err := r2.Restore(ctx, third.ID, repository.RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, summarize(t, src), summarize(t, dst))
}

func TestChangedRangeHintsReadOnlyDirtyBlocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, _ := newTestRepo(t)
	src := t.TempDir()
	rnd := rand.New(rand.NewPCG(9, 9))
	img := randBytes(rnd, 64*4096)
	p := filepath.Join(src, "vm.img")
	writeFile(t, p, img, 0o600)
	opts := repository.BackupOptions{Root: src, FixedBlockSize: 4096, ChangedRanges: map[string][]repository.Range{"./vm.img": nil}}
	if _, _, err := r.Backup(ctx, opts); err != nil {
		t.Fatal(err)
	}
	// dirty two blocks (one range spans a block boundary)
	copy(img[5*4096+100:], []byte("dirty"))
	copy(img[40*4096-2:], []byte("across"))
	writeFile(t, p, img, 0o600)
	opts.ChangedRanges = map[string][]repository.Range{"vm.img": {{Offset: 5*4096 + 100, Length: 5}, {Offset: 40*4096 - 2, Length: 6}}}
	snap, st, err := r.Backup(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesRead != 3*4096 {
		t.Fatalf("read %d bytes, want 3 blocks (%d)", st.BytesRead, 3*4096)
	}
	rc, _, err := r.OpenFile(ctx, snap.ID, "vm.img")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, img) {
		t.Fatal("restored image differs from the source")
	}
}

func TestBackupSelectedPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, _ := newTestRepo(t)
	src := makeTree(t, 4)
	snap, st, err := r.Backup(ctx, repository.BackupOptions{Root: src, Paths: []string{"dir/sub", "small.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 21 {
		t.Fatalf("backed up %d files, want 21", st.Files)
	}
	files, err := r.Files(ctx, snap.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 23 { // dir, dir/sub, 20 files, small.txt
		t.Fatalf("snapshot has %d entries", len(files))
	}
	if _, _, err := r.Backup(ctx, repository.BackupOptions{Root: src, Paths: []string{"../etc"}}); err == nil {
		t.Fatal("path outside the root accepted")
	}
	if _, _, err := r.Backup(ctx, repository.BackupOptions{Root: src, Paths: []string{"missing"}}); err == nil {
		t.Fatal("missing path accepted")
	}
}

func TestConcurrentBackupsBothSucceed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be, clock := newTestRepo(t)
	r2, err := repository.Open(ctx, be, "secret", testOpenOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	srcA, srcB := makeTree(t, 5), makeTree(t, 6)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	ids := make([]string, 2)
	for i, x := range []struct {
		repo *repository.Repository
		src  string
	}{{r, srcA}, {r2, srcB}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _, err := x.repo.Backup(ctx, repository.BackupOptions{Root: x.src, Meta: repository.SnapshotMeta{Workload: string(rune('a' + i))}})
			errs[i], ids[i] = err, s.ID
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
	}
	r3, err := repository.Open(ctx, be, "secret", testOpenOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r3.Verify(ctx, repository.VerifyOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("verify after concurrent backups: %v\n%s", err, rep)
	}
	for i, src := range []string{srcA, srcB} {
		dst := t.TempDir()
		if _, err := r3.Restore(ctx, ids[i], repository.RestoreOptions{Target: dst}); err != nil {
			t.Fatal(err)
		}
		compareTrees(t, summarize(t, src), summarize(t, dst))
	}
}

func TestBackupReportsProgress(t *testing.T) {
	t.Parallel()
	r, _, _ := newTestRepo(t)
	src := makeTree(t, 70)
	var mu sync.Mutex
	var calls []repository.Progress
	_, st, err := r.Backup(context.Background(), repository.BackupOptions{Root: src, Progress: func(p repository.Progress) {
		mu.Lock()
		calls = append(calls, p)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) == 0 {
		t.Fatal("progress never reported")
	}
	last := calls[len(calls)-1]
	if last.FilesDone != st.Files || last.BytesRead != st.BytesRead || last.BytesAdded != st.BytesAdded {
		t.Fatalf("final progress %+v does not match stats %+v", last, st)
	}
}
