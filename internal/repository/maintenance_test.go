package repository_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/mem"
)

func backupAt(t testing.TB, r *repository.Repository, src string, meta repository.SnapshotMeta, at time.Time) repository.Snapshot {
	t.Helper()
	meta.Time = at
	s, _, err := r.Backup(context.Background(), repository.BackupOptions{Root: src, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestForgetRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, _ := newTestRepo(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a"), []byte("a"), 0o644)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	// one snapshot every 6 hours for 60 days, for workload w; one for x
	var all []repository.Snapshot
	for i := 0; i < 60*4; i++ {
		all = append(all, backupAt(t, r, src, repository.SnapshotMeta{Workload: "w"}, base.Add(time.Duration(i)*6*time.Hour)))
	}
	other := backupAt(t, r, src, repository.SnapshotMeta{Workload: "x"}, base)
	now := base.Add(60 * 24 * time.Hour)
	pol := repository.RetentionPolicy{Last: 2, Daily: 7, Weekly: 4, Monthly: 3, Within: 36 * time.Hour}
	res, err := r.Forget(ctx, pol, repository.SnapshotFilter{Workload: "w"}, now, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 1 {
		t.Fatalf("groups = %d", len(res.Groups))
	}
	g := res.Groups[0]
	// within 36h: 6 snapshots (hours 0..30 before the last at now-6h...)
	kept := map[string]bool{}
	for _, s := range g.Keep {
		kept[s.ID] = true
	}
	newest := all[len(all)-1]
	if !kept[newest.ID] || !kept[all[len(all)-2].ID] {
		t.Fatal("the last two snapshots are not kept")
	}
	// daily keeps the newest of each of the last 7 days
	for d := 0; d < 7; d++ {
		s := all[len(all)-1-d*4]
		if !kept[s.ID] {
			t.Errorf("daily rule did not keep %s (%s)", s.ShortID(), s.Time)
		}
	}
	if !kept[all[0].ID] == true && len(g.Keep) > 20 {
		t.Errorf("kept %d snapshots, too many", len(g.Keep))
	}
	if len(g.Keep)+len(g.Remove) != len(all) {
		t.Fatalf("keep %d + remove %d != %d", len(g.Keep), len(g.Remove), len(all))
	}
	// dry run removed nothing
	if got, _ := r.Snapshots(ctx, repository.SnapshotFilter{}); len(got) != len(all)+1 {
		t.Fatalf("dry run removed snapshots: %d left", len(got))
	}
	if _, err := r.Forget(ctx, pol, repository.SnapshotFilter{Workload: "w"}, now, false); err != nil {
		t.Fatal(err)
	}
	left, _ := r.Snapshots(ctx, repository.SnapshotFilter{})
	if len(left) != len(g.Keep)+1 {
		t.Fatalf("%d snapshots left, want %d", len(left), len(g.Keep)+1)
	}
	if _, err := r.Snapshot(ctx, other.ID); err != nil {
		t.Fatalf("snapshot of another workload was forgotten: %v", err)
	}
	if _, err := r.Forget(ctx, repository.RetentionPolicy{}, repository.SnapshotFilter{}, now, false); err == nil {
		t.Fatal("empty policy accepted")
	}
}

func TestSnapshotFilterAndOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, _ := newTestRepo(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a"), []byte("a"), 0o644)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	backupAt(t, r, src, repository.SnapshotMeta{Workload: "w", Group: "g1", Tags: []string{"x"}}, base)
	s2 := backupAt(t, r, src, repository.SnapshotMeta{Workload: "w", Group: "g2"}, base.Add(time.Hour))
	s3 := backupAt(t, r, src, repository.SnapshotMeta{Workload: "v", Group: "g1"}, base.Add(2*time.Hour))
	all, err := r.Snapshots(ctx, repository.SnapshotFilter{})
	if err != nil || len(all) != 3 || all[0].ID != s3.ID || all[1].ID != s2.ID {
		t.Fatalf("not newest first: %v", err)
	}
	if got, _ := r.Snapshots(ctx, repository.SnapshotFilter{Workload: "w"}); len(got) != 2 {
		t.Fatalf("workload filter: %d", len(got))
	}
	if got, _ := r.Snapshots(ctx, repository.SnapshotFilter{Group: "g1", Tags: []string{"x"}}); len(got) != 1 {
		t.Fatalf("group+tag filter: %d", len(got))
	}
	if got, _ := r.Snapshots(ctx, repository.SnapshotFilter{From: base.Add(30 * time.Minute), To: base.Add(90 * time.Minute)}); len(got) != 1 || got[0].ID != s2.ID {
		t.Fatalf("time filter: %v", got)
	}
	latest, err := r.Snapshot(ctx, "latest")
	if err != nil || latest.ID != s3.ID {
		t.Fatalf("latest = %v, %v", latest.ID, err)
	}
	vers, err := r.FileVersions(ctx, "a", repository.SnapshotFilter{Workload: "w"})
	if err != nil || len(vers) != 2 {
		t.Fatalf("file versions: %d, %v", len(vers), err)
	}
}

// packBytes sums the size of all packs.
func packBytes(t testing.TB, be *mem.Backend) int64 {
	var n int64
	_ = be.List(context.Background(), repository.PackFile, func(fi repository.FileInfo) error { n += fi.Size; return nil })
	return n
}

func mustVerify(t testing.TB, r *repository.Repository) {
	t.Helper()
	rep, err := r.Verify(context.Background(), repository.VerifyOptions{ReadData: true})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("verify found damage:\n%s", rep)
	}
}

func TestPruneFreesSpaceAndKeepsSnapshots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be, clock := newTestRepo(t)
	srcA, srcB := makeTree(t, 10), makeTree(t, 11)
	// B shares part of A: a copy of one file
	data, _ := os.ReadFile(filepath.Join(srcA, "random.bin"))
	writeFile(t, filepath.Join(srcB, "shared.bin"), data, 0o600)
	a := backupAt(t, r, srcA, repository.SnapshotMeta{Workload: "a"}, clock.Now())
	b := backupAt(t, r, srcB, repository.SnapshotMeta{Workload: "b"}, clock.Now())
	before := packBytes(t, be)
	dry, err := r.Prune(ctx, repository.PruneOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.PacksDeleted != 0 || dry.PacksRepacked > dry.PacksBefore {
		t.Fatalf("nothing is garbage yet, dry run says %+v", dry)
	}
	if _, err := r.Forget(ctx, repository.RetentionPolicy{Last: 1}, repository.SnapshotFilter{Workload: "a"}, clock.Now(), false); err != nil {
		t.Fatal(err)
	}
	if err := removeSnapshot(ctx, be, a.ID); err != nil {
		t.Fatal(err)
	}
	// The default policy keeps packs that are at most half garbage, and
	// which blobs share a pack depends on the parallel pipeline's timing:
	// it must free something, but how much is not fixed.
	st, err := r.Prune(ctx, repository.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after := packBytes(t, be); st.BytesFreed <= 0 || after >= before {
		t.Fatalf("default prune freed nothing: %d of %d bytes left; stats %+v", after, before, st)
	}
	mustVerify(t, r)
	// Repacking every pack with any garbage must get close to what B alone
	// takes in a fresh repository, whatever the packing was.
	tight := repository.PruneOptions{MaxUnused: 0.001}
	st, err = r.Prune(ctx, tight)
	if err != nil {
		t.Fatal(err)
	}
	after := packBytes(t, be)
	rb, beB, _ := newTestRepo(t)
	backupAt(t, rb, srcB, repository.SnapshotMeta{Workload: "b"}, clock.Now())
	alone := packBytes(t, beB)
	if after > alone*11/10 {
		t.Fatalf("prune left %d of %d bytes; B alone needs %d; stats %+v", after, before, alone, st)
	}
	mustVerify(t, r)
	dst := t.TempDir()
	if _, err := r.Restore(ctx, b.ID, repository.RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, summarize(t, srcB), summarize(t, dst))
	// a second prune has nothing left to do
	st2, err := r.Prune(ctx, tight)
	if err != nil || st2.PacksDeleted != 0 || st2.PacksRepacked != 0 {
		t.Fatalf("second prune: %+v, %v", st2, err)
	}
}

func removeSnapshot(ctx context.Context, be *mem.Backend, id string) error {
	return be.Remove(ctx, repository.Handle{Type: repository.SnapshotFile, Name: id})
}

// blockOn makes the first backend operation matching (op, type) wait until
// the returned release function is called; entered is closed when it does.
func blockOn(be *mem.Backend, op mem.Op, ft repository.FileType) (entered <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	be.SetFault(func(o mem.Op, h repository.Handle) error {
		if o == op && h.Type == ft && once.CompareAndSwap(false, true) {
			close(in)
			<-out
		}
		return nil
	})
	return in, func() { close(out) }
}

func TestLocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be, clock := newTestRepo(t)
	src := makeTree(t, 12)
	other, err := repository.Open(ctx, be, "secret", testOpenOptions(clock))
	if err != nil {
		t.Fatal(err)
	}

	// A running prune (exclusive) blocks a backup, naming itself.
	entered, release := blockOn(be, mem.OpList, repository.PackFile)
	done := make(chan error, 1)
	go func() { _, err := other.Prune(ctx, repository.PruneOptions{}); done <- err }()
	<-entered
	_, _, err = r.Backup(ctx, repository.BackupOptions{Root: src})
	var le *repository.LockedError
	if !errors.Is(err, repository.ErrLocked) || !errors.As(err, &le) || le.Holder != "prune" || !le.Exclusive || le.Hostname != "test-host" {
		t.Fatalf("backup during prune: %v", err)
	}
	// ... and a backup with LockWait waits for it instead.
	waitOpts := testOpenOptions(clock)
	waitOpts.LockWait = time.Minute
	patient, err := repository.Open(ctx, be, "secret", waitOpts)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { _, _, err := patient.Backup(ctx, repository.BackupOptions{Root: src}); waited <- err }()
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("backup with LockWait: %v", err)
	}
	be.SetFault(nil)

	// A running backup (shared) blocks prune but not another backup.
	entered, release = blockOn(be, mem.OpSave, repository.SnapshotFile)
	go func() {
		_, _, err := other.Backup(ctx, repository.BackupOptions{Root: src, Parent: repository.NoParent})
		done <- err
	}()
	<-entered
	if _, err := r.Prune(ctx, repository.PruneOptions{}); !errors.As(err, &le) || le.Holder != "backup" {
		t.Fatalf("prune during backup: %v", err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	be.SetFault(nil)

	// A stale lock (its holder died) expires by the injected clock.
	be.SetFault(func(op mem.Op, h repository.Handle) error {
		if (op == mem.OpRemove && h.Type == repository.LockFile) || (op == mem.OpList && h.Type == repository.SnapshotFile) {
			return errors.New("process died")
		}
		return nil
	})
	if _, err := other.Prune(ctx, repository.PruneOptions{}); err == nil {
		t.Fatal("prune with a dying backend succeeded")
	}
	be.SetFault(nil)
	if _, _, err := r.Backup(ctx, repository.BackupOptions{Root: src}); !errors.Is(err, repository.ErrLocked) {
		t.Fatalf("backup right after a crashed prune: %v, want ErrLocked", err)
	}
	if n, err := r.RemoveLocks(ctx, false); err != nil || n != 0 {
		t.Fatalf("RemoveLocks removed %d live locks (%v)", n, err)
	}
	clock.Add(31 * time.Minute)
	if n, err := r.RemoveLocks(ctx, false); err != nil || n != 1 {
		t.Fatalf("RemoveLocks removed %d stale locks, want 1 (%v)", n, err)
	}
	if _, _, err := r.Backup(ctx, repository.BackupOptions{Root: src}); err != nil {
		t.Fatalf("backup after the stale lock expired: %v", err)
	}
	if n := be.Len(repository.LockFile); n != 0 {
		t.Fatalf("%d lock files left", n)
	}
}

func TestRebuildIndexFromPacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be, clock := newTestRepo(t)
	src := makeTree(t, 13)
	snap := backupAt(t, r, src, repository.SnapshotMeta{}, clock.Now())
	// lose one index file and truncate the other(s)
	var names []string
	_ = be.List(ctx, repository.IndexFile, func(fi repository.FileInfo) error { names = append(names, fi.Name); return nil })
	sort.Strings(names)
	for i, n := range names {
		h := repository.Handle{Type: repository.IndexFile, Name: n}
		if i == 0 {
			_ = be.Remove(ctx, h)
			continue
		}
		data, _ := be.Load(ctx, h, 0, 0)
		_ = be.Save(ctx, h, data[:len(data)/2])
	}
	r2, err := repository.Open(ctx, be, "secret", testOpenOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r2.Verify(ctx, repository.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.DamagedSnapshots) != 1 {
		t.Fatalf("verify with a broken index should report the snapshot damaged:\n%s", rep)
	}
	if _, err := r2.Prune(ctx, repository.PruneOptions{}); err == nil {
		t.Fatal("prune ran with an unreadable index")
	}
	st, err := r2.RebuildIndex(ctx)
	if err != nil || st.Packs == 0 || len(st.Unreadable) != 0 {
		t.Fatalf("rebuild: %+v, %v", st, err)
	}
	mustVerify(t, r2)
	dst := t.TempDir()
	if _, err := r2.Restore(ctx, snap.ID, repository.RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, summarize(t, src), summarize(t, dst))
}
