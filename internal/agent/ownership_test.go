package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock advances by the delay asked for whenever a lease waits, after
// running the test's hook: a test acts "during" the wait without sleeping.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	mono   time.Duration
	waits  []time.Duration
	during func()
}

func (c *fakeClock) Mono() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// stepWall moves only the wall clock, as an NTP step does.
func (c *fakeClock) stepWall(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	hook := c.during
	c.during = nil
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	c.advance(d)
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mono += d
	c.mu.Unlock()
}

var testLease = OwnershipConfig{RenewInterval: 2 * time.Second, Expiry: 10 * time.Second, ClockSkewMargin: 2 * time.Second}

type lostCall struct{ workload, reason string }

func newTestOwners(t *testing.T, node, volume string, clock *fakeClock) (*Owners, chan lostCall) {
	t.Helper()
	lost := make(chan lostCall, 4)
	return NewOwners(node, volume, filepath.Join(volume, "..", node+"-state"), testLease, clock, nil, func(w, r string) { lost <- lostCall{w, r} }), lost
}

func mustRecord(t *testing.T, volume, workload string) OwnerRecord {
	t.Helper()
	rec, ok, err := ReadOwnerRecord(volume, workload)
	if err != nil || !ok {
		t.Fatalf("owner record of %s: ok=%v err=%v", workload, ok, err)
	}
	return rec
}

func TestAcquireFreeLeaseWaitsLongerThanARenewal(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, _ := newTestOwners(t, "node-1", vol, clock)
	rec, err := a.Acquire(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Node != "node-1" || rec.Generation != 1 || !a.Holds("web") {
		t.Fatalf("record %+v, holds %v", rec, a.Holds("web"))
	}
	if len(clock.waits) != 1 || clock.waits[0] <= testLease.RenewInterval {
		t.Fatalf("waits %v: a claim must be confirmed after more than one renewal interval", clock.waits)
	}
	if got := mustRecord(t, vol, "web"); got.Claim != rec.Claim || got.ExpiryMS != 10000 || got.RenewIntervalMS != 2000 {
		t.Fatalf("on the volume: %+v", got)
	}
}

func TestAcquireRefusesALiveLeaseNamingTheHolder(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, _ := newTestOwners(t, "node-1", vol, clock)
	b, _ := newTestOwners(t, "node-2", vol, clock)
	if _, err := a.Acquire(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	// Just inside expiry + margin since the last renewal: still refused.
	clock.advance(testLease.Expiry + testLease.ClockSkewMargin - time.Millisecond)
	_, err := b.Acquire(context.Background(), "web")
	var held *LeaseHeldError
	if !errors.As(err, &held) || held.Record.Node != "node-1" || !strings.Contains(err.Error(), "node node-1 holds and renews") || !strings.Contains(err.Error(), "expires") {
		t.Fatalf("second node's acquire: %v, want a refusal naming node-1 and the expiry", err)
	}
	if b.Holds("web") || mustRecord(t, vol, "web").Node != "node-1" {
		t.Fatal("the refused node wrote or holds the lease")
	}
}

// Two nodes that both saw the record free: the later write wins, and the
// earlier writer sees it when it re-reads after the delay.
func TestAcquireLosesWhenAnotherClaimLandsDuringTheDelay(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, _ := newTestOwners(t, "node-1", vol, clock)
	b, _ := newTestOwners(t, "node-2", vol, clock)
	clock.during = func() {
		// node-2 read the free record before node-1 wrote, and writes now.
		rec := mustRecord(t, vol, "web")
		rec.Node, rec.Claim = "node-2", "b-claim"
		if err := b.write(rec); err != nil {
			t.Error(err)
		}
	}
	_, err := a.Acquire(context.Background(), "web")
	var held *LeaseHeldError
	if !errors.As(err, &held) || !held.Race || held.Record.Node != "node-2" {
		t.Fatalf("acquire overwritten during its delay: %v, want a lost race naming node-2", err)
	}
	if a.Holds("web") {
		t.Fatal("the losing node believes it holds the lease")
	}
}

func TestExpiredLeaseIsTakenOverAfterExpiryAndMargin(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, _ := newTestOwners(t, "node-1", vol, clock)
	b, _ := newTestOwners(t, "node-2", vol, clock)
	first, err := a.Acquire(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	// node-1 dies: no more renewals.
	clock.advance(testLease.Expiry + testLease.ClockSkewMargin)
	clock.waits = nil
	rec, err := b.Acquire(context.Background(), "web")
	if err != nil {
		t.Fatalf("take over an expired lease: %v", err)
	}
	if rec.Node != "node-2" || rec.Generation != first.Generation+1 {
		t.Fatalf("taken over record %+v, want node-2 at generation %d", rec, first.Generation+1)
	}
	if len(clock.waits) != 1 || clock.waits[0] != testLease.Expiry+testLease.ClockSkewMargin {
		t.Fatalf("takeover waited %v, want expiry + margin", clock.waits)
	}
	// The old holder, if it was only slow, finds the takeover and gives up.
	a.RenewAll()
	if a.Holds("web") {
		t.Fatal("the old holder still holds the lease after the takeover")
	}
}

func TestReleasedLeaseIsFreeAtOnce(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, _ := newTestOwners(t, "node-1", vol, clock)
	b, _ := newTestOwners(t, "node-2", vol, clock)
	if _, err := a.Acquire(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	if err := a.Release("web"); err != nil {
		t.Fatal(err)
	}
	if rec := mustRecord(t, vol, "web"); !rec.Released || a.Holds("web") {
		t.Fatalf("after release: %+v", rec)
	}
	clock.waits = nil
	rec, err := b.Acquire(context.Background(), "web")
	if err != nil || rec.Node != "node-2" || rec.Generation != 2 {
		t.Fatalf("acquire a released lease: %+v, %v", rec, err)
	}
	if clock.waits[0] >= testLease.Expiry {
		t.Fatalf("acquiring a released lease waited %v, as long as a takeover", clock.waits[0])
	}
	// A release by a node that no longer holds the record changes nothing.
	if err := a.Release("web"); err != nil || mustRecord(t, vol, "web").Released {
		t.Fatalf("release by a former holder: %v, record %+v", err, mustRecord(t, vol, "web"))
	}
}

func TestRenewalReportsATakeover(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, lost := newTestOwners(t, "node-1", vol, clock)
	if _, err := a.Acquire(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	before := mustRecord(t, vol, "web")
	clock.advance(testLease.RenewInterval)
	a.RenewAll()
	if after := mustRecord(t, vol, "web"); !after.HeartbeatAt.After(before.HeartbeatAt) {
		t.Fatalf("renewal did not move the heartbeat: %v -> %v", before.HeartbeatAt, after.HeartbeatAt)
	}
	taken := before
	taken.Node, taken.Claim, taken.Generation = "node-2", "other", before.Generation+1
	if err := a.write(taken); err != nil {
		t.Fatal(err)
	}
	a.RenewAll()
	select {
	case l := <-lost:
		if l.workload != "web" || !strings.Contains(l.reason, "node-2 took over") {
			t.Fatalf("lost %+v", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the takeover was not reported")
	}
	if a.Holds("web") || mustRecord(t, vol, "web").Node != "node-2" {
		t.Fatal("the old holder kept or rewrote the lease")
	}
}

func TestRenewalFailingLongerThanExpiryIsReported(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, lost := newTestOwners(t, "node-1", vol, clock)
	if _, err := a.Acquire(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	// The volume stops answering: the owners directory becomes unusable.
	dir := filepath.Join(vol, OwnersDir)
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	clock.advance(testLease.fenceAfter() - time.Second)
	a.RenewAll()
	if !a.Holds("web") || len(lost) != 0 {
		t.Fatal("a renewal failing for less than expiry − margin − stop deadline already gave the lease up")
	}
	clock.advance(2 * time.Second)
	a.RenewAll()
	select {
	case l := <-lost:
		if !strings.Contains(l.reason, "could not be renewed") {
			t.Fatalf("lost %+v", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lease not renewable for longer than its expiry was not reported")
	}
}
