package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/schedule"
)

// retryPrefix starts the reason of a slot being retried, so a second
// interruption is not retried again.
const retryPrefix = "retry of run "

// runRecordGrace bounds the time between a slot's claim and its run's
// record (RunBackup probes the cluster first). A living daemon whose slot
// has no run after it failed before recording one and could not say so
// (it lost leadership): the slot is then taken over.
const runRecordGrace = 5 * time.Minute

// abandonedRunText is in the error the engine's RecoverAbandoned records on
// a run whose engine stopped mid-run.
const abandonedRunText = "its engine stopped while the run was in progress"

// retryTag marks the recovery points a retry makes.
func retryTag(runID string) string { return "retry-of:" + runID }

// failover completes or retries slots left running by a daemon that is no
// longer running them (it died, stopped, or lost leadership and finished
// after it). It runs on every leader tick: a slot whose daemon is still
// alive and whose run is still going is left alone until its run ends.
func (d *Daemon) failover(ctx context.Context, now time.Time) error {
	slots, err := d.store.RunningSlots(ctx)
	if err != nil {
		return fmt.Errorf("listing running slots: %w", err)
	}
	if len(slots) == 0 {
		return nil
	}
	daemons, err := d.store.ListDaemons(ctx)
	if err != nil {
		return fmt.Errorf("listing daemons: %w", err)
	}
	alive := map[string]bool{}
	for _, x := range daemons {
		// A heartbeat comes at least every LeaderTTL/3; three missed mean
		// the daemon is gone.
		alive[x.ID] = x.ID != d.o.ID && now.Sub(x.SeenAt) < d.o.LeaderTTL
	}
	scheds := map[string]catalog.Schedule{}
	var errs []error
	for _, sl := range slots {
		if _, ok := scheds[sl.Schedule]; ok {
			continue
		}
		s, err := d.store.GetSchedule(ctx, sl.Schedule)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading schedule %q of a running slot: %w", sl.Schedule, err))
			continue
		}
		scheds[sl.Schedule] = s
	}
	for _, sl := range slots {
		d.mu.Lock()
		_, mine := d.running[sl.RunID]
		d.mu.Unlock()
		s, ok := scheds[sl.Schedule]
		if mine || !ok {
			continue
		}
		// One run per group across daemons: another live daemon's running
		// slot of the group keeps this one's retry queued (this daemon's
		// own runs are in busyGroups).
		busyWith := ""
		for _, o := range slots {
			if o.Schedule != sl.Schedule && alive[o.Daemon] && scheds[o.Schedule].Group == s.Group && scheds[o.Schedule].Name != "" {
				busyWith = o.Schedule
				break
			}
		}
		if err := d.takeOver(ctx, s, sl, alive[sl.Daemon], busyWith, now); err != nil {
			errs = append(errs, fmt.Errorf("taking over slot %s of schedule %q (run %s, daemon %s): %w", sl.Slot.Format(time.RFC3339), sl.Schedule, sl.RunID, sl.Daemon, err))
		}
	}
	return errors.Join(errs...)
}

// interruptedText says whether a finished run's error says it was
// interrupted: cancelled at the end of a stopping daemon's grace period,
// marked failed as abandoned by the engine's recovery of dead engines'
// work, or marked failed by a daemon's take-over.
func interruptedText(run catalog.Run) bool {
	return run.Status != catalog.RunSucceeded && (strings.Contains(run.Error, context.Canceled.Error()) ||
		strings.Contains(run.Error, abandonedRunText) || strings.Contains(run.Error, takenOverText))
}

// takenOverText is in the error a daemon records on a run it took over.
const takenOverText = "stopped mid-run; taken over by daemon "

// queued says why a retry of s cannot start now ("" if it can).
func (d *Daemon) queued(s catalog.Schedule, busyWith string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if other, busy := d.busyGroups[s.Group]; busy {
		busyWith = other
	}
	switch {
	case !d.leader:
		return "this daemon does not lead"
	case d.stopping:
		return "this daemon is stopping"
	case busyWith != "":
		return fmt.Sprintf("group %q is busy with a run of schedule %q", s.Group, busyWith)
	case len(d.running) >= d.o.MaxConcurrentRuns:
		return "max concurrent runs reached"
	}
	return ""
}

func (d *Daemon) takeOver(ctx context.Context, s catalog.Schedule, sl catalog.ScheduleSlot, ownerAlive bool, busyWith string, now time.Time) error {
	run, err := d.store.GetRun(ctx, sl.RunID)
	found := err == nil
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return err
	}
	staleBefore := now.Add(-engine.AbandonedAfter)
	switch {
	case !found && ownerAlive && now.Sub(sl.StartedAt) < runRecordGrace:
		return nil // claimed, the run record is about to be written
	case !found:
	case run.Status == catalog.RunRunning && (ownerAlive || !lastSeen(run).Before(staleBefore)):
		// Still going: its daemon is alive, or its engine still refreshes
		// the run's heartbeat. Its end is recorded when it finishes.
		return nil
	case run.Status == catalog.RunRunning:
		// Decide whether a retry could start before changing anything: a
		// queued take-over is simply tried again on the next tick.
		if why := d.noRetry(ctx, s, sl, now); why == "" && d.queued(s, busyWith) != "" {
			return nil
		}
		// Take the run from its owner atomically (only if its heartbeat is
		// still stale), so an owner alive after all sees the change on its
		// next heartbeat and stops, and two leaders never both take it.
		claimed, err := d.store.ClaimRun(ctx, run.ID, run.Owner, d.o.ID, staleBefore, now.UTC())
		switch {
		case errors.Is(err, catalog.ErrConflict):
			if run, err = d.store.GetRun(ctx, sl.RunID); err != nil {
				return err
			}
			if run.Status == catalog.RunRunning {
				return nil // alive after all, or taken by another engine
			}
		case err != nil:
			return fmt.Errorf("taking over the interrupted run: %w", err)
		default:
			claimed.Status, claimed.FinishedAt = catalog.RunFailed, now.UTC()
			claimed.Error = fmt.Sprintf("daemon %s %s%s", sl.Daemon, takenOverText, d.o.ID)
			if err := d.store.UpdateRun(ctx, claimed); err != nil {
				return fmt.Errorf("marking interrupted run failed: %w", err)
			}
			run = claimed
			d.metrics.failure(run.Group, causeInterrupted)
		}
	}
	if found && !interruptedText(run) {
		return d.completeSlot(ctx, sl, slotState(run.Status), run.Error, now)
	}
	captured, expected, err := d.capturedBy(ctx, s.Group, run, found)
	if err != nil {
		d.log.WarnContext(ctx, "could not list what the interrupted run captured in the repository; relying on the catalog's steps", "run", sl.RunID, "error", err.Error())
	}
	var missing []string
	for _, w := range expected {
		if _, ok := captured[w]; !ok {
			missing = append(missing, w)
		}
	}
	if found && len(missing) == 0 {
		return d.completeSlot(ctx, sl, catalog.SlotSucceeded,
			fmt.Sprintf("daemon %s stopped mid-run after every workload was captured", sl.Daemon), now)
	}
	state := catalog.SlotFailed
	if len(captured) > 0 {
		state = catalog.SlotPartial
	}
	if why := d.noRetry(ctx, s, sl, now); why != "" {
		return d.completeSlot(ctx, sl, state, fmt.Sprintf("daemon %s stopped mid-run (run %s); not retried: %s", sl.Daemon, sl.RunID, why), now)
	}
	if d.queued(s, busyWith) != "" {
		return nil // queued: tried again on the next tick
	}
	token, _ := d.currentToken()
	retry := retryInfo{of: sl.RunID, captured: len(captured), expected: len(expected)}
	sl.Reason = fmt.Sprintf("%s%s: daemon %s stopped mid-run", retryPrefix, retry.of, sl.Daemon)
	sl.Daemon, sl.Token, sl.RunID, sl.StartedAt = d.o.ID, token, engine.NewRunID(now), now.UTC()
	if err := d.store.UpdateSlot(ctx, sl, now); err != nil {
		return fmt.Errorf("taking the slot over for a retry: %w", err)
	}
	o := engine.RunOptions{Group: s.Group, RunID: sl.RunID, Tags: append(runTags(s), retryTag(retry.of))}
	if found {
		o.Only = missing // back up only what the interrupted run did not capture
	}
	d.log.InfoContext(ctx, "retrying a slot its daemon left mid-run", "schedule", s.Name, "slot", sl.Slot, "interrupted_run", retry.of, "run", sl.RunID, "workloads", o.Only)
	d.forget(s.Name)
	d.launch(s, sl, o, retry)
	return nil
}

// lastSeen is the last sign of life of a run's engine.
func lastSeen(r catalog.Run) time.Time {
	if r.HeartbeatAt.IsZero() {
		return r.StartedAt
	}
	return r.HeartbeatAt
}

// capturedBy returns the workloads the interrupted run captured, from its
// recorded steps and from the repository itself (a backup may have
// finished on an agent after its engine died, unrecorded), and the
// workloads it was expected to back up.
func (d *Daemon) capturedBy(ctx context.Context, group string, run catalog.Run, found bool) (map[string]string, []string, error) {
	captured := map[string]string{}
	if !found {
		return captured, nil, nil
	}
	steps, err := d.store.Steps(ctx, run.ID)
	if err != nil {
		return captured, run.Expected, err
	}
	for _, st := range steps {
		if st.Outcome == catalog.StepSucceeded {
			captured[st.Workload] = st.SnapshotID
		}
	}
	inRepo, err := d.eng.SnapshotsOfRun(ctx, group, run.ID)
	for w, id := range inRepo {
		if slices.Contains(run.Expected, w) {
			captured[w] = id
		}
	}
	return captured, run.Expected, err
}

// noRetry says why an interrupted slot is not run again ("" to retry).
func (d *Daemon) noRetry(ctx context.Context, s catalog.Schedule, sl catalog.ScheduleSlot, now time.Time) string {
	if strings.HasPrefix(sl.Reason, retryPrefix) {
		return "it was already retried once"
	}
	if s.Paused {
		return "the schedule is paused"
	}
	p, err := schedule.Parse(s)
	if err != nil {
		return "the schedule no longer parses: " + err.Error()
	}
	if _, closes := p.Window(sl.Slot); now.Before(closes) {
		return "" // the planner's start window: slot + start window
	}
	if s.CatchUp == catalog.CatchUpSkip {
		return fmt.Sprintf("its start window (%s) is over and catch-up is skip", p.StartWindow())
	}
	if p.Next(sl.Slot).After(now) {
		return "" // catch-up "latest": still the latest slot
	}
	return "a newer slot is due"
}

// completeSlot records the end of a slot this daemon did not run.
func (d *Daemon) completeSlot(ctx context.Context, sl catalog.ScheduleSlot, state, reason string, now time.Time) error {
	token, leader := d.currentToken()
	if !leader {
		return nil
	}
	sl.State, sl.Reason, sl.Token, sl.FinishedAt = state, reason, token, now.UTC()
	if err := d.store.UpdateSlot(ctx, sl, now); err != nil {
		return fmt.Errorf("recording its end: %w", err)
	}
	d.log.InfoContext(ctx, "completed a slot another daemon left", "schedule", sl.Schedule, "slot", sl.Slot, "run", sl.RunID, "state", state, "reason", reason)
	return nil
}

// slotState maps a finished run's status to a slot state.
func slotState(runStatus string) string {
	switch runStatus {
	case catalog.RunSucceeded:
		return catalog.SlotSucceeded
	case catalog.RunPartial:
		return catalog.SlotPartial
	default:
		return catalog.SlotFailed
	}
}

// catalogBusyGroups returns the groups with a running slot in the catalog
// that this daemon is not running (another daemon's, or one left for
// failover), and a schedule running each: one run per group holds across
// daemons and failover, not only within this daemon's memory.
func (d *Daemon) catalogBusyGroups(ctx context.Context, scheds []catalog.Schedule) (map[string]string, error) {
	slots, err := d.store.RunningSlots(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing running slots: %w", err)
	}
	groupOf := map[string]string{}
	for _, s := range scheds {
		groupOf[s.Name] = s.Group
	}
	busy := map[string]string{}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sl := range slots {
		if _, mine := d.running[sl.RunID]; mine {
			continue
		}
		if g, ok := groupOf[sl.Schedule]; ok {
			busy[g] = sl.Schedule
		}
	}
	return busy, nil
}
