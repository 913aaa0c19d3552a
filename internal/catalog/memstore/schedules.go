package memstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// leadership is a role's state: the current grant (Holder "" once released)
// and the highest token ever granted, which never decreases.
type leadership struct {
	cur     catalog.Leadership
	highest int64
}

type regKey struct{ cluster, node string }

// schedState is the schedule part of the store, created on first use so
// New stays as it is.
type schedState struct {
	schedules   map[string]catalog.Schedule
	slots       map[string]map[int64]catalog.ScheduleSlot // by schedule, then slot in unix nanoseconds
	leaderships map[string]*leadership
	daemons     map[string]catalog.Daemon
	regs        map[regKey]catalog.NodeRegistration
}

// sched returns the schedule state; s.mu must be held.
func (s *Store) sched() *schedState {
	if s.schedState == nil {
		s.schedState = &schedState{
			schedules:   map[string]catalog.Schedule{},
			slots:       map[string]map[int64]catalog.ScheduleSlot{},
			leaderships: map[string]*leadership{},
			daemons:     map[string]catalog.Daemon{},
			regs:        map[regKey]catalog.NodeRegistration{},
		}
	}
	return s.schedState
}

// PutSchedule inserts sc or replaces the schedule of the same name.
func (s *Store) PutSchedule(ctx context.Context, sc catalog.Schedule) error {
	if err := catalog.ValidateSchedule(sc); err != nil {
		return fmt.Errorf("memory catalog: put schedule: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: put schedule %q: %w", sc.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sched().schedules[sc.Name] = cloneSchedule(sc)
	return nil
}

// GetSchedule returns the named schedule or an error wrapping ErrNotFound.
func (s *Store) GetSchedule(ctx context.Context, name string) (catalog.Schedule, error) {
	if err := ctx.Err(); err != nil {
		return catalog.Schedule{}, fmt.Errorf("memory catalog: get schedule %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.sched().schedules[name]
	if !ok {
		return catalog.Schedule{}, fmt.Errorf("memory catalog: schedule %q: %w", name, catalog.ErrNotFound)
	}
	return cloneSchedule(sc), nil
}

// ListSchedules returns the schedules of group ("" for every group) by name.
func (s *Store) ListSchedules(ctx context.Context, group string) ([]catalog.Schedule, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory catalog: list schedules: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []catalog.Schedule{}
	for _, sc := range s.sched().schedules {
		if group == "" || sc.Group == group {
			out = append(out, cloneSchedule(sc))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteSchedule removes the named schedule and its slots.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: delete schedule %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sched()
	if _, ok := st.schedules[name]; !ok {
		return fmt.Errorf("memory catalog: delete schedule %q: %w", name, catalog.ErrNotFound)
	}
	delete(st.schedules, name)
	delete(st.slots, name)
	return nil
}

// fence judges a slot write (see catalog.CheckFence); s.mu must be held.
func (st *schedState) fence(token int64, now time.Time) error {
	l, ok := st.leaderships[catalog.RoleScheduler]
	if !ok || l.highest == 0 {
		return catalog.CheckFence(catalog.Leadership{}, false, token, now)
	}
	return catalog.CheckFence(l.cur, true, token, now)
}

// ClaimSlot inserts sl if its token currently leads and the slot is new.
func (s *Store) ClaimSlot(ctx context.Context, sl catalog.ScheduleSlot, now time.Time) error {
	if err := catalog.ValidateSlot(sl); err != nil {
		return fmt.Errorf("memory catalog: claim slot: %w", err)
	}
	what := slotName(sl.Schedule, sl.Slot)
	if err := catalog.ValidateFenceTime(now); err != nil {
		return fmt.Errorf("memory catalog: claim %s: %w", what, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: claim %s: %w", what, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sched()
	if err := st.fence(sl.Token, now); err != nil {
		return fmt.Errorf("memory catalog: claim %s: %w", what, err)
	}
	if _, ok := st.schedules[sl.Schedule]; !ok {
		return fmt.Errorf("memory catalog: claim %s: schedule %q: %w", what, sl.Schedule, catalog.ErrNotFound)
	}
	key := sl.Slot.UnixNano()
	if cur, ok := st.slots[sl.Schedule][key]; ok {
		return fmt.Errorf("memory catalog: claim %s: already claimed by daemon %q (token %d, state %s): %w", what, cur.Daemon, cur.Token, cur.State, catalog.ErrConflict)
	}
	if st.slots[sl.Schedule] == nil {
		st.slots[sl.Schedule] = map[int64]catalog.ScheduleSlot{}
	}
	st.slots[sl.Schedule][key] = utcSlot(sl)
	return nil
}

// UpdateSlot replaces the mutable fields of an existing slot if sl's token
// currently leads.
func (s *Store) UpdateSlot(ctx context.Context, sl catalog.ScheduleSlot, now time.Time) error {
	if err := catalog.ValidateSlot(sl); err != nil {
		return fmt.Errorf("memory catalog: update slot: %w", err)
	}
	what := slotName(sl.Schedule, sl.Slot)
	if err := catalog.ValidateFenceTime(now); err != nil {
		return fmt.Errorf("memory catalog: update %s: %w", what, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: update %s: %w", what, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sched()
	cur, ok := st.slots[sl.Schedule][sl.Slot.UnixNano()]
	if !ok {
		return fmt.Errorf("memory catalog: update %s: %w", what, catalog.ErrNotFound)
	}
	if err := st.fence(sl.Token, now); err != nil {
		return fmt.Errorf("memory catalog: update %s: %w", what, err)
	}
	u := utcSlot(sl)
	cur.State, cur.Daemon, cur.Token, cur.RunID, cur.Reason, cur.StartedAt, cur.FinishedAt =
		u.State, u.Daemon, u.Token, u.RunID, u.Reason, u.StartedAt, u.FinishedAt
	st.slots[sl.Schedule][sl.Slot.UnixNano()] = cur
	return nil
}

// GetSlot returns one slot or an error wrapping ErrNotFound.
func (s *Store) GetSlot(ctx context.Context, schedule string, slot time.Time) (catalog.ScheduleSlot, error) {
	what := slotName(schedule, slot)
	if err := ctx.Err(); err != nil {
		return catalog.ScheduleSlot{}, fmt.Errorf("memory catalog: get %s: %w", what, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.sched().slots[schedule][slot.UnixNano()]
	if !ok {
		return catalog.ScheduleSlot{}, fmt.Errorf("memory catalog: %s: %w", what, catalog.ErrNotFound)
	}
	return sl, nil
}

// ListSlots returns a schedule's slots newest first, at most limit (0: all).
func (s *Store) ListSlots(ctx context.Context, schedule string, limit int) ([]catalog.ScheduleSlot, error) {
	if err := catalog.ValidateSlotLimit(limit); err != nil {
		return nil, fmt.Errorf("memory catalog: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory catalog: list slots of schedule %q: %w", schedule, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []catalog.ScheduleSlot{}
	for _, sl := range s.sched().slots[schedule] {
		out = append(out, sl)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slot.After(out[j].Slot) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// RunningSlots returns every running slot, by schedule name, then oldest
// slot first.
func (s *Store) RunningSlots(ctx context.Context) ([]catalog.ScheduleSlot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory catalog: list running slots: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []catalog.ScheduleSlot{}
	for _, slots := range s.sched().slots {
		for _, sl := range slots {
			if sl.State == catalog.SlotRunning {
				out = append(out, sl)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Schedule != out[j].Schedule {
			return out[i].Schedule < out[j].Schedule
		}
		return out[i].Slot.Before(out[j].Slot)
	})
	return out, nil
}

// AcquireLeadership grants role to holder with the next token if it is free
// or expired at now, renews it with the same token if holder holds it, and
// returns ErrConflict while another holder's grant is unexpired.
func (s *Store) AcquireLeadership(ctx context.Context, role, holder string, ttl time.Duration, now time.Time) (catalog.Leadership, error) {
	if err := catalog.ValidateLeadershipRequest(role, holder, ttl, now); err != nil {
		return catalog.Leadership{}, fmt.Errorf("memory catalog: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return catalog.Leadership{}, fmt.Errorf("memory catalog: acquire leadership %q for daemon %q: %w", role, holder, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sched()
	l := st.leaderships[role]
	if l == nil {
		l = &leadership{}
		st.leaderships[role] = l
	}
	switch {
	case l.cur.Holder == holder:
		// Renewal, also after an expiry nobody used: no other holder wrote
		// with a newer token, so the old one stays valid.
		l.cur.ExpiresAt = now.Add(ttl).UTC()
	case l.cur.Holder != "" && now.Before(l.cur.ExpiresAt):
		return catalog.Leadership{}, fmt.Errorf("memory catalog: acquire leadership %q for daemon %q: held by daemon %q (token %d) until %s: %w",
			role, holder, l.cur.Holder, l.cur.Token, l.cur.ExpiresAt.UTC().Format(time.RFC3339Nano), catalog.ErrConflict)
	default:
		l.highest++
		l.cur = catalog.Leadership{Role: role, Holder: holder, Token: l.highest, ExpiresAt: now.Add(ttl).UTC()}
	}
	return l.cur, nil
}

// ReleaseLeadership ends role if token is still current; otherwise it does
// nothing. The token counter is kept.
func (s *Store) ReleaseLeadership(ctx context.Context, role string, token int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: release leadership %q (token %d): %w", role, token, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.sched().leaderships[role]; l != nil && l.cur.Holder != "" && l.cur.Token == token {
		l.cur.Holder, l.cur.ExpiresAt = "", time.Time{}
	}
	return nil
}

// GetLeadership returns the role's current grant (Holder "" and a zero
// ExpiresAt once released; Token is then the last one granted), or
// ErrNotFound if it was never granted.
func (s *Store) GetLeadership(ctx context.Context, role string) (catalog.Leadership, error) {
	if err := ctx.Err(); err != nil {
		return catalog.Leadership{}, fmt.Errorf("memory catalog: get leadership %q: %w", role, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.sched().leaderships[role]
	if l == nil || l.highest == 0 {
		return catalog.Leadership{}, fmt.Errorf("memory catalog: leadership %q was never granted: %w", role, catalog.ErrNotFound)
	}
	return l.cur, nil
}

// PutDaemon inserts d or replaces the daemon of the same id.
func (s *Store) PutDaemon(ctx context.Context, d catalog.Daemon) error {
	if err := catalog.ValidateDaemon(d); err != nil {
		return fmt.Errorf("memory catalog: put daemon: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: put daemon %q: %w", d.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d.StartedAt, d.SeenAt = utc(d.StartedAt), utc(d.SeenAt)
	s.sched().daemons[d.ID] = d
	return nil
}

// ListDaemons returns every daemon, most recently seen first (ties by id).
func (s *Store) ListDaemons(ctx context.Context) ([]catalog.Daemon, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory catalog: list daemons: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []catalog.Daemon{}
	for _, d := range s.sched().daemons {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].SeenAt.Equal(out[j].SeenAt) {
			return out[i].SeenAt.After(out[j].SeenAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// DeleteDaemon removes the daemon or returns an error wrapping ErrNotFound.
func (s *Store) DeleteDaemon(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: delete daemon %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sched()
	if _, ok := st.daemons[id]; !ok {
		return fmt.Errorf("memory catalog: delete daemon %q: %w", id, catalog.ErrNotFound)
	}
	delete(st.daemons, id)
	return nil
}

// PutNodeRegistration inserts r or replaces the one of the same (Cluster, Node).
func (s *Store) PutNodeRegistration(ctx context.Context, r catalog.NodeRegistration) error {
	if err := catalog.ValidateNodeRegistration(r); err != nil {
		return fmt.Errorf("memory catalog: put node registration: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory catalog: put node registration %q/%q: %w", r.Cluster, r.Node, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Workloads = append([]string(nil), r.Workloads...)
	r.SeenAt = utc(r.SeenAt)
	s.sched().regs[regKey{r.Cluster, r.Node}] = r
	return nil
}

// ListNodeRegistrations returns the registrations of cluster ("" for all),
// by cluster, then node.
func (s *Store) ListNodeRegistrations(ctx context.Context, cluster string) ([]catalog.NodeRegistration, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory catalog: list node registrations: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []catalog.NodeRegistration{}
	for k, r := range s.sched().regs {
		if cluster == "" || k.cluster == cluster {
			r.Workloads = append([]string(nil), r.Workloads...)
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		return out[i].Node < out[j].Node
	})
	return out, nil
}

func slotName(schedule string, slot time.Time) string {
	return fmt.Sprintf("slot %s of schedule %q", slot.UTC().Format(time.RFC3339Nano), schedule)
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func utcSlot(sl catalog.ScheduleSlot) catalog.ScheduleSlot {
	sl.Slot, sl.ClaimedAt, sl.StartedAt, sl.FinishedAt = utc(sl.Slot), utc(sl.ClaimedAt), utc(sl.StartedAt), utc(sl.FinishedAt)
	return sl
}

func cloneSchedule(sc catalog.Schedule) catalog.Schedule {
	sc.Tags = append([]string(nil), sc.Tags...)
	return sc
}
