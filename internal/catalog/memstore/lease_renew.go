package memstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// RenewLease moves the expiry to now+ttl if the lease still carries epoch
// (see engine.LeaseStore).
func (s *Store) RenewLease(ctx context.Context, cluster string, epoch int64, ttl time.Duration, now time.Time) (catalog.Lease, error) {
	if ttl <= 0 || now.IsZero() {
		return catalog.Lease{}, fmt.Errorf("memory catalog: renew lease on cluster %q: ttl %s and now must be set", cluster, ttl)
	}
	if err := ctx.Err(); err != nil {
		return catalog.Lease{}, fmt.Errorf("memory catalog: renew lease on cluster %q (epoch %d): %w", cluster, epoch, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.leases[cluster]
	if !ok {
		return catalog.Lease{}, fmt.Errorf("memory catalog: renew lease on cluster %q (epoch %d): no lease is held (it was released, e.g. by `engine lease release`): %w", cluster, epoch, catalog.ErrNotFound)
	}
	if cur.Epoch != epoch {
		return catalog.Lease{}, fmt.Errorf("memory catalog: renew lease on cluster %q (epoch %d): the lease now carries epoch %d (node %q, engine %q), so epoch %d no longer holds it: %w",
			cluster, epoch, cur.Epoch, cur.Holder, cur.Owner, epoch, catalog.ErrConflict)
	}
	cur.ExpiresAt = now.Add(ttl)
	s.leases[cluster] = cur
	return cur, nil
}

// ListLeases returns every lease held, expired or not, sorted by cluster.
func (s *Store) ListLeases(ctx context.Context) ([]catalog.Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory catalog: list leases: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []catalog.Lease{}
	for _, l := range s.leases {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cluster < out[j].Cluster })
	return out, nil
}

// AdvanceEpoch raises the epoch counter of cluster to at least atLeast and
// returns it; it never lowers it.
func (s *Store) AdvanceEpoch(ctx context.Context, cluster string, atLeast int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory catalog: advance the epoch of cluster %q: %w", cluster, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if atLeast > s.epochs[cluster] {
		s.epochs[cluster] = atLeast
	}
	return s.epochs[cluster], nil
}
