package memstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// PutRepository inserts r or replaces the repository of the same name.
func (s *Store) PutRepository(ctx context.Context, r catalog.Repository) error {
	if err := catalog.ValidateRepository(r); err != nil {
		return fmt.Errorf("memory catalog: put repository: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: put repository %q: %w", r.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repositories[r.Name] = r
	return nil
}

// GetRepository returns the named repository, secrets included, or an error
// wrapping catalog.ErrNotFound.
func (s *Store) GetRepository(ctx context.Context, name string) (catalog.Repository, error) {
	if err := ctx.Err(); err != nil {
		return catalog.Repository{}, fmt.Errorf("memory catalog: get repository %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repositories[name]
	if !ok {
		return catalog.Repository{}, fmt.Errorf("memory catalog: repository %q: %w", name, catalog.ErrNotFound)
	}
	return r, nil
}

// DeleteRepository removes the named repository or returns an error wrapping
// catalog.ErrNotFound. Groups and recovery points naming it are kept.
func (s *Store) DeleteRepository(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: delete repository %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.repositories[name]; !ok {
		return fmt.Errorf("memory catalog: delete repository %q: %w", name, catalog.ErrNotFound)
	}
	delete(s.repositories, name)
	return nil
}

// PutGroup inserts g or replaces the protection group of the same name.
func (s *Store) PutGroup(ctx context.Context, g catalog.ProtectionGroup) error {
	if err := catalog.ValidateGroup(g); err != nil {
		return fmt.Errorf("memory catalog: put protection group: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: put protection group %q: %w", g.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[g.Name] = cloneGroup(g)
	return nil
}

// GetGroup returns the named protection group or an error wrapping
// catalog.ErrNotFound.
func (s *Store) GetGroup(ctx context.Context, name string) (catalog.ProtectionGroup, error) {
	if err := ctx.Err(); err != nil {
		return catalog.ProtectionGroup{}, fmt.Errorf("memory catalog: get protection group %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[name]
	if !ok {
		return catalog.ProtectionGroup{}, fmt.Errorf("memory catalog: protection group %q: %w", name, catalog.ErrNotFound)
	}
	return cloneGroup(g), nil
}

// ListGroups returns the protection groups of cluster ("" for every
// cluster), sorted by name.
func (s *Store) ListGroups(ctx context.Context, cluster string) ([]catalog.ProtectionGroup, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory catalog: list protection groups of cluster %q: %w", cluster, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []catalog.ProtectionGroup{}
	for _, g := range s.groups {
		if cluster == "" || g.Cluster == cluster {
			out = append(out, cloneGroup(g))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteGroup removes the named protection group or returns an error
// wrapping catalog.ErrNotFound. Its runs and recovery points are kept.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: delete protection group %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[name]; !ok {
		return fmt.Errorf("memory catalog: delete protection group %q: %w", name, catalog.ErrNotFound)
	}
	delete(s.groups, name)
	return nil
}

// CreateRun inserts r, or returns an error wrapping catalog.ErrConflict if a
// run with its id exists.
func (s *Store) CreateRun(ctx context.Context, r catalog.Run) error {
	if err := catalog.ValidateRun(r); err != nil {
		return fmt.Errorf("memory catalog: create run: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: create run %q: %w", r.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.runs[r.ID]; ok {
		return fmt.Errorf("memory catalog: create run %q: a run with this id already exists (group %q, started %s): %w",
			r.ID, cur.Group, cur.StartedAt.UTC().Format(time.RFC3339Nano), catalog.ErrConflict)
	}
	s.runs[r.ID] = cloneRun(r)
	return nil
}

// UpdateRun replaces the mutable fields of the run with r's id (Master,
// NodeOrder, Expected, Status, Error, FinishedAt); Group, Cluster and
// StartedAt keep their values from CreateRun. A run that has finished is
// final: updating it returns an error wrapping catalog.ErrConflict. An
// absent run wraps catalog.ErrNotFound.
func (s *Store) UpdateRun(ctx context.Context, r catalog.Run) error {
	if err := catalog.ValidateRun(r); err != nil {
		return fmt.Errorf("memory catalog: update run: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: update run %q: %w", r.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.runs[r.ID]
	if !ok {
		return fmt.Errorf("memory catalog: update run %q: %w", r.ID, catalog.ErrNotFound)
	}
	if cur.Status != catalog.RunRunning {
		return fmt.Errorf("memory catalog: update run %q: %w", r.ID, finishedConflict(cur.Status))
	}
	cur.Master, cur.NodeOrder, cur.Expected = r.Master, r.NodeOrder, r.Expected
	cur.Status, cur.Error, cur.FinishedAt = r.Status, r.Error, r.FinishedAt
	s.runs[r.ID] = cloneRun(cur)
	return nil
}

func finishedConflict(status string) error {
	return fmt.Errorf("the run has already finished with status %q and a finished run is final: %w", status, catalog.ErrConflict)
}

// GetRun returns the run with id or an error wrapping catalog.ErrNotFound.
func (s *Store) GetRun(ctx context.Context, id string) (catalog.Run, error) {
	if err := ctx.Err(); err != nil {
		return catalog.Run{}, fmt.Errorf("memory catalog: get run %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok {
		return catalog.Run{}, fmt.Errorf("memory catalog: run %q: %w", id, catalog.ErrNotFound)
	}
	return cloneRun(r), nil
}

// ListRuns returns the runs of group ("" for every group), newest first by
// StartedAt (ties by id, descending), at most limit of them (0: all).
func (s *Store) ListRuns(ctx context.Context, group string, limit int) ([]catalog.Run, error) {
	if err := catalog.ValidateRunLimit(limit); err != nil {
		return nil, fmt.Errorf("memory catalog: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory catalog: list runs of group %q: %w", group, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []catalog.Run{}
	for _, r := range s.runs {
		if group == "" || r.Group == group {
			out = append(out, cloneRun(r))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return newerFirst(out[i].StartedAt, out[i].ID, out[j].StartedAt, out[j].ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// newerFirst orders by time descending, then id descending (byte order), as
// the SQL catalogs do.
func newerFirst(ti time.Time, idi string, tj time.Time, idj string) bool {
	if !ti.Equal(tj) {
		return ti.After(tj)
	}
	return strings.Compare(idi, idj) > 0
}

// DeleteRun removes the run with id and its steps, or returns an error
// wrapping catalog.ErrNotFound. Recovery points it made are kept.
func (s *Store) DeleteRun(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: delete run %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.runs[id]; !ok {
		return fmt.Errorf("memory catalog: delete run %q: %w", id, catalog.ErrNotFound)
	}
	delete(s.runs, id)
	delete(s.steps, id)
	return nil
}

// AddStep records st in its run. It returns an error wrapping
// catalog.ErrNotFound if the run does not exist and catalog.ErrConflict if
// the run already has a step with st's Seq.
func (s *Store) AddStep(ctx context.Context, st catalog.Step) error {
	if err := catalog.ValidateStep(st); err != nil {
		return fmt.Errorf("memory catalog: add step: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: add step %d to run %q: %w", st.Seq, st.RunID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.runs[st.RunID]; !ok {
		return fmt.Errorf("memory catalog: add step %d to run %q: no such run: %w", st.Seq, st.RunID, catalog.ErrNotFound)
	}
	steps := s.steps[st.RunID]
	i := sort.Search(len(steps), func(i int) bool { return steps[i].Seq >= st.Seq })
	if i < len(steps) && steps[i].Seq == st.Seq {
		return fmt.Errorf("memory catalog: add step %d to run %q: %w", st.Seq, st.RunID, duplicateStep(steps[i]))
	}
	steps = append(steps, catalog.Step{})
	copy(steps[i+1:], steps[i:])
	steps[i] = st
	s.steps[st.RunID] = steps
	return nil
}

func duplicateStep(cur catalog.Step) error {
	return fmt.Errorf("the run already has step %d (workload %q on node %q): %w", cur.Seq, cur.Workload, cur.Node, catalog.ErrConflict)
}

// Steps returns the steps of the run with runID ordered by Seq, or an error
// wrapping catalog.ErrNotFound if the run does not exist.
func (s *Store) Steps(ctx context.Context, runID string) ([]catalog.Step, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory catalog: steps of run %q: %w", runID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.runs[runID]; !ok {
		return nil, fmt.Errorf("memory catalog: steps of run %q: no such run: %w", runID, catalog.ErrNotFound)
	}
	return append([]catalog.Step{}, s.steps[runID]...), nil
}

// PutRecoveryPoint inserts p or replaces the recovery point with its id.
func (s *Store) PutRecoveryPoint(ctx context.Context, p catalog.RecoveryPoint) error {
	if err := catalog.ValidateRecoveryPoint(p); err != nil {
		return fmt.Errorf("memory catalog: put recovery point: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: put recovery point %q: %w", p.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.points[p.ID] = p
	return nil
}

// RecoveryPoints returns the recovery points matching f, newest first by
// CreatedAt (ties by id, descending). Empty fields of f match everything;
// From is inclusive and To exclusive.
func (s *Store) RecoveryPoints(ctx context.Context, f catalog.RecoveryPointFilter) ([]catalog.RecoveryPoint, error) {
	if err := catalog.ValidateRecoveryPointFilter(f); err != nil {
		return nil, fmt.Errorf("memory catalog: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory catalog: list recovery points: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []catalog.RecoveryPoint{}
	for _, p := range s.points {
		if matches(f, p) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return newerFirst(out[i].CreatedAt, out[i].ID, out[j].CreatedAt, out[j].ID)
	})
	return out, nil
}

func matches(f catalog.RecoveryPointFilter, p catalog.RecoveryPoint) bool {
	return (f.Cluster == "" || p.Cluster == f.Cluster) &&
		(f.Group == "" || p.Group == f.Group) &&
		(f.Workload == "" || p.Workload == f.Workload) &&
		(f.Repository == "" || p.Repository == f.Repository) &&
		(f.From.IsZero() || !p.CreatedAt.Before(f.From)) &&
		(f.To.IsZero() || p.CreatedAt.Before(f.To))
}

// DeleteRecoveryPoint removes the recovery point with id or returns an error
// wrapping catalog.ErrNotFound.
func (s *Store) DeleteRecoveryPoint(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: delete recovery point %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.points[id]; !ok {
		return fmt.Errorf("memory catalog: delete recovery point %q: %w", id, catalog.ErrNotFound)
	}
	delete(s.points, id)
	return nil
}

// The clones keep the caller's slices and the store's apart. Empty lists
// come back nil, as from the SQL catalogs.

func cloneGroup(g catalog.ProtectionGroup) catalog.ProtectionGroup {
	g.Workloads = cloneStrings(g.Workloads)
	g.Exclude = cloneStrings(g.Exclude)
	g.CriticalWorkloads = cloneStrings(g.CriticalWorkloads)
	if g.Selector != nil {
		sel := *g.Selector
		g.Selector = &sel
	}
	return g
}

func cloneRun(r catalog.Run) catalog.Run {
	r.NodeOrder = cloneStrings(r.NodeOrder)
	r.Expected = cloneStrings(r.Expected)
	return r
}

func cloneStrings(xs []string) []string {
	if len(xs) == 0 {
		return nil
	}
	return append([]string(nil), xs...)
}
