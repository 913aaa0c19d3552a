package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/schedule"
)

// DaemonSeenWithin is how recent an engine daemon's last heartbeat must be
// for its schedules to count as running. Daemons heartbeat every few
// seconds (daemon.HeartbeatEvery), so two minutes of silence means none is
// running, not that one is slow.
const DaemonSeenWithin = 2 * time.Minute

// DefaultAnnounceInterval is how often an agent announces itself to the
// engine daemon unless its engine block sets another interval (the agent's
// DefaultRegisterInterval; the engine does not import the agent package).
const DefaultAnnounceInterval = 30 * time.Second

// StaleRegistrationAfter: a registration not refreshed for this long is
// stale (three announcements missed at the default interval), so one lost
// announcement never marks a node stale.
const StaleRegistrationAfter = 3 * DefaultAnnounceInterval

// ScheduleStatusSlots bounds how many of a schedule's newest slots a status
// looks at: missed slots and consecutive failures are counted among them.
const ScheduleStatusSlots = 1000

// Schedule field names as in the Terraform resource (beyond the planner's).
const (
	FieldScheduleName  = "name"
	FieldScheduleGroup = "protection_group"
	FieldTags          = "tags"
	FieldVerifyEvery   = "verify_every"
	FieldRetention     = "retention"
)

// ValidateSchedule checks a schedule without the catalog: names, the
// planner's field checks (cron syntax, zone, windows, jitter), tags and
// durations. Every problem is a *ValidationError (errors.Join'ed).
func ValidateSchedule(s catalog.Schedule) error {
	var errs []error
	if err := ValidateName(FieldScheduleName, s.Name); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateName(FieldScheduleGroup, s.Group); err != nil {
		errs = append(errs, err)
	}
	for _, fe := range schedule.Validate(s) {
		errs = append(errs, &ValidationError{Field: fe.Field, Reason: fe.Message})
	}
	for _, t := range s.Tags {
		if err := ValidateName(FieldTags, t); err != nil {
			errs = append(errs, err)
		}
	}
	if s.VerifyEvery < 0 {
		errs = append(errs, &ValidationError{Field: FieldVerifyEvery, Reason: fmt.Sprintf("%s is negative; set a positive duration, or leave it unset for no scheduled verification", s.VerifyEvery)})
	}
	r := s.Retention
	if min(r.KeepLast, r.KeepHourly, r.KeepDaily, r.KeepWeekly, r.KeepMonthly, r.KeepYearly) < 0 || r.KeepWithin < 0 {
		errs = append(errs, &ValidationError{Field: FieldRetention, Reason: "a keep count or keep_within is negative; set positive values, or leave them unset"})
	}
	return errors.Join(errs...)
}

func withDefaults(s catalog.Schedule) catalog.Schedule {
	if s.CatchUp == "" {
		s.CatchUp = catalog.CatchUpLatest
	}
	return s
}

// PutSchedule validates s, checks that its protection group is registered
// and stores it. A schedule keeps its creation time across updates: the
// planner counts slots from it, so an update never makes old slots due.
func (e *Engine) PutSchedule(ctx context.Context, s catalog.Schedule) error {
	s = withDefaults(s)
	sort.Strings(s.Tags)
	if err := ValidateSchedule(s); err != nil {
		return err
	}
	if _, err := e.store.GetGroup(ctx, s.Group); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return &ValidationError{Field: FieldScheduleGroup, Reason: fmt.Sprintf("protection group %q is not registered: create it first (reference clusterguard_protection_group.<name>.name so Terraform orders them)", s.Group)}
		}
		return fmt.Errorf("schedule %q: reading protection group %q: %w", s.Name, s.Group, err)
	}
	now := e.now().UTC().Truncate(time.Second)
	s.CreatedAt, s.UpdatedAt = now, now
	if old, err := e.store.GetSchedule(ctx, s.Name); err == nil {
		s.CreatedAt = old.CreatedAt
	} else if !errors.Is(err, catalog.ErrNotFound) {
		return fmt.Errorf("schedule %q: reading the stored schedule: %w", s.Name, err)
	}
	if err := e.store.PutSchedule(ctx, s); err != nil {
		return fmt.Errorf("schedule %q: storing it in the catalog: %w", s.Name, err)
	}
	return nil
}

// GetSchedule returns a stored schedule (catalog.ErrNotFound if absent).
func (e *Engine) GetSchedule(ctx context.Context, name string) (catalog.Schedule, error) {
	return e.store.GetSchedule(ctx, name)
}

// DeleteSchedule forgets a schedule and its slots. Recovery points it made
// stay in the repository and the index (the group's retention keeps
// governing them).
func (e *Engine) DeleteSchedule(ctx context.Context, name string) error {
	return e.store.DeleteSchedule(ctx, name)
}

// ScheduleRun is the newest slot of a schedule that started (or tried to
// start) a run.
type ScheduleRun struct {
	Slot       time.Time
	RunID      string // empty when the slot failed before its run started
	Status     string // the slot's state: running, succeeded, partial, failed
	StartedAt  time.Time
	FinishedAt time.Time
	Errors     []string // the slot's reason, the run's error and each failed workload's error
}

// ScheduleStatus is what a schedule has done and will do, as of now.
type ScheduleStatus struct {
	Schedule  catalog.Schedule
	NextRunAt time.Time // next nominal slot (before jitter); zero when paused or PlanErr
	PlanErr   error     // why the stored schedule cannot be planned (the daemon skips it)

	LastRun             *ScheduleRun // nil until a slot ran
	ConsecutiveFailures int          // failed or partial slots since the last success
	MissedSlots         int          // among the newest ScheduleStatusSlots
	LastMissedSlot      time.Time
	LastMissedReason    string

	ScheduleCheck
}

// ScheduleCheck is what a plan warns about, for a stored or a planned
// schedule: whether any daemon runs schedules, and whether the schedule can
// keep its group's RPO.
type ScheduleCheck struct {
	DaemonSeen   bool      // a daemon heartbeat within DaemonSeenWithin
	DaemonSeenAt time.Time // newest heartbeat of any daemon; zero if none ever

	GroupRPO time.Duration // 0 when the group sets none (or is not registered yet)
	MaxGap   time.Duration // longest gap between slots over the coming year
	RPOUnmet bool          // GroupRPO > 0 and MaxGap > GroupRPO: the schedule alone cannot meet it
}

// Now is the engine's clock (injected in tests), for callers that pass a
// time to ScheduleStatus and CheckSchedule.
func (e *Engine) Now() time.Time { return e.now() }

// CheckSchedule parses s (its planner errors are returned as
// *ValidationError) and reads its group's RPO and the daemons' liveness.
func (e *Engine) CheckSchedule(ctx context.Context, s catalog.Schedule, now time.Time) (ScheduleCheck, error) {
	var c ScheduleCheck
	plan, err := schedule.Parse(withDefaults(s))
	if err != nil {
		return c, ValidateSchedule(s)
	}
	c.MaxGap = plan.MaxGap(now)
	if g, err := e.store.GetGroup(ctx, s.Group); err == nil {
		c.GroupRPO = g.RPO
		c.RPOUnmet = g.RPO > 0 && c.MaxGap > g.RPO
	} else if !errors.Is(err, catalog.ErrNotFound) {
		return c, fmt.Errorf("schedule %q: reading protection group %q: %w", s.Name, s.Group, err)
	}
	daemons, err := e.store.ListDaemons(ctx)
	if err != nil {
		return c, fmt.Errorf("listing engine daemons: %w", err)
	}
	for _, d := range daemons {
		if d.SeenAt.After(c.DaemonSeenAt) {
			c.DaemonSeenAt = d.SeenAt
		}
	}
	c.DaemonSeen = !c.DaemonSeenAt.IsZero() && now.Sub(c.DaemonSeenAt) <= DaemonSeenWithin
	return c, nil
}

// ScheduleStatus reads a schedule's slots, runs and the daemons' liveness.
func (e *Engine) ScheduleStatus(ctx context.Context, name string, now time.Time) (ScheduleStatus, error) {
	s, err := e.store.GetSchedule(ctx, name)
	if err != nil {
		return ScheduleStatus{}, fmt.Errorf("schedule %q: %w", name, err)
	}
	st := ScheduleStatus{Schedule: s}
	plan, err := schedule.Parse(s)
	if err != nil {
		// Stored by another tool, or valid under an older planner: still
		// report its history, so the configuration can be fixed and applied.
		st.PlanErr = err
	} else {
		if !s.Paused {
			st.NextRunAt = plan.Next(now)
		}
		if st.ScheduleCheck, err = e.CheckSchedule(ctx, s, now); err != nil {
			return st, err
		}
	}

	slots, err := e.store.ListSlots(ctx, name, ScheduleStatusSlots)
	if err != nil {
		return st, fmt.Errorf("schedule %q: listing its slots: %w", name, err)
	}
	countingFailures := true
	for _, sl := range slots { // newest first
		switch sl.State {
		case catalog.SlotMissed:
			st.MissedSlots++
			if st.LastMissedSlot.IsZero() {
				st.LastMissedSlot, st.LastMissedReason = sl.Slot, sl.Reason
			}
			continue
		case catalog.SlotFailed, catalog.SlotPartial:
			if countingFailures {
				st.ConsecutiveFailures++
			}
		case catalog.SlotSucceeded:
			countingFailures = false
		}
		if st.LastRun == nil {
			run, err := e.scheduleRun(ctx, sl)
			if err != nil {
				return st, fmt.Errorf("schedule %q: %w", name, err)
			}
			st.LastRun = run
		}
	}
	return st, nil
}

func (e *Engine) scheduleRun(ctx context.Context, sl catalog.ScheduleSlot) (*ScheduleRun, error) {
	r := &ScheduleRun{Slot: sl.Slot, RunID: sl.RunID, Status: sl.State, StartedAt: sl.StartedAt, FinishedAt: sl.FinishedAt, Errors: []string{}}
	if sl.Reason != "" {
		r.Errors = append(r.Errors, sl.Reason)
	}
	if sl.RunID == "" {
		return r, nil
	}
	run, err := e.store.GetRun(ctx, sl.RunID)
	if errors.Is(err, catalog.ErrNotFound) {
		return r, nil // the run record was deleted; the slot still says what happened
	}
	if err != nil {
		return nil, fmt.Errorf("reading run %s of slot %s: %w", sl.RunID, sl.Slot.Format(time.RFC3339), err)
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = run.StartedAt
	}
	if r.FinishedAt.IsZero() {
		r.FinishedAt = run.FinishedAt
	}
	if run.Error != "" && run.Error != sl.Reason {
		r.Errors = append(r.Errors, run.Error)
	}
	steps, err := e.store.Steps(ctx, sl.RunID)
	if err != nil {
		return nil, fmt.Errorf("reading the steps of run %s: %w", sl.RunID, err)
	}
	for _, s := range steps {
		if s.Outcome == catalog.StepFailed {
			r.Errors = append(r.Errors, fmt.Sprintf("%s on %s: %s", s.Workload, s.Node, s.Error))
		}
	}
	return r, nil
}

// RegisteredNode is an agent's announcement and whether it went stale.
type RegisteredNode struct {
	catalog.NodeRegistration
	Stale bool // not announced within StaleRegistrationAfter
}

// RegisteredNodes lists what agents announced to the engine daemons, for
// cluster ("" for all), by cluster then node.
func (e *Engine) RegisteredNodes(ctx context.Context, cluster string) ([]RegisteredNode, error) {
	regs, err := e.store.ListNodeRegistrations(ctx, cluster)
	if err != nil {
		return nil, fmt.Errorf("listing node registrations: %w", err)
	}
	now := e.now()
	out := make([]RegisteredNode, len(regs))
	for i, r := range regs {
		out[i] = RegisteredNode{NodeRegistration: r, Stale: now.Sub(r.SeenAt) > StaleRegistrationAfter}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		return out[i].Node < out[j].Node
	})
	return out, nil
}

// RegistrationDrift compares a cluster's declared nodes with what agents
// announced: nodes that registered for the cluster but are not declared,
// and declared nodes whose registration went stale. Declared nodes that
// never registered are not drift: agents announce only when configured to.
func (e *Engine) RegistrationDrift(ctx context.Context, cluster string, declared []string) (undeclared, stale []RegisteredNode, err error) {
	regs, err := e.RegisteredNodes(ctx, cluster)
	if err != nil {
		return nil, nil, err
	}
	isDeclared := map[string]bool{}
	for _, n := range declared {
		isDeclared[n] = true
	}
	for _, r := range regs {
		switch {
		case !isDeclared[r.Node]:
			undeclared = append(undeclared, r)
		case r.Stale:
			stale = append(stale, r)
		}
	}
	return undeclared, stale, nil
}
