package repository_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/mem"
)

// lockHolderEnv makes TestLockHolderProcess act as the child process that
// holds a lock (the test binary runs itself).
const lockHolderEnv = "CLUSTERGUARD_TEST_LOCK_HOLDER_REPO"

// TestLockHolderProcess is not a test: run as a child by the tests below, it
// opens the repository, takes a shared lock as a backup would, says
// "locked" and waits to be killed.
func TestLockHolderProcess(t *testing.T) {
	dir := os.Getenv(lockHolderEnv)
	if dir == "" {
		t.Skip("helper process of TestLockOfKilledProcess*")
	}
	ctx := context.Background()
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A Hostname other than the OS's (as an agent naming itself by node
	// might set) must not hide that the holder is on this machine.
	r, err := repository.Open(ctx, be, "secret", repository.OpenOptions{Hostname: "node-name-not-os-hostname"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LockForTest(ctx, false, "backup"); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	select {} // until SIGKILL
}

// startLockHolder runs a child process that takes a lock on the repository
// in dir and returns once the lock is saved.
func startLockHolder(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolderProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHolderEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("lock holder did not take its lock: %q, %v", line, err)
	}
	return cmd
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // reaped: its PID is gone
}

func newLocalRepo(t *testing.T) (*repository.Repository, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Init(context.Background(), be, "secret", repository.InitOptions{KDF: testKDF, Chunker: testChunker})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, dir
}

func lockCount(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "locks"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A lock of a live process is respected; once that process is SIGKILLed
// (on this host), prune takes the exclusive lock at once instead of
// waiting for the lock to age out.
func TestLockOfKilledProcessDoesNotBlockPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, dir := newLocalRepo(t)
	child := startLockHolder(t, dir)
	if _, err := r.Prune(ctx, repository.PruneOptions{}); !errors.Is(err, repository.ErrLocked) {
		t.Fatalf("prune while the holder lives: %v, want ErrLocked", err)
	}
	kill(t, child)
	if _, err := r.Prune(ctx, repository.PruneOptions{}); err != nil {
		t.Fatalf("prune after the holder was killed: %v", err)
	}
	if n := lockCount(t, dir); n != 0 {
		t.Fatalf("%d lock objects left after prune, want 0", n)
	}
}

// unlock (RemoveLocks without all) keeps a live process's lock and removes
// the lock of a killed one.
func TestLockOfKilledProcessRemovedByUnlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, dir := newLocalRepo(t)
	child := startLockHolder(t, dir)
	if n, err := r.RemoveLocks(ctx, false); err != nil || n != 0 {
		t.Fatalf("RemoveLocks removed %d locks of a live process (%v), want 0", n, err)
	}
	kill(t, child)
	if n, err := r.RemoveLocks(ctx, false); err != nil || n != 1 {
		t.Fatalf("RemoveLocks removed %d locks of a killed process (%v), want 1", n, err)
	}
	if n := lockCount(t, dir); n != 0 {
		t.Fatalf("%d lock objects left after unlock, want 0", n)
	}
}

// syncClock is a fake clock safe for the lock's refresh goroutine.
type syncClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *syncClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *syncClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A held lock is rewritten while its operation runs, so it never ages
// into staleness under a live holder: after the clock jumps far past
// StaleLockAge, the refreshed lock still blocks an exclusive operation.
func TestHeldLockIsRefreshed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &syncClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	opts := repository.OpenOptions{Now: clock.Now, StaleLockAge: 50 * time.Millisecond, Hostname: "holder"}
	be := mem.New()
	r, err := repository.Init(ctx, be, "secret", repository.InitOptions{OpenOptions: opts, KDF: testKDF, Chunker: testChunker})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	unlock, err := r.LockForTest(ctx, false, "backup")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	clock.Add(time.Hour)
	want := clock.Now()
	deadline := time.Now().Add(10 * time.Second)
	for {
		times, err := r.LockTimesForTest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(times) == 1 && times[0].Equal(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock times %v: not refreshed to %v", times, want)
		}
		runtime.Gosched()
	}
	otherOpts := opts
	otherOpts.Hostname = "other"
	other, err := repository.Open(ctx, be, "secret", otherOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Prune(ctx, repository.PruneOptions{}); !errors.Is(err, repository.ErrLocked) {
		t.Fatalf("prune against a refreshed lock: %v, want ErrLocked", err)
	}
}
