package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// twoNodes share one volume, each with its own state directory.
func twoNodes(t *testing.T) (a, b *Fence, volume string) {
	t.Helper()
	volume = t.TempDir()
	var err error
	if a, err = NewFence("node-a", volume, t.TempDir(), nil); err != nil {
		t.Fatal(err)
	}
	if b, err = NewFence("node-b", volume, t.TempDir(), nil); err != nil {
		t.Fatal(err)
	}
	return a, b, volume
}

func claim(epoch int64) api.CoordinatorClaim {
	return api.CoordinatorClaim{Cluster: "c", Epoch: epoch, Owner: "test"}
}

func wantStale(t *testing.T, err error, reason string) {
	t.Helper()
	var stale *StaleEpochError
	if !errors.As(err, &stale) || !strings.Contains(err.Error(), reason) {
		t.Fatalf("want a stale epoch error containing %q, got %v", reason, err)
	}
}

// The fencing case: a node holding an old epoch is refused when it
// tries to write after another node was made coordinator.
func TestFenceOldEpochRefusedAfterAnotherNodeClaims(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes(t)
	if _, err := a.Claim(claim(5)); err != nil {
		t.Fatal(err)
	}
	if err := a.Check(5); err != nil {
		t.Fatalf("coordinator refused its own epoch: %v", err)
	}
	st, err := b.Claim(claim(6))
	if err != nil || st.MarkerNode != "node-b" || st.MarkerEpoch != 6 {
		t.Fatalf("claim 6 on b: %+v, %v", st, err)
	}
	wantStale(t, a.Check(5), "node-b has since claimed epoch 6")
	// a lost the role for good: even re-checking does not restore it.
	wantStale(t, a.Check(5), "not the coordinator")
}

func TestFenceClaimMatrix(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes(t)
	if _, err := a.Claim(claim(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Claim(claim(3)); err != nil {
		t.Fatalf("re-claiming the held epoch must be idempotent: %v", err)
	}
	_, err := b.Claim(claim(3))
	wantStale(t, err, "node-a already holds epoch 3")
	_, err = b.Claim(claim(2))
	wantStale(t, err, "holds epoch 3 according to the shared volume's marker")
	_, err = a.Claim(claim(2))
	wantStale(t, err, "already seen epoch 3")
	_, err = a.Claim(claim(0))
	wantStale(t, err, "epochs start at 1")
	if _, err := b.Claim(claim(4)); err != nil {
		t.Fatalf("a newer epoch must win: %v", err)
	}
	wantStale(t, b.Check(3), "not the coordinator")
}

func TestFenceRestartRemembersHighestEpoch(t *testing.T) {
	t.Parallel()
	volume, state := t.TempDir(), t.TempDir()
	f, _ := NewFence("node-a", volume, state, nil)
	if _, err := f.Claim(claim(7)); err != nil {
		t.Fatal(err)
	}
	restarted, err := NewFence("node-a", volume, state, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := restarted.State()
	if st.HighestSeen != 7 || st.Epoch != 0 {
		t.Fatalf("after restart: %+v, want highest 7 and no role held", st)
	}
	_, err = restarted.Claim(claim(7))
	wantStale(t, err, "already seen epoch 7")
	wantStale(t, restarted.Check(7), "not the coordinator")
}

func TestSyncMirrorCopiesOnlyChanges(t *testing.T) {
	t.Parallel()
	volume, mirror := t.TempDir(), t.TempDir()
	write(t, filepath.Join(volume, "apps/web/a.log"), "one")
	write(t, filepath.Join(volume, "apps/web/sub/b.log"), "two")
	write(t, filepath.Join(volume, "apps/other/secret"), "not ours")
	st, err := syncMirror(t.Context(), volume, []string{"apps/web"}, mirror)
	if err != nil || st.Copied != 2 {
		t.Fatalf("first sync: %+v, %v", st, err)
	}
	write(t, filepath.Join(volume, "apps/web/sub/b.log"), "two, changed")
	removeFile(t, filepath.Join(volume, "apps/web/a.log"))
	write(t, filepath.Join(volume, "apps/web/a.log"), "one") // same size; new mtime
	st, err = syncMirror(t.Context(), volume, []string{"apps/web"}, mirror)
	if err != nil || st.Copied != 2 {
		t.Fatalf("second sync: %+v, %v", st, err)
	}
	ino := inode(t, filepath.Join(mirror, "apps/web/a.log"))
	st, err = syncMirror(t.Context(), volume, []string{"apps/web"}, mirror)
	if err != nil || st.Copied != 0 {
		t.Fatalf("unchanged sync copied %d files (%v)", st.Copied, err)
	}
	if inode(t, filepath.Join(mirror, "apps/web/a.log")) != ino {
		t.Fatal("an unchanged file got a new inode: the repository would re-read it (E9)")
	}
	if got := read(t, filepath.Join(mirror, "apps/web/sub/b.log")); got != "two, changed" {
		t.Fatalf("mirror has %q", got)
	}
	if exists(filepath.Join(mirror, "apps/other/secret")) {
		t.Fatal("the mirror copied another workload's files")
	}
	removeFile(t, filepath.Join(volume, "apps/web/sub/b.log"))
	if _, err := syncMirror(t.Context(), volume, []string{"apps/web"}, mirror); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(mirror, "apps/web/sub/b.log")) {
		t.Fatal("a file deleted on the volume stayed in the mirror")
	}
}

func TestSyncMirrorKeepsSymlinksAsLinks(t *testing.T) {
	t.Parallel()
	volume, mirror, outside := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, filepath.Join(outside, "passwd"), "secret")
	mkdir(t, filepath.Join(volume, "apps/web"))
	symlink(t, filepath.Join(outside, "passwd"), filepath.Join(volume, "apps/web/escape"))
	if _, err := syncMirror(t.Context(), volume, []string{"apps/web"}, mirror); err != nil {
		t.Fatal(err)
	}
	target, err := readlink(filepath.Join(mirror, "apps/web/escape"))
	if err != nil || target != filepath.Join(outside, "passwd") {
		t.Fatalf("symlink not copied as a link: %q, %v", target, err)
	}
}

// A workload running as its own user must find its files owned by it after
// a backup and restore: the mirror keeps owners (when the agent is root).
func TestSyncMirrorKeepsOwners(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root can give files to another user; run the suite as root (CI does) to cover this")
	}
	volume, mirror := t.TempDir(), t.TempDir()
	write(t, filepath.Join(volume, "apps/db/data/base"), "rows")
	symlink(t, "base", filepath.Join(volume, "apps/db/data/link"))
	const uid, gid = 4242, 4343
	for _, p := range []string{"apps/db", "apps/db/data", "apps/db/data/base", "apps/db/data/link"} {
		if err := os.Lchown(filepath.Join(volume, p), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 { // the second sync finds the copy up to date, owners included
		if _, err := syncMirror(t.Context(), volume, []string{"apps/db"}, mirror); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"apps/db", "apps/db/data", "apps/db/data/base", "apps/db/data/link"} {
			info, err := os.Lstat(filepath.Join(mirror, p))
			if err != nil {
				t.Fatal(err)
			}
			if st := info.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
				t.Errorf("round %d: %s in the mirror is owned by %d:%d, want %d:%d", round, p, st.Uid, st.Gid, uid, gid)
			}
		}
	}
}

// The mirror copies only the file its walk saw: if the path now leads to
// another file (a parent directory swapped for a symlink), it refuses.
func TestCopyFileRefusesASwappedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seen, other := filepath.Join(dir, "seen"), filepath.Join(dir, "other")
	write(t, seen, "workload data")
	write(t, other, "not the workload's")
	info, err := os.Lstat(seen)
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := copyFile(t.Context(), root, source{root, "other"}, "copy", info); err == nil || !strings.Contains(err.Error(), "changed while being copied") {
		t.Fatalf("copy of a swapped file: %v, want a refusal", err)
	}
	if exists(filepath.Join(dir, "copy")) {
		t.Fatal("something was copied")
	}
	if _, err := copyFile(t.Context(), root, source{root, "seen"}, "copy", info); err != nil || read(t, filepath.Join(dir, "copy")) != "workload data" {
		t.Fatalf("copy of the file the walk saw: %v", err)
	}
}

// Files a driver excludes are not copied, and an earlier copy is removed.
func TestSyncMirrorExcludes(t *testing.T) {
	t.Parallel()
	volume, mirror := t.TempDir(), t.TempDir()
	write(t, filepath.Join(volume, "db/data/base"), "rows")
	write(t, filepath.Join(volume, "db/data/postmaster.pid"), "4242")
	if _, err := syncMirror(t.Context(), volume, []string{"db"}, mirror); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(mirror, "db/data/postmaster.pid")) {
		t.Fatal("test setup: without exclusions the lock file is copied")
	}
	if _, err := syncMirror(t.Context(), volume, []string{"db"}, mirror, filepath.Join(volume, "db/data/postmaster.pid")); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(mirror, "db/data/postmaster.pid")) || read(t, filepath.Join(mirror, "db/data/base")) != "rows" {
		t.Fatal("the excluded file is in the mirror, or the data is not")
	}
}
