package daemon

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/schedule"
)

// candidate is a slot due to run now.
type candidate struct {
	s    catalog.Schedule
	cp   *cachedPlan
	slot time.Time
	due  time.Time // slot + jitter: when it became runnable
}

// scheduleTag marks every recovery point a schedule makes:
// "schedule:<name>@<created unix>". The creation time keeps a new schedule
// that reuses a deleted one's name from counting (and forgetting) the old
// one's points in its retention tier. Without a creation time it is
// "schedule:<name>".
func scheduleTag(s catalog.Schedule) string {
	if s.CreatedAt.IsZero() {
		return "schedule:" + s.Name
	}
	return fmt.Sprintf("schedule:%s@%d", s.Name, s.CreatedAt.Unix())
}

// runTags are the tags of the recovery points a schedule's run makes.
func runTags(s catalog.Schedule) []string {
	tags := append([]string{}, s.Tags...)
	return append(tags, scheduleTag(s))
}

// evaluate records missed slots and starts due ones, oldest due first,
// within the concurrency limit and one run per group at a time.
func (d *Daemon) evaluate(ctx context.Context, now time.Time) error {
	scheds, err := d.store.ListSchedules(ctx, "")
	if err != nil {
		return fmt.Errorf("listing schedules: %w", err)
	}
	var errs []error
	var cands []candidate
	seen := map[string]bool{}
	var nextDue time.Time
	for _, s := range scheds {
		seen[s.Name] = true
		if s.Paused {
			d.setInactive(s.Name, "the schedule was paused")
			continue
		}
		cp, err := d.planFor(ctx, s, now)
		if err != nil {
			d.setInactive(s.Name, "the schedule did not parse")
			errs = append(errs, err)
			continue
		}
		d.maybeVerify(ctx, s, now)
		if now.Before(cp.nextEval) {
			nextDue = earliest(nextDue, cp.nextEval)
			continue
		}
		dec := cp.plan.Decide(now, cp.since())
		recorded := true
		for i, m := range dec.Missed {
			ok, err := d.claimMissed(ctx, s, cp, m, dec.MissedReasons[i], now)
			if err != nil {
				errs = append(errs, err)
			}
			if !ok {
				// Run nothing newer before the older slots are recorded:
				// lastHandled would skip them.
				recorded = false
				break
			}
		}
		if !recorded {
			continue
		}
		d.setInactive(s.Name, "") // its slots from then are recorded
		if dec.Run.IsZero() {
			cp.nextEval = dec.Next.Add(cp.plan.Jitter(dec.Next))
			nextDue = earliest(nextDue, cp.nextEval)
			continue
		}
		cp.nextEval = time.Time{}
		cands = append(cands, candidate{s: s, cp: cp, slot: dec.Run, due: dec.Run.Add(cp.plan.Jitter(dec.Run))})
	}
	d.mu.Lock()
	d.nextDue = nextDue
	for name := range d.plans {
		if !seen[name] {
			delete(d.plans, name)
		}
	}
	d.mu.Unlock()
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].due.Before(cands[j].due) })
	var busy map[string]string
	if len(cands) > 0 {
		if busy, err = d.catalogBusyGroups(ctx, scheds); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	for _, c := range cands {
		if other, ok := busy[c.s.Group]; ok {
			d.mu.Lock()
			d.deferReason[deferKey(c.s.Name, c.slot)] = fmt.Sprintf("group %q was busy with a run of schedule %q", c.s.Group, other)
			d.mu.Unlock()
			continue
		}
		if err := d.startSlot(ctx, c, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// planFor returns the schedule's parsed plan and its latest handled slot,
// read from the catalog once per leadership term or after a conflict.
func (d *Daemon) planFor(ctx context.Context, s catalog.Schedule, now time.Time) (*cachedPlan, error) {
	d.mu.Lock()
	cp := d.plans[s.Name]
	d.mu.Unlock()
	if cp == nil || !cp.updatedAt.Equal(s.UpdatedAt) {
		p, err := schedule.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("schedule %q is not run: %w", s.Name, err)
		}
		cp = &cachedPlan{updatedAt: s.UpdatedAt, plan: p, firstSeen: now}
		d.mu.Lock()
		d.plans[s.Name] = cp
		d.mu.Unlock()
	}
	if !cp.known {
		last, err := d.store.ListSlots(ctx, s.Name, 1)
		if err != nil {
			return nil, fmt.Errorf("reading the last slot of schedule %q: %w", s.Name, err)
		}
		cp.lastHandled = time.Time{}
		if len(last) > 0 {
			cp.lastHandled = last[0].Slot
		}
		cp.known, cp.nextEval = true, time.Time{}
	}
	return cp, nil
}

// since is the lastHandled passed to the planner. A schedule without any
// slot yet starts after its CreatedAt (the planner's NotBefore) or, if that
// is unknown, one start window before this leader first saw it, not one
// start window before now: otherwise a slot that had to wait (its group
// busy) would slide out of view instead of being recorded as missed.
func (cp *cachedPlan) since() time.Time {
	if !cp.lastHandled.IsZero() || !cp.plan.NotBefore().IsZero() {
		return cp.lastHandled // the planner starts after CreatedAt
	}
	return cp.firstSeen.Add(-cp.plan.StartWindow())
}

// forget drops what the daemon believes about a schedule's slots, so the
// next tick reads them again (after a conflict: another daemon wrote).
func (d *Daemon) forget(name string) {
	d.mu.Lock()
	delete(d.plans, name)
	d.mu.Unlock()
}

// claimMissed records slot as missed. The planner says why in terms of
// windows; the daemon adds what kept the slot from starting.
// It reports whether the slot is recorded.
func (d *Daemon) claimMissed(ctx context.Context, s catalog.Schedule, cp *cachedPlan, slot time.Time, reason string, now time.Time) (bool, error) {
	token, leader := d.currentToken()
	if !leader {
		return false, nil
	}
	d.mu.Lock()
	why := d.deferReason[deferKey(s.Name, slot)]
	delete(d.deferReason, deferKey(s.Name, slot))
	d.mu.Unlock()
	switch {
	case why != "":
		reason += "; it waited because " + why
	case strings.HasPrefix(reason, "not started within"):
		reason += "; not run: " + d.whyInactive(s.Name)
	}
	err := d.store.ClaimSlot(ctx, catalog.ScheduleSlot{Schedule: s.Name, Slot: slot.UTC(), State: catalog.SlotMissed,
		Daemon: d.o.ID, Token: token, Reason: reason, ClaimedAt: now.UTC(), FinishedAt: now.UTC()}, now)
	if errors.Is(err, catalog.ErrConflict) {
		d.forget(s.Name)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording missed slot %s of schedule %q: %w", slot.UTC().Format(time.RFC3339), s.Name, err)
	}
	cp.lastHandled = slot
	d.metrics.failure(s.Group, causeMissed)
	d.log.WarnContext(ctx, "slot missed", "schedule", s.Name, "slot", slot.UTC(), "reason", reason)
	return true, nil
}

// startSlot claims c's slot and starts its run, or leaves it queued (with
// the reason, used if it ends up missed).
func (d *Daemon) startSlot(ctx context.Context, c candidate, now time.Time) error {
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return nil
	}
	if other, busy := d.busyGroups[c.s.Group]; busy {
		d.deferReason[deferKey(c.s.Name, c.slot)] = fmt.Sprintf("group %q was busy with a run of schedule %q", c.s.Group, other)
		d.mu.Unlock()
		return nil
	}
	if len(d.running) >= d.o.MaxConcurrentRuns {
		d.deferReason[deferKey(c.s.Name, c.slot)] = fmt.Sprintf("%d runs were already in progress (max concurrent runs)", len(d.running))
		d.mu.Unlock()
		return nil
	}
	token, leader := d.token, d.leader
	d.mu.Unlock()
	if !leader {
		return nil
	}
	slot := catalog.ScheduleSlot{Schedule: c.s.Name, Slot: c.slot.UTC(), State: catalog.SlotRunning,
		Daemon: d.o.ID, Token: token, RunID: engine.NewRunID(now), ClaimedAt: now.UTC(), StartedAt: now.UTC()}
	err := d.store.ClaimSlot(ctx, slot, now)
	if errors.Is(err, catalog.ErrConflict) {
		// Another daemon has it, or this one no longer leads.
		d.forget(c.s.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("claiming slot %s of schedule %q: %w", slot.Slot.Format(time.RFC3339), c.s.Name, err)
	}
	c.cp.lastHandled = c.slot
	d.mu.Lock()
	delete(d.deferReason, deferKey(c.s.Name, c.slot))
	d.mu.Unlock()
	d.metrics.lag.Observe(max(0, now.Sub(c.due)).Seconds())
	d.log.InfoContext(ctx, "slot started", "schedule", c.s.Name, "group", c.s.Group, "slot", slot.Slot, "run", slot.RunID, "lag", now.Sub(c.due))
	d.launch(c.s, slot, engine.RunOptions{Group: c.s.Group, RunID: slot.RunID, Tags: runTags(c.s)}, retryInfo{})
	return nil
}

func deferKey(schedule string, slot time.Time) string {
	return schedule + "@" + slot.UTC().Format(time.RFC3339Nano)
}

// retryInfo describes the interrupted run a retry completes.
type retryInfo struct {
	of       string // the interrupted run's id; "" for a first run
	captured int    // workloads it captured
	expected int
}

// launch runs slot in the background.
func (d *Daemon) launch(s catalog.Schedule, slot catalog.ScheduleSlot, o engine.RunOptions, retry retryInfo) {
	ctx, cancel := context.WithCancel(d.runCtx)
	d.mu.Lock()
	d.running[slot.RunID] = &activeRun{slot: slot, sched: s, cancel: cancel}
	d.busyGroups[s.Group] = s.Name
	n := len(d.running)
	d.mu.Unlock()
	d.metrics.running.Set(float64(n))
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		d.execute(ctx, s, slot, o, retry)
		d.mu.Lock()
		delete(d.running, slot.RunID)
		delete(d.busyGroups, s.Group)
		n := len(d.running)
		d.mu.Unlock()
		d.metrics.running.Set(float64(n))
		d.wakeUp()
	}()
}

// execute runs one slot's backup within its completion window, records the
// outcome on the slot (fenced) and applies retention.
func (d *Daemon) execute(ctx context.Context, s catalog.Schedule, slot catalog.ScheduleSlot, o engine.RunOptions, retry retryInfo) {
	if s.CompletionWindow > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.CompletionWindow)
		defer cancel()
	}
	start := d.now()
	rep, err := d.runFn(ctx, o)
	end := d.now()
	if d.runCtx.Err() != nil {
		// Cancelled by a stopping daemon: the slot stays running with its
		// run id; the next leader completes or retries it.
		d.log.Warn("run cancelled by shutdown; its slot is left to the next leader", "schedule", s.Name, "run", o.RunID)
		return
	}
	state, reason, cause := outcome(rep, err, ctx, s.CompletionWindow, retry)
	d.metrics.observeRun(s.Group, state, end.Sub(start), rep)
	if cause != "" {
		d.metrics.failure(s.Group, cause)
	}
	for range rep.Missing {
		d.metrics.failure(s.Group, causeWorkloadMissing)
	}
	d.recordSuccesses(s.Group, rep)
	d.finishSlot(context.WithoutCancel(ctx), slot, state, reason, end)
	if len(rep.Steps) > 0 && d.isLeader() {
		// Under runCtx, not the run's context (its completion window may
		// be over) nor a detached one: a stopping daemon cancels it at the
		// end of StopGrace, so retention never outlives the daemon's stop.
		d.applyRetention(d.runCtx, s)
	}
}

// Failure causes (label "cause" of the failures metric).
const (
	causeRunError         = "run_error"
	causeCompletionWindow = "completion_window"
	causeWorkloadMissing  = "workload_missing"
	causeInterrupted      = "interrupted"
	causeMissed           = "missed_slot"
	causeVerify           = "verify"
)

// outcome maps a run's result to the slot's state and reason.
func outcome(rep engine.RunReport, err error, ctx context.Context, window time.Duration, retry retryInfo) (state, reason, cause string) {
	windowOver := window > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded)
	switch {
	case err != nil:
		state, reason, cause = catalog.SlotFailed, err.Error(), causeRunError
	case rep.Run.Status == catalog.RunSucceeded:
		state = catalog.SlotSucceeded
	case rep.Run.Status == catalog.RunPartial:
		state, reason = catalog.SlotPartial, rep.Run.Error
	default:
		state, reason, cause = catalog.SlotFailed, rep.Run.Error, causeRunError
	}
	if windowOver && state != catalog.SlotSucceeded {
		reason = fmt.Sprintf("cancelled at the end of its completion window (%s): %s", window, reason)
		cause = causeCompletionWindow
	}
	if retry.of != "" {
		if retry.captured > 0 && state == catalog.SlotFailed {
			state = catalog.SlotPartial
		}
		prefix := fmt.Sprintf("retry of run %s, which captured %d of %d workloads before its daemon stopped", retry.of, retry.captured, retry.expected)
		reason = strings.TrimSuffix(prefix+"; "+reason, "; ")
	}
	return state, reason, cause
}

// finishSlot records a run's end on its slot, if this daemon still leads
// and the slot is still its own (no other leader took it over meanwhile).
func (d *Daemon) finishSlot(ctx context.Context, slot catalog.ScheduleSlot, state, reason string, end time.Time) {
	token, leader := d.currentToken()
	if !leader {
		d.log.WarnContext(ctx, "run finished after leadership was lost; its slot is left to the new leader", "schedule", slot.Schedule, "run", slot.RunID, "state", state)
		return
	}
	cur, err := d.store.GetSlot(ctx, slot.Schedule, slot.Slot)
	if err != nil {
		d.log.ErrorContext(ctx, "reading slot before recording its end", "schedule", slot.Schedule, "run", slot.RunID, "error", err.Error())
		return
	}
	if cur.RunID != slot.RunID || cur.Daemon != d.o.ID {
		d.log.WarnContext(ctx, "slot was taken over by another daemon; not recording this run's end", "schedule", slot.Schedule, "run", slot.RunID, "now_run", cur.RunID, "now_daemon", cur.Daemon)
		return
	}
	cur.State, cur.Reason, cur.FinishedAt, cur.Token = state, reason, end.UTC(), token
	if err := d.store.UpdateSlot(ctx, cur, d.now()); err != nil {
		d.log.WarnContext(ctx, "recording the end of a slot was refused; it is left to the next leader", "schedule", slot.Schedule, "run", slot.RunID, "error", err.Error())
		return
	}
	d.log.InfoContext(ctx, "slot finished", "schedule", slot.Schedule, "slot", slot.Slot, "run", slot.RunID, "state", state, "reason", reason)
}
