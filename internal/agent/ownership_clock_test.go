package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// breakOwnersDir makes every later renewal fail, like a volume that stopped
// answering writes.
func breakOwnersDir(t *testing.T, vol string) {
	t.Helper()
	dir := filepath.Join(vol, OwnersDir)
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A holder judges its own lease on the monotonic clock: a wall clock
// stepped back (NTP) while renewals fail must not keep the lease alive
// past its expiry.
func TestLeaseValidityIgnoresAWallClockStepBack(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, lost := newTestOwners(t, "node-1", vol, clock)
	if _, err := a.Acquire(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	breakOwnersDir(t, vol)
	// Monotonic time passes the expiry while the wall clock steps back an hour.
	clock.advance(testLease.Expiry + time.Second)
	clock.stepWall(-time.Hour)
	a.RenewAll()
	select {
	case l := <-lost:
		if l.workload != "web" || !strings.Contains(l.reason, "could not be renewed") {
			t.Fatalf("lost %+v", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lease not renewed for longer than its expiry (monotonic) was kept because the wall clock stepped back")
	}
	if a.Holds("web") {
		t.Fatal("the holder still believes it holds the lease")
	}
}

// The opposite step: a wall clock jumping forward does not make a holder
// that renews on time give its lease up.
func TestLeaseValidityIgnoresAWallClockStepForward(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, lost := newTestOwners(t, "node-1", vol, clock)
	if _, err := a.Acquire(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	breakOwnersDir(t, vol)
	clock.advance(testLease.RenewInterval)
	clock.stepWall(time.Hour)
	a.RenewAll()
	if !a.Holds("web") || len(lost) != 0 {
		t.Fatal("a wall-clock step forward made the holder give up a lease renewed one interval ago")
	}
}
