package agent

import (
	"context"
	"errors"
	"testing"
	"time"
)

// An acquirer stalled between reading a free record and writing its claim
// (SIGSTOP, a hung mount) longer than the skew margin: meanwhile node-2
// took the lease and runs the workload, and node-1's late claim overwrites
// node-2's record. node-1 must not trust its claim after the short wait of
// a free record: it waits as long as a takeover, so node-2 has seen the
// overwrite at a renewal and stopped its workload before node-1 may start.
func TestAcquireStalledBeforeItsClaimWaitsLikeATakeover(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, _ := newTestOwners(t, "node-1", vol, clock)
	b, bLost := newTestOwners(t, "node-2", vol, clock)
	a.beforeClaimWrite = func() {
		a.beforeClaimWrite = nil
		if _, err := b.Acquire(context.Background(), "web"); err != nil {
			t.Errorf("node-2 acquire during node-1's stall: %v", err)
		}
		clock.advance(testLease.Expiry) // the stall itself
		clock.waits = nil
	}
	if _, err := a.Acquire(context.Background(), "web"); err != nil {
		t.Fatalf("node-1 acquire after its stall: %v", err)
	}
	want := testLease.Expiry + testLease.ClockSkewMargin
	if len(clock.waits) != 1 || clock.waits[0] < want {
		t.Fatalf("node-1 confirmed its stalled claim after %v, want at least expiry + margin (%v): node-2 may still run the workload", clock.waits, want)
	}
	b.RenewAll()
	select {
	case <-bLost:
	case <-time.After(10 * time.Second):
		t.Fatal("node-2 did not notice that its record was overwritten")
	}
}

// The same stall, but node-2 renews after node-1's late write (its renewal
// read its own claim before node-1's rename): node-1 backs off and does not
// hold the lease.
func TestAcquireStalledBeforeItsClaimBacksOffWhenTheHolderRenews(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, _ := newTestOwners(t, "node-1", vol, clock)
	b, _ := newTestOwners(t, "node-2", vol, clock)
	var holder OwnerRecord
	a.beforeClaimWrite = func() {
		a.beforeClaimWrite = nil
		var err error
		if holder, err = b.Acquire(context.Background(), "web"); err != nil {
			t.Errorf("node-2 acquire during node-1's stall: %v", err)
		}
		clock.advance(testLease.Expiry)
		clock.during = func() { // node-2's renewal lands during node-1's wait
			holder.HeartbeatAt = clock.Now()
			if err := b.write(holder); err != nil {
				t.Error(err)
			}
		}
	}
	_, err := a.Acquire(context.Background(), "web")
	var held *LeaseHeldError
	if !errors.As(err, &held) || held.Record.Node != "node-2" {
		t.Fatalf("node-1 acquire after its stall: %v, want refused naming node-2", err)
	}
	if a.Holds("web") || mustRecord(t, vol, "web").Node != "node-2" {
		t.Fatal("node-1 holds the lease, or rewrote node-2's record")
	}
}
