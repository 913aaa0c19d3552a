package memstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// ClaimRun sets the owner of a running run to to and its heartbeat to now,
// if it is still running, still owned by from, and either from == to (a
// heartbeat) or its heartbeat is older than staleBefore (a take-over).
// ErrConflict when a condition fails, ErrNotFound when there is no run.
func (s *Store) ClaimRun(ctx context.Context, id, from, to string, staleBefore, now time.Time) (catalog.Run, error) {
	if err := ctx.Err(); err != nil {
		return catalog.Run{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.runs[id]
	if !ok {
		return catalog.Run{}, fmt.Errorf("memory catalog: claim run %q: %w", id, catalog.ErrNotFound)
	}
	if err := claimable(cur.Status, catalog.RunRunning, cur.Owner, from, to, cur.HeartbeatAt, staleBefore); err != nil {
		return cloneRun(cur), fmt.Errorf("memory catalog: claim run %q for %q: %w", id, to, err)
	}
	cur.Owner, cur.HeartbeatAt = to, now
	s.runs[id] = cloneRun(cur)
	return cloneRun(cur), nil
}

// ClaimRestore is ClaimRun for a restore operation.
func (s *Store) ClaimRestore(ctx context.Context, id, from, to string, staleBefore, now time.Time) (catalog.RestoreOperation, error) {
	if err := ctx.Err(); err != nil {
		return catalog.RestoreOperation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initRestores()
	cur, ok := s.restores[id]
	if !ok {
		return cur, fmt.Errorf("memory catalog: claim restore %q: %w", id, catalog.ErrNotFound)
	}
	if err := claimable(cur.Status, catalog.RestoreRunning, cur.Owner, from, to, cur.HeartbeatAt, staleBefore); err != nil {
		return cur, fmt.Errorf("memory catalog: claim restore %q for %q: %w", id, to, err)
	}
	cur.Owner, cur.HeartbeatAt = to, now
	s.restores[id] = cur
	return cur, nil
}

// RunningRuns returns every run in state running, oldest first.
func (s *Store) RunningRuns(ctx context.Context) ([]catalog.Run, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []catalog.Run{}
	for _, r := range s.runs {
		if r.Status == catalog.RunRunning {
			out = append(out, cloneRun(r))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.Before(out[j].StartedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RunningRestores returns every restore operation in state running, oldest first.
func (s *Store) RunningRestores(ctx context.Context) ([]catalog.RestoreOperation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initRestores()
	out := []catalog.RestoreOperation{}
	for _, op := range s.restores {
		if op.Status == catalog.RestoreRunning {
			out = append(out, op)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.Before(out[j].StartedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func claimable(status, running, owner, from, to string, heartbeat, staleBefore time.Time) error {
	switch {
	case status != running:
		return fmt.Errorf("it is %s, no longer running: %w", status, catalog.ErrConflict)
	case owner != from:
		return fmt.Errorf("it is owned by %q, not %q: %w", owner, from, catalog.ErrConflict)
	case from != to && !heartbeat.IsZero() && !heartbeat.Before(staleBefore):
		return fmt.Errorf("its owner %q is alive (heartbeat at %s): %w", owner, heartbeat.UTC().Format(time.RFC3339), catalog.ErrConflict)
	}
	return nil
}
