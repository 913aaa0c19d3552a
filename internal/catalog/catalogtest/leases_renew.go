package catalogtest

import (
	"context"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// A step renews its short lease while it works: the expiry moves, the
// epoch does not, and another node stays refused past the first expiry.
func testLeaseRenewKeepsEpoch(t *testing.T, s Store) {
	ctx := context.Background()
	ttl := 30 * time.Second
	l := mustAcquire(t, s, "prod", "node-a", "engine-1", ttl, base)
	renewed, err := s.RenewLease(ctx, "prod", l.Epoch, ttl, base.Add(20*time.Second))
	if err != nil {
		t.Fatalf("RenewLease: %v", err)
	}
	assertLease(t, renewed, catalog.Lease{Cluster: "prod", Holder: "node-a", Owner: "engine-1", Epoch: l.Epoch, ExpiresAt: base.Add(50 * time.Second)})
	_, err = s.AcquireLease(ctx, "prod", "node-b", "engine-2", ttl, base.Add(40*time.Second))
	assertErr(t, "AcquireLease(node-b) after the first expiry of a renewed lease", err, catalog.ErrConflict, "node-a")
	next := mustAcquire(t, s, "prod", "node-b", "engine-2", ttl, base.Add(50*time.Second))
	if next.Epoch != l.Epoch+1 {
		t.Errorf("epoch after a renewed lease expired = %d, want %d (renewal consumes no epoch)", next.Epoch, l.Epoch+1)
	}
}

// A renewal after the lease was released or granted to someone else fails:
// the step that renews must stop.
func testLeaseRenewAfterTakeover(t *testing.T, s Store) {
	ctx := context.Background()
	ttl := 10 * time.Second
	a := mustAcquire(t, s, "prod", "node-a", "engine-1", ttl, base)
	b := mustAcquire(t, s, "prod", "node-b", "engine-2", ttl, a.ExpiresAt)
	_, err := s.RenewLease(ctx, "prod", a.Epoch, ttl, a.ExpiresAt.Add(time.Second))
	assertErr(t, "RenewLease with an epoch taken over", err, catalog.ErrConflict, "node-b")
	if err := s.ReleaseLease(ctx, "prod", b.Epoch); err != nil {
		t.Fatal(err)
	}
	_, err = s.RenewLease(ctx, "prod", b.Epoch, ttl, a.ExpiresAt.Add(time.Second))
	assertErr(t, "RenewLease after a release", err, catalog.ErrNotFound, "prod")
	_, err = s.RenewLease(ctx, "never", 1, ttl, base)
	assertErr(t, "RenewLease on a cluster never leased", err, catalog.ErrNotFound, "never")
}

func testLeaseList(t *testing.T, s Store) {
	ctx := context.Background()
	got, err := s.ListLeases(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("ListLeases on an empty catalog = %+v, %v; want none", got, err)
	}
	b := mustAcquire(t, s, "zeta", "node-b", "engine-2", time.Minute, base)
	a := mustAcquire(t, s, "alpha", "node-a", "engine-1", time.Second, base) // expires first: still listed
	got, err = s.ListLeases(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("ListLeases = %+v, %v; want two", got, err)
	}
	assertLease(t, got[0], a)
	assertLease(t, got[1], b)
	if err := s.ReleaseLease(ctx, "alpha", a.Epoch); err != nil {
		t.Fatal(err)
	}
	got, err = s.ListLeases(ctx)
	if err != nil || len(got) != 1 || got[0].Cluster != "zeta" {
		t.Fatalf("ListLeases after releasing alpha = %+v, %v; want zeta only", got, err)
	}
}

// A new catalog learns the epoch the agents have seen: the next grant is
// above it, and the counter never goes back.
func testLeaseAdvanceEpoch(t *testing.T, s Store) {
	ctx := context.Background()
	if e, err := s.AdvanceEpoch(ctx, "prod", 30); err != nil || e != 30 {
		t.Fatalf("AdvanceEpoch(prod, 30) on a new catalog = %d, %v; want 30", e, err)
	}
	l := mustAcquire(t, s, "prod", "node-a", "engine-1", time.Minute, base)
	if l.Epoch != 31 {
		t.Errorf("first grant after AdvanceEpoch(30) has epoch %d, want 31", l.Epoch)
	}
	if e, err := s.AdvanceEpoch(ctx, "prod", 5); err != nil || e != 31 {
		t.Errorf("AdvanceEpoch(prod, 5) = %d, %v; want 31 (never lower)", e, err)
	}
	other := mustAcquire(t, s, "other", "node-a", "engine-1", time.Minute, base)
	if other.Epoch != 1 {
		t.Errorf("another cluster's first epoch = %d, want 1", other.Epoch)
	}
}
