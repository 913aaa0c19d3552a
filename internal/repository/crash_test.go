package repository_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/mem"
)

var errCrash = errors.New("simulated crash")

// crashAfter makes the backend "die" after n successful mutations (saves
// and removes): that mutation and every later operation fail. With cancel
// set it instead cancels the operation's context at that point, like a
// killed agent would.
func crashAfter(be *mem.Backend, n int64, cancel context.CancelFunc) *atomic.Int64 {
	var count atomic.Int64
	var dead atomic.Bool
	be.SetFault(func(op mem.Op, h repository.Handle) error {
		if dead.Load() {
			return errCrash
		}
		if op == mem.OpSave || op == mem.OpRemove {
			if count.Add(1) > n {
				dead.Store(true)
				if cancel != nil {
					cancel()
					return context.Canceled
				}
				return errCrash
			}
		}
		return nil
	})
	return &count
}

// reopen simulates a restart after a crash: a new process, later.
func reopen(t testing.TB, be *mem.Backend, clock *fakeClock) *repository.Repository {
	t.Helper()
	be.SetFault(nil)
	clock.Add(31 * time.Minute) // the dead process's lock is stale by now
	r, err := repository.Open(context.Background(), be, "secret", testOpenOptions(clock))
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestBackupCrashAtEveryPoint(t *testing.T) {
	t.Parallel()
	src1, src2 := makeTree(t, 20), makeTree(t, 21)
	want := summarize(t, src2)
	for _, cancelMode := range []bool{false, true} {
		for n := int64(0); ; n++ {
			ctx, cancel := context.WithCancel(context.Background())
			r, be, clock := newTestRepo(t)
			backupAt(t, r, src1, repository.SnapshotMeta{Workload: "w"}, clock.Now())
			var c context.CancelFunc
			if cancelMode {
				c = cancel
			}
			count := crashAfter(be, n, c)
			_, _, err := r.Backup(ctx, repository.BackupOptions{Root: src2, Meta: repository.SnapshotMeta{Workload: "w"}})
			cancel()
			crashed := count.Load() > n
			if !crashed && err != nil {
				t.Fatalf("cancel=%v n=%d: backup failed without a crash: %v", cancelMode, n, err)
			}
			// (A crash while removing the lock at the very end leaves a
			// complete snapshot, so err may be nil even when crashed.)
			r2 := reopen(t, be, clock)
			mustVerify(t, r2)
			snap, _, err := r2.Backup(context.Background(), repository.BackupOptions{Root: src2, Meta: repository.SnapshotMeta{Workload: "w"}})
			if err != nil {
				t.Fatalf("cancel=%v n=%d: backup after the crash: %v", cancelMode, n, err)
			}
			dst := t.TempDir()
			if _, err := r2.Restore(context.Background(), snap.ID, repository.RestoreOptions{Target: dst}); err != nil {
				t.Fatalf("cancel=%v n=%d: restore: %v", cancelMode, n, err)
			}
			compareTrees(t, want, summarize(t, dst))
			mustVerify(t, r2)
			if !crashed {
				if n < 3 {
					t.Fatalf("backup needed only %d mutations", n)
				}
				break // a crash was tried at every point
			}
		}
	}
}

func TestPruneCrashAtEveryPoint(t *testing.T) {
	t.Parallel()
	srcs := []string{makeTree(t, 30), makeTree(t, 31), makeTree(t, 32)}
	wants := []map[string]fileSummary{nil, summarize(t, srcs[1]), summarize(t, srcs[2])}
	for n := int64(0); ; n++ {
		r, be, clock := newTestRepo(t)
		var snaps []repository.Snapshot
		for i, src := range srcs {
			snaps = append(snaps, backupAt(t, r, src, repository.SnapshotMeta{Workload: fmt.Sprint(i)}, clock.Now()))
		}
		if err := removeSnapshot(context.Background(), be, snaps[0].ID); err != nil {
			t.Fatal(err)
		}
		count := crashAfter(be, n, nil)
		st, err := r.Prune(context.Background(), repository.PruneOptions{MaxUnused: 0.1})
		crashed := count.Load() > n
		if !crashed && err != nil {
			t.Fatalf("n=%d: prune failed without a crash: %v", n, err)
		}
		r2 := reopen(t, be, clock)
		mustVerify(t, r2)
		for i := 1; i < 3; i++ {
			dst := t.TempDir()
			if _, err := r2.Restore(context.Background(), snaps[i].ID, repository.RestoreOptions{Target: dst}); err != nil {
				t.Fatalf("n=%d: restore %d after crashed prune: %v", n, i, err)
			}
			compareTrees(t, wants[i], summarize(t, dst))
		}
		if _, err := r2.Prune(context.Background(), repository.PruneOptions{}); err != nil {
			t.Fatalf("n=%d: prune after crash: %v", n, err)
		}
		mustVerify(t, r2)
		if !crashed {
			if st.PacksDeleted+st.PacksRepacked == 0 {
				t.Fatalf("prune had nothing to do: %+v", st)
			}
			break // a crash was tried at every point
		}
	}
}

// largestPack returns the name of the biggest pack (a data pack).
func largestPack(t testing.TB, be *mem.Backend) string {
	var name string
	var size int64
	_ = be.List(context.Background(), repository.PackFile, func(fi repository.FileInfo) error {
		if fi.Size > size {
			name, size = fi.Name, fi.Size
		}
		return nil
	})
	return name
}

func TestCorruptedPackIsNamedAndOtherFilesRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be, _ := newTestRepo(t)
	src := makeTree(t, 40)
	snap, _, err := r.Backup(ctx, repository.BackupOptions{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	pack := largestPack(t, be)
	h := repository.Handle{Type: repository.PackFile, Name: pack}
	data, _ := be.Load(ctx, h, 0, 0)
	data[100] ^= 0xff // inside the first blob
	if err := be.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}

	// A structure-only check cannot see a flipped bit; a data check must.
	quick, err := r.Verify(ctx, repository.VerifyOptions{})
	if err != nil || !quick.OK() {
		t.Fatalf("structure check: %v\n%s", err, quick)
	}
	rep, err := r.Verify(ctx, repository.VerifyOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.DamagedPacks) != 1 || rep.DamagedPacks[0] != pack || len(rep.DamagedChunks) != 1 ||
		len(rep.DamagedSnapshots) != 1 || rep.DamagedSnapshots[0] != snap.ID || len(rep.DamagedFiles) == 0 {
		t.Fatalf("verify report does not name the damage:\n%s", rep)
	}
	if !strings.Contains(rep.String(), pack) {
		t.Fatalf("report text does not name pack %s", pack)
	}
	var damaged []string
	for _, f := range rep.DamagedFiles {
		damaged = append(damaged, f.Path)
	}
	sort.Strings(damaged)

	dst := t.TempDir()
	_, err = r.Restore(ctx, snap.ID, repository.RestoreOptions{Target: dst})
	var de *repository.DamageError
	if !errors.Is(err, repository.ErrDamaged) || !errors.As(err, &de) {
		t.Fatalf("restore of damaged snapshot: %v", err)
	}
	var failed []string
	for _, f := range de.Files {
		failed = append(failed, f.Path)
		if !strings.Contains(err.Error(), f.Path) {
			t.Errorf("error does not name %s: %v", f.Path, err)
		}
	}
	sort.Strings(failed)
	if strings.Join(failed, ",") != strings.Join(damaged, ",") {
		t.Fatalf("restore failed %v, verify named %v", failed, damaged)
	}
	// Everything else restored intact; the damaged files were not left behind.
	want := summarize(t, src)
	for _, p := range failed {
		delete(want, p)
	}
	compareTrees(t, want, summarize(t, dst))

	// Streaming a damaged file fails with a message naming it.
	rc, _, err := r.OpenFile(ctx, snap.ID, failed[0])
	if err != nil {
		t.Fatal(err)
	}
	_, err = readAll(rc)
	if err == nil || !strings.Contains(err.Error(), failed[0]) {
		t.Fatalf("reading damaged %s: %v", failed[0], err)
	}
}

func readAll(rc interface {
	Read([]byte) (int, error)
	Close() error
}) ([]byte, error) {
	defer func() { _ = rc.Close() }()
	var out []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := rc.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if err.Error() == "EOF" {
				return out, nil
			}
			return out, err
		}
	}
}

func TestMissingAndTruncatedPacksAreNamed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be, _ := newTestRepo(t)
	src := makeTree(t, 41)
	if _, _, err := r.Backup(ctx, repository.BackupOptions{Root: src}); err != nil {
		t.Fatal(err)
	}
	var packs []string
	_ = be.List(ctx, repository.PackFile, func(fi repository.FileInfo) error { packs = append(packs, fi.Name); return nil })
	sort.Strings(packs)
	_ = be.Remove(ctx, repository.Handle{Type: repository.PackFile, Name: packs[0]})
	h := repository.Handle{Type: repository.PackFile, Name: packs[1]}
	data, _ := be.Load(ctx, h, 0, 0)
	_ = be.Save(ctx, h, data[:len(data)/3])
	rep, err := r.Verify(ctx, repository.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.DamagedPacks) != 2 || rep.DamagedPacks[0] != min(packs[0], packs[1]) || len(rep.DamagedFiles) == 0 {
		t.Fatalf("report:\n%s", rep)
	}
}

// TestKillDuringBackup SIGKILLs a real backup process mid-way on a
// directory backend, then checks the repository and the next backup.
func TestKillDuringBackup(t *testing.T) {
	if os.Getenv("CG_REPO_KILL_CHILD") == "1" {
		killChild()
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	t.Parallel()
	ctx := context.Background()
	repoDir, src := filepath.Join(t.TempDir(), "repo"), t.TempDir()
	rnd := rand.New(rand.NewPCG(50, 50))
	for i := 0; i < 64; i++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("f%02d", i)), randBytes(rnd, 512<<10), 0o644)
	}
	be, err := local.Create(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	clock := newClock()
	r, err := repository.Init(ctx, be, "secret", repository.InitOptions{OpenOptions: testOpenOptions(clock), KDF: testKDF, Chunker: testChunker})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringBackup$")
	cmd.Env = append(os.Environ(), "CG_REPO_KILL_CHILD=1", "CG_REPO_DIR="+repoDir, "CG_REPO_SRC="+src)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once the child has stored some packs but (most likely) not all.
	poll := time.NewTicker(2 * time.Millisecond)
	deadline := time.Now().Add(30 * time.Second)
	for countFiles(filepath.Join(repoDir, "data")) < 3 && time.Now().Before(deadline) {
		<-poll.C
	}
	poll.Stop()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child backup was not killed: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := repository.Open(ctx, be, "secret", testOpenOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	mustVerify(t, r2)
	snap, _, err := r2.Backup(ctx, repository.BackupOptions{Root: src})
	if err != nil {
		t.Fatalf("backup after kill: %v", err)
	}
	dst := t.TempDir()
	if _, err := r2.Restore(ctx, snap.ID, repository.RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, summarize(t, src), summarize(t, dst))
	mustVerify(t, r2)
}

func countFiles(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(d.Name(), ".tmp") {
			n++
		}
		return nil
	})
	return n
}

func killChild() {
	ctx := context.Background()
	be, err := local.Open(os.Getenv("CG_REPO_DIR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	r, err := repository.Open(ctx, be, "secret", repository.OpenOptions{PackSize: 256 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Back up repeatedly so the kill lands mid-backup whatever the timing.
	for i := 0; ; i++ {
		if _, _, err := r.Backup(ctx, repository.BackupOptions{Root: os.Getenv("CG_REPO_SRC"), Parent: repository.NoParent}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}
