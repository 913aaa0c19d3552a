package daemon

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

// schedStore is the memory catalog with the schedule contract of
// engine.ScheduleStore (fenced slots, leadership, daemons), for tests until
// every catalog implements it.
type schedStore struct {
	engine.Store
	mu        sync.Mutex
	schedules map[string]catalog.Schedule
	slots     map[string]map[time.Time]catalog.ScheduleSlot
	leaders   map[string]catalog.Leadership
	daemons   map[string]catalog.Daemon
}

func newSchedStore() *schedStore {
	return &schedStore{Store: memstore.New(), schedules: map[string]catalog.Schedule{},
		slots: map[string]map[time.Time]catalog.ScheduleSlot{}, leaders: map[string]catalog.Leadership{}, daemons: map[string]catalog.Daemon{}}
}

func (s *schedStore) PutSchedule(_ context.Context, x catalog.Schedule) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	x.Tags = append([]string(nil), x.Tags...)
	s.schedules[x.Name] = x
	return nil
}

func (s *schedStore) GetSchedule(_ context.Context, name string) (catalog.Schedule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.schedules[name]
	if !ok {
		return x, fmt.Errorf("schedule %q: %w", name, catalog.ErrNotFound)
	}
	return x, nil
}

func (s *schedStore) ListSchedules(_ context.Context, group string) ([]catalog.Schedule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []catalog.Schedule
	for _, x := range s.schedules {
		if group == "" || x.Group == group {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *schedStore) DeleteSchedule(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.schedules[name]; !ok {
		return catalog.ErrNotFound
	}
	delete(s.schedules, name)
	delete(s.slots, name)
	return nil
}

func (s *schedStore) fenced(token int64, now time.Time) error {
	l, ok := s.leaders[RoleScheduler]
	if !ok || l.Token != token || !now.Before(l.ExpiresAt) {
		return fmt.Errorf("token %d is not the current scheduler token: %w", token, catalog.ErrConflict)
	}
	return nil
}

func (s *schedStore) ClaimSlot(_ context.Context, x catalog.ScheduleSlot, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fenced(x.Token, now); err != nil {
		return err
	}
	x.Slot = x.Slot.UTC()
	if _, ok := s.slots[x.Schedule][x.Slot]; ok {
		return fmt.Errorf("slot exists: %w", catalog.ErrConflict)
	}
	if s.slots[x.Schedule] == nil {
		s.slots[x.Schedule] = map[time.Time]catalog.ScheduleSlot{}
	}
	s.slots[x.Schedule][x.Slot] = x
	return nil
}

func (s *schedStore) UpdateSlot(_ context.Context, x catalog.ScheduleSlot, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	x.Slot = x.Slot.UTC()
	cur, ok := s.slots[x.Schedule][x.Slot]
	if !ok {
		return catalog.ErrNotFound
	}
	if err := s.fenced(x.Token, now); err != nil {
		return err
	}
	cur.State, cur.Daemon, cur.Token, cur.RunID, cur.Reason, cur.StartedAt, cur.FinishedAt = x.State, x.Daemon, x.Token, x.RunID, x.Reason, x.StartedAt, x.FinishedAt
	s.slots[x.Schedule][x.Slot] = cur
	return nil
}

func (s *schedStore) GetSlot(_ context.Context, schedule string, slot time.Time) (catalog.ScheduleSlot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.slots[schedule][slot.UTC()]
	if !ok {
		return x, catalog.ErrNotFound
	}
	return x, nil
}

func (s *schedStore) ListSlots(_ context.Context, schedule string, limit int) ([]catalog.ScheduleSlot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []catalog.ScheduleSlot
	for _, x := range s.slots[schedule] {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slot.After(out[j].Slot) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *schedStore) RunningSlots(context.Context) ([]catalog.ScheduleSlot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []catalog.ScheduleSlot
	for _, m := range s.slots {
		for _, x := range m {
			if x.State == catalog.SlotRunning {
				out = append(out, x)
			}
		}
	}
	return out, nil
}

func (s *schedStore) AcquireLeadership(_ context.Context, role, holder string, ttl time.Duration, now time.Time) (catalog.Leadership, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leaders[role]
	switch {
	case ok && l.Holder == holder && now.Before(l.ExpiresAt):
	case ok && now.Before(l.ExpiresAt) && l.Holder != "":
		return catalog.Leadership{}, fmt.Errorf("held by %s: %w", l.Holder, catalog.ErrConflict)
	default:
		l.Token++
		l.Role, l.Holder = role, holder
	}
	l.ExpiresAt = now.Add(ttl)
	s.leaders[role] = l
	return l, nil
}

func (s *schedStore) ReleaseLeadership(_ context.Context, role string, token int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leaders[role]; ok && l.Token == token {
		l.Holder, l.ExpiresAt = "", time.Time{}
		s.leaders[role] = l
	}
	return nil
}

func (s *schedStore) GetLeadership(_ context.Context, role string) (catalog.Leadership, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leaders[role]
	if !ok {
		return l, catalog.ErrNotFound
	}
	return l, nil
}

func (s *schedStore) PutDaemon(_ context.Context, x catalog.Daemon) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.daemons[x.ID] = x
	return nil
}

func (s *schedStore) ListDaemons(context.Context) ([]catalog.Daemon, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []catalog.Daemon
	for _, x := range s.daemons {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SeenAt.After(out[j].SeenAt) })
	return out, nil
}

func (s *schedStore) DeleteDaemon(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.daemons, id)
	return nil
}
