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
	var errs []error
	for _, sl := range slots {
		d.mu.Lock()
		_, mine := d.running[sl.RunID]
		d.mu.Unlock()
		if mine {
			continue
		}
		if err := d.takeOver(ctx, sl, alive[sl.Daemon], now); err != nil {
			errs = append(errs, fmt.Errorf("taking over slot %s of schedule %q (run %s, daemon %s): %w", sl.Slot.Format(time.RFC3339), sl.Schedule, sl.RunID, sl.Daemon, err))
		}
	}
	return errors.Join(errs...)
}

func (d *Daemon) takeOver(ctx context.Context, sl catalog.ScheduleSlot, ownerAlive bool, now time.Time) error {
	run, err := d.store.GetRun(ctx, sl.RunID)
	found := err == nil
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return err
	}
	interrupted := false
	switch {
	case !found && ownerAlive && now.Sub(sl.StartedAt) < runRecordGrace:
		return nil // claimed, the run record is about to be written
	case !found:
		interrupted = true
	case run.Status == catalog.RunRunning && ownerAlive:
		return nil // still going: its end is recorded when it finishes
	case run.Status == catalog.RunRunning:
		run.Status, run.FinishedAt = catalog.RunFailed, now.UTC()
		run.Error = fmt.Sprintf("daemon %s stopped mid-run", sl.Daemon)
		if err := d.store.UpdateRun(ctx, run); err != nil && !errors.Is(err, catalog.ErrConflict) {
			return fmt.Errorf("marking interrupted run failed: %w", err)
		} else if err != nil {
			// It finished meanwhile: take its own outcome.
			if run, err = d.store.GetRun(ctx, sl.RunID); err != nil {
				return err
			}
			break
		}
		d.metrics.failure(run.Group, causeInterrupted)
		interrupted = true
	default:
		// Shut down at the end of its grace period (the run recorded a
		// cancelled failure), or already marked failed as abandoned by the
		// engine's recovery of dead engines' work: interrupted all the same.
		interrupted = run.Status != catalog.RunSucceeded && (strings.Contains(run.Error, context.Canceled.Error()) ||
			strings.Contains(run.Error, abandonedRunText))
	}
	if !interrupted {
		return d.completeSlot(ctx, sl, slotState(run.Status), run.Error, now)
	}
	s, err := d.store.GetSchedule(ctx, sl.Schedule)
	if err != nil {
		return fmt.Errorf("reading its schedule: %w", err)
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
	d.mu.Lock()
	_, busy := d.busyGroups[s.Group]
	full := len(d.running) >= d.o.MaxConcurrentRuns
	token, leader := d.token, d.leader
	d.mu.Unlock()
	if busy || full || !leader {
		return nil // queued: tried again on the next tick
	}
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
	if now.Before(sl.Slot.Add(p.Jitter(sl.Slot)).Add(p.StartWindow())) {
		return ""
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
