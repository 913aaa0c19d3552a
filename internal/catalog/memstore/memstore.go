// Package memstore is a catalog held in memory: a real implementation, with
// the same behaviour as the SQLite and PostgreSQL catalogs (it passes
// catalogtest), for unit tests of the engine. Nothing survives Close.
package memstore

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// Store is an in-memory catalog, safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	clusters map[string]catalog.Cluster
	leases   map[string]catalog.Lease // current lease per cluster; absent once released
	epochs   map[string]int64         // highest epoch granted per cluster; never decreases

	repositories map[string]catalog.Repository
	groups       map[string]catalog.ProtectionGroup
	runs         map[string]catalog.Run
	steps        map[string][]catalog.Step // by run id, sorted by Seq
	points       map[string]catalog.RecoveryPoint

	restores     map[string]catalog.RestoreOperation
	restoreSteps map[string]map[int]catalog.RestoreStep // by operation id, then seq

	schedState *schedState // schedules.go
}

// New returns an empty store.
func New() *Store {
	return &Store{
		clusters: map[string]catalog.Cluster{},
		leases:   map[string]catalog.Lease{},
		epochs:   map[string]int64{},

		repositories: map[string]catalog.Repository{},
		groups:       map[string]catalog.ProtectionGroup{},
		runs:         map[string]catalog.Run{},
		steps:        map[string][]catalog.Step{},
		points:       map[string]catalog.RecoveryPoint{},
	}
}

// PutCluster inserts c or replaces the cluster of the same name.
func (s *Store) PutCluster(ctx context.Context, c catalog.Cluster) error {
	if err := catalog.ValidateCluster(c); err != nil {
		return fmt.Errorf("memory catalog: put cluster: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: put cluster %q: %w", c.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clusters[c.Name] = clone(c)
	return nil
}

// GetCluster returns the named cluster or an error wrapping
// catalog.ErrNotFound.
func (s *Store) GetCluster(ctx context.Context, name string) (catalog.Cluster, error) {
	if err := ctx.Err(); err != nil {
		return catalog.Cluster{}, fmt.Errorf("memory catalog: get cluster %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clusters[name]
	if !ok {
		return catalog.Cluster{}, fmt.Errorf("memory catalog: cluster %q: %w", name, catalog.ErrNotFound)
	}
	return clone(c), nil
}

// ListClusters returns every cluster sorted by name.
func (s *Store) ListClusters(ctx context.Context) ([]catalog.Cluster, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory catalog: list clusters: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]catalog.Cluster, 0, len(s.clusters))
	for _, c := range s.clusters {
		out = append(out, clone(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteCluster removes the named cluster or returns an error wrapping
// catalog.ErrNotFound. Its lease epoch is kept.
func (s *Store) DeleteCluster(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: delete cluster %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clusters[name]; !ok {
		return fmt.Errorf("memory catalog: delete cluster %q: %w", name, catalog.ErrNotFound)
	}
	delete(s.clusters, name)
	return nil
}

// AcquireLease grants the coordinator role with the next epoch unless
// another holder's lease is unexpired at now (see engine.Store).
func (s *Store) AcquireLease(ctx context.Context, cluster, holder, owner string, ttl time.Duration, now time.Time) (catalog.Lease, error) {
	if err := catalog.ValidateLeaseRequest(cluster, holder, ttl, now); err != nil {
		return catalog.Lease{}, fmt.Errorf("memory catalog: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return catalog.Lease{}, fmt.Errorf("memory catalog: acquire lease on cluster %q: %w", cluster, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.leases[cluster]; ok && cur.Holder != holder && now.Before(cur.ExpiresAt) {
		return catalog.Lease{}, fmt.Errorf("memory catalog: acquire lease on cluster %q for node %q: held by node %q (engine %q, epoch %d) until %s: %w",
			cluster, holder, cur.Holder, cur.Owner, cur.Epoch, cur.ExpiresAt.UTC().Format(time.RFC3339Nano), catalog.ErrConflict)
	}
	s.epochs[cluster]++
	l := catalog.Lease{Cluster: cluster, Holder: holder, Owner: owner, Epoch: s.epochs[cluster], ExpiresAt: now.Add(ttl)}
	s.leases[cluster] = l
	return l, nil
}

// ReleaseLease ends the lease if it still carries epoch; ErrConflict if it
// was granted again since, ErrNotFound if no lease is held.
func (s *Store) ReleaseLease(ctx context.Context, cluster string, epoch int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: release lease on cluster %q (epoch %d): %w", cluster, epoch, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.leases[cluster]
	if !ok {
		return fmt.Errorf("memory catalog: release lease on cluster %q (epoch %d): no lease is held: %w", cluster, epoch, catalog.ErrNotFound)
	}
	if cur.Epoch != epoch {
		return fmt.Errorf("memory catalog: release lease on cluster %q (epoch %d): the lease now carries epoch %d (node %q), so epoch %d no longer holds it: %w",
			cluster, epoch, cur.Epoch, cur.Holder, epoch, catalog.ErrConflict)
	}
	delete(s.leases, cluster)
	return nil
}

// Close does nothing; the store stays usable, which keeps tests simple.
func (s *Store) Close() error { return nil }

func clone(c catalog.Cluster) catalog.Cluster {
	if c.Nodes != nil {
		c.Nodes = append([]catalog.Node(nil), c.Nodes...)
	}
	return c
}
