package memstore

import (
	"context"
	"fmt"
	"sort"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// CreateRestore inserts op; ErrConflict if its id exists.
func (s *Store) CreateRestore(ctx context.Context, op catalog.RestoreOperation) error {
	if err := catalog.ValidateRestore(op); err != nil {
		return fmt.Errorf("memory catalog: create restore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initRestores()
	if _, ok := s.restores[op.ID]; ok {
		return fmt.Errorf("memory catalog: restore %q exists: %w", op.ID, catalog.ErrConflict)
	}
	s.restores[op.ID] = op
	return nil
}

// UpdateRestore replaces status, error and finished time (and owner and
// heartbeat when op names an owner).
func (s *Store) UpdateRestore(ctx context.Context, op catalog.RestoreOperation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initRestores()
	cur, ok := s.restores[op.ID]
	if !ok {
		return fmt.Errorf("memory catalog: restore %q: %w", op.ID, catalog.ErrNotFound)
	}
	if err := catalog.CheckRestoreTransition(cur.Status, op.Status); err != nil {
		return fmt.Errorf("memory catalog: update restore %q: %w", op.ID, err)
	}
	cur.Status, cur.Error, cur.FinishedAt = op.Status, op.Error, op.FinishedAt
	if op.Owner != "" {
		cur.Owner, cur.HeartbeatAt = op.Owner, op.HeartbeatAt
	}
	if err := catalog.ValidateRestore(cur); err != nil {
		return fmt.Errorf("memory catalog: update restore: %w", err)
	}
	s.restores[op.ID] = cur
	return nil
}

// GetRestore returns the operation or ErrNotFound.
func (s *Store) GetRestore(ctx context.Context, id string) (catalog.RestoreOperation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initRestores()
	op, ok := s.restores[id]
	if !ok {
		return op, fmt.Errorf("memory catalog: restore %q: %w", id, catalog.ErrNotFound)
	}
	return op, nil
}

// FindRestoreByKey returns the newest operation with key.
func (s *Store) FindRestoreByKey(ctx context.Context, key string) (catalog.RestoreOperation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initRestores()
	var best catalog.RestoreOperation
	found := false
	for _, op := range s.restores {
		if op.Key == key && (!found || op.StartedAt.After(best.StartedAt) || (op.StartedAt.Equal(best.StartedAt) && op.ID > best.ID)) {
			best, found = op, true
		}
	}
	if !found {
		return best, fmt.Errorf("memory catalog: restore with key %q: %w", key, catalog.ErrNotFound)
	}
	return best, nil
}

// ListRestores returns the operations on cluster ("" for every cluster),
// newest first by StartedAt (ties by id, descending), at most limit (0: all).
func (s *Store) ListRestores(ctx context.Context, cluster string, limit int) ([]catalog.RestoreOperation, error) {
	if err := catalog.ValidateRestoreLimit(limit); err != nil {
		return nil, fmt.Errorf("memory catalog: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initRestores()
	out := []catalog.RestoreOperation{}
	for _, op := range s.restores {
		if cluster == "" || op.Cluster == cluster {
			out = append(out, op)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.After(out[j].StartedAt)
		}
		return out[i].ID > out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DeleteRestore removes an operation and its steps.
func (s *Store) DeleteRestore(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initRestores()
	if _, ok := s.restores[id]; !ok {
		return fmt.Errorf("memory catalog: restore %q: %w", id, catalog.ErrNotFound)
	}
	delete(s.restores, id)
	delete(s.restoreSteps, id)
	return nil
}

// PutRestoreStep inserts or replaces the step (operation, seq).
func (s *Store) PutRestoreStep(ctx context.Context, st catalog.RestoreStep) error {
	if err := catalog.ValidateRestoreStep(st); err != nil {
		return fmt.Errorf("memory catalog: put restore step: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initRestores()
	if _, ok := s.restores[st.OperationID]; !ok {
		return fmt.Errorf("memory catalog: restore %q: %w", st.OperationID, catalog.ErrNotFound)
	}
	if s.restoreSteps[st.OperationID] == nil {
		s.restoreSteps[st.OperationID] = map[int]catalog.RestoreStep{}
	}
	s.restoreSteps[st.OperationID][st.Seq] = st
	return nil
}

// RestoreSteps returns an operation's steps by Seq.
func (s *Store) RestoreSteps(ctx context.Context, id string) ([]catalog.RestoreStep, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initRestores()
	if _, ok := s.restores[id]; !ok {
		return nil, fmt.Errorf("memory catalog: restore %q: %w", id, catalog.ErrNotFound)
	}
	out := []catalog.RestoreStep{}
	for _, st := range s.restoreSteps[id] {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func (s *Store) initRestores() {
	if s.restores == nil {
		s.restores = map[string]catalog.RestoreOperation{}
		s.restoreSteps = map[string]map[int]catalog.RestoreStep{}
	}
}
