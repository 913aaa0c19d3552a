package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The self-fence timer decides without the lock a renewal holds while its
// write hangs on the shared volume: the holder reports its lease lost
// expiry − margin − stop deadline after its last renewal, and Holds answers
// false at once, even though the hung renewal still holds the lock.
func TestSelfFenceDoesNotWaitForAHungRenewal(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, lost := newTestOwners(t, "node-1", vol, clock)
	if _, err := a.Acquire(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock() // a renewal whose write hangs
	defer a.mu.Unlock()
	clock.advance(testLease.fenceAfter() - time.Millisecond)
	a.checkFences()
	if len(lost) != 0 {
		t.Fatal("the lease was reported lost before expiry − margin − stop deadline")
	}
	clock.advance(2 * time.Millisecond)
	a.checkFences()
	select {
	case l := <-lost:
		if l.workload != "web" || !strings.Contains(l.reason, "not renewed for") {
			t.Fatalf("lost %+v", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lease not renewed for expiry − margin − stop deadline was not reported while a renewal hung")
	}
	holds := make(chan bool, 1)
	go func() { holds <- a.Holds("web") }()
	select {
	case h := <-holds:
		if h {
			t.Fatal("Holds reports a fenced lease as held")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Holds waited for the hung renewal")
	}
}

// A fenced lease is dropped at the next renewal and reported once only.
func TestFencedLeaseIsReportedOnce(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, lost := newTestOwners(t, "node-1", vol, clock)
	if _, err := a.Acquire(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	breakOwnersDir(t, vol)
	clock.advance(testLease.fenceAfter() + time.Millisecond)
	a.checkFences()
	a.RenewAll()
	a.checkFences()
	<-lost
	if len(lost) != 0 || a.Holds("web") {
		t.Fatalf("reported %d more times; held %v", len(lost), a.Holds("web"))
	}
}

func TestOwnershipTimingInequalityIsEnforced(t *testing.T) {
	e := newAgentEnv(t)
	base := fmt.Sprintf("node = \"node-1\"\nlisten = \"127.0.0.1:0\"\nshared_volume = %q\ntoken_file = %q\nstate_dir = %q\n", e.volume, e.tokenFile, filepath.Join(e.dir, "state"))
	cfg, err := ParseConfig("agent.hcl", []byte(base+"ownership {\n  renew_interval = \"2s\"\n  expiry = \"10s\"\n  clock_skew_margin = \"2s\"\n  stop_deadline = \"5s\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ownershipOrDefault(); got.stopDeadline() != 5*time.Second || got.fenceAfter() != 3*time.Second {
		t.Fatalf("stop deadline %v, fence after %v; want 5s and 3s", got.stopDeadline(), got.fenceAfter())
	}
	if d := DefaultOwnershipConfig(); d.stopDeadline() != 3*time.Second || d.validate() != nil {
		t.Fatalf("default stop deadline %v (%v), want 3s and valid", d.stopDeadline(), d.validate())
	}
	_, err = ParseConfig("agent.hcl", []byte(base+"ownership {\n  renew_interval = \"2s\"\n  expiry = \"10s\"\n  clock_skew_margin = \"2s\"\n  stop_deadline = \"6s\"\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "agent.hcl:6:1: Ownership timing unsafe") ||
		!strings.Contains(err.Error(), "renew_interval (2s) + stop_deadline (6s) + clock_skew_margin (2s) must be less than expiry (10s)") {
		t.Fatalf("stop deadline leaving no renewal before expiry: %v, want the inequality refused at the block", err)
	}
	// Without stop_deadline, a margin that eats the expiry is refused too.
	_, err = ParseConfig("agent.hcl", []byte(base+"ownership {\n  renew_interval = \"1s\"\n  expiry = \"3s\"\n  clock_skew_margin = \"2s\"\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "must be less than expiry (3s)") {
		t.Fatalf("margin + renewal as long as the expiry: %v, want refused", err)
	}
}
