package agent

import (
	"context"
	"testing"
	"time"
)

// A node taking over a lease its holder renewed with a longer expiry than
// the taker's own waits for the holder's expiry, not its own: the holder
// needs that long to notice it cannot renew and stop its workload.
func TestTakeoverWaitsForTheHoldersLongerExpiry(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b, _ := newTestOwners(t, "node-2", vol, clock)
	holder := OwnerRecord{Workload: "web", Node: "node-1", Generation: 3, Claim: "slow", HeartbeatAt: clock.Now(),
		RenewIntervalMS: (20 * time.Second).Milliseconds(), ExpiryMS: time.Minute.Milliseconds()}
	if err := b.write(holder); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Minute + testLease.ClockSkewMargin)
	if _, err := b.Acquire(context.Background(), "web"); err != nil {
		t.Fatalf("take over an expired lease: %v", err)
	}
	if want := time.Minute + testLease.ClockSkewMargin; len(clock.waits) != 1 || clock.waits[0] != want {
		t.Fatalf("takeover waited %v, want the holder's expiry + margin (%v)", clock.waits, want)
	}
}

// A free (released) record written by a node that renews more slowly than
// the acquirer: the acquirer waits one and a half of that node's interval.
func TestFreeLeaseWaitsForTheWritersLongerRenewal(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b, _ := newTestOwners(t, "node-2", vol, clock)
	released := OwnerRecord{Workload: "web", Node: "node-1", Generation: 3, Claim: "slow", HeartbeatAt: clock.Now(),
		RenewIntervalMS: (20 * time.Second).Milliseconds(), ExpiryMS: time.Minute.Milliseconds(), Released: true}
	if err := b.write(released); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(context.Background(), "web"); err != nil {
		t.Fatalf("acquire a released lease: %v", err)
	}
	if want := 30 * time.Second; len(clock.waits) != 1 || clock.waits[0] != want {
		t.Fatalf("acquire waited %v, want 1.5 × the writer's renewal interval (%v)", clock.waits, want)
	}
	// With our own interval the longer one, ours is used.
	released.RenewIntervalMS, released.Claim = 10, "fast"
	if err := b.Release("web"); err != nil {
		t.Fatal(err)
	}
	released.Generation = mustRecord(t, vol, "web").Generation
	if err := b.write(released); err != nil {
		t.Fatal(err)
	}
	clock.waits = nil
	if _, err := b.Acquire(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	if want := testLease.RenewInterval * 3 / 2; clock.waits[0] != want {
		t.Fatalf("acquire waited %v, want 1.5 × its own interval (%v)", clock.waits, want)
	}
}
