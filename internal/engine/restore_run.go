package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// ErrSimulatedCrash, returned by a RestoreHooks.AfterStep, makes RunRestore
// stop at once without recording anything more, as if the process died.
var ErrSimulatedCrash = errors.New("simulated crash")

// StepRunning marks a restore step in progress.
const StepRunning = "running"

// RestoreHooks let tests act at precise points of a restore.
type RestoreHooks struct {
	AfterStep func(ctx context.Context, step catalog.RestoreStep) error
	// AfterDeactivate runs once a step has stopped the workload (and
	// recorded it); ErrSimulatedCrash stops the restore there.
	AfterDeactivate func(ctx context.Context, step catalog.RestoreStep) error
	// AfterWrite runs once a step's data was written and swapped in, before
	// the workload is started; ErrSimulatedCrash stops the restore there.
	AfterWrite func(ctx context.Context, step catalog.RestoreStep) error
}

// PlanChangedError says how reality differs from the plan Terraform showed.
type PlanChangedError struct {
	Changes []string
}

func (e *PlanChangedError) Error() string {
	return "reality changed since the plan: " + strings.Join(e.Changes, "; ")
}

// RestoreReport is the outcome of a restore operation.
type RestoreReport struct {
	Operation catalog.RestoreOperation
	Plan      RestorePlan
	Steps     []catalog.RestoreStep
	Resumed   bool // an interrupted operation with the same request was continued
}

// RunRestore carries out a restore job (E11-E16, M8): for each workload in
// order, stop any running copy, make the restore node the fenced
// coordinator, restore (the agent inspects, stages and swaps), activate if
// asked, record completion, and only then start the next. The operation is
// recorded before any work; an operation with the same request that did not
// finish (the provider was killed) is resumed instead of starting another.
// expected, when given, is the plan Terraform showed: apply fails rather
// than do something else if the recovery point or a node changed.
func (e *Engine) RunRestore(ctx context.Context, s RestoreSpec, expected *RestorePlan, hooks RestoreHooks) (RestoreReport, error) {
	key := RestoreKey(s)
	var rep RestoreReport
	op, err := e.store.FindRestoreByKey(ctx, key)
	switch {
	case err == nil && op.Status == catalog.RestoreSucceeded:
		// Done already, by a process that died before Terraform saved it.
		rep.Operation, rep.Resumed = op, true
		rep.Steps, err = e.store.RestoreSteps(ctx, op.ID)
		_ = json.Unmarshal([]byte(op.Spec), &rep.Plan)
		return rep, err
	case err == nil:
		// Interrupted or failed: continue with the plan it recorded.
		rep.Resumed = true
		if err := json.Unmarshal([]byte(op.Spec), &rep.Plan); err != nil {
			return rep, fmt.Errorf("restore operation %s has an unreadable plan: %w", op.ID, err)
		}
		e.log.InfoContext(ctx, "resuming restore operation", "operation", op.ID, "status", op.Status)
		if op.Status == catalog.RestoreRunning {
			if err := e.takeOverRunningRestore(ctx, op); err != nil {
				return rep, err
			}
		}
		op.Status, op.Error = catalog.RestoreRunning, ""
		op.Owner, op.HeartbeatAt = e.owner(), e.now().UTC()
		if err := e.store.UpdateRestore(ctx, op); err != nil {
			return rep, err
		}
	case errors.Is(err, catalog.ErrNotFound):
		if expected != nil {
			// Say what changed since the plan before anything else fails.
			if err := e.checkShownPlan(ctx, s, *expected, *expected); err != nil {
				return rep, err
			}
		}
		plan, err := e.PlanRestore(ctx, s)
		if err != nil {
			return rep, err
		}
		if expected != nil {
			if err := e.checkShownPlan(ctx, s, *expected, plan); err != nil {
				return rep, err
			}
			plan = *expected
		}
		rep.Plan = plan
		spec, _ := json.Marshal(plan)
		op = catalog.RestoreOperation{ID: newOperationID(e.now()), Key: key, Cluster: s.Cluster, Repository: s.Repository,
			Spec: string(spec), Status: catalog.RestoreRunning, StartedAt: e.now().UTC(), Owner: e.owner(), HeartbeatAt: e.now().UTC()}
		// Recorded before any work, so a crash from here on is resumable.
		if err := e.store.CreateRestore(ctx, op); err != nil {
			return rep, fmt.Errorf("recording restore operation: %w", err)
		}
	default:
		return rep, err
	}
	rep.Operation = op
	// The heartbeat tells a long restore from one whose engine died
	// (RecoverAbandoned); an operation taken over as abandoned stops here.
	var finished atomic.Bool
	runningHere.Store(op.ID, true)
	defer runningHere.Delete(op.ID)
	ctx, stopBeat := e.keepAlive(ctx, "restore operation", op.ID, e.beatRestore(op.ID, &finished))
	defer stopBeat()
	done := map[int]catalog.RestoreStep{}
	prior, err := e.store.RestoreSteps(ctx, op.ID)
	if err != nil {
		return rep, err
	}
	for _, st := range prior {
		done[st.Seq] = st
	}
	repo, err := e.store.GetRepository(ctx, s.Repository)
	if err != nil {
		return rep, err
	}
	cluster, err := e.store.GetCluster(ctx, s.Cluster)
	if err != nil {
		return rep, err
	}
	var failure error
	for i, p := range rep.Plan.Steps {
		seq := i + 1
		if st, ok := done[seq]; ok && st.Outcome == catalog.StepSucceeded {
			rep.Steps = append(rep.Steps, st)
			continue
		}
		w := s.Workloads[i]
		st, err := e.restoreStep(ctx, s, cluster, repo, op.ID, seq, p, w, done[seq], hooks)
		rep.Steps = append(rep.Steps, st)
		if errors.Is(err, ErrSimulatedCrash) {
			return rep, err
		}
		if hooks.AfterStep != nil {
			if herr := hooks.AfterStep(ctx, st); errors.Is(herr, ErrSimulatedCrash) {
				return rep, herr
			}
		}
		if err != nil {
			failure = err
			break
		}
	}
	if lost := lostCause(ctx); lost != nil {
		// Taken over as abandoned: the new owner records the outcome.
		return rep, errors.Join(lost, failure)
	}
	op.FinishedAt = e.now().UTC()
	op.Status = catalog.RestoreSucceeded
	if failure != nil {
		op.Status, op.Error = catalog.RestoreFailed, failure.Error()
	}
	finished.Store(true)
	if err := e.store.UpdateRestore(context.WithoutCancel(ctx), op); err != nil {
		return rep, err
	}
	rep.Operation = op
	return rep, failure
}

func newOperationID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "restore-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// checkShownPlan lists what differs between the plan shown and now: a
// recovery point gone, a restore node changed, a copy running elsewhere.
func (e *Engine) checkShownPlan(ctx context.Context, s RestoreSpec, shown, now RestorePlan) error {
	var changes []string
	for _, a := range shown.Steps {
		points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Cluster: s.Cluster, Workload: a.Workload, Repository: s.Repository})
		if err != nil {
			return err
		}
		found := false
		for _, p := range points {
			found = found || p.ID == a.RecoveryPoint
		}
		if !found {
			changes = append(changes, fmt.Sprintf("recovery point %s of %s no longer exists (forgotten by retention or deleted); plan again to pick another", a.RecoveryPoint, a.Workload))
		}
	}
	for i, a := range shown.Steps {
		if i >= len(now.Steps) {
			break
		}
		b := now.Steps[i]
		if b.Workload != a.Workload {
			continue
		}
		if a.Node != b.Node {
			changes = append(changes, fmt.Sprintf("%s would now be restored to %q instead of %q", a.Workload, b.Node, a.Node))
		}
		if a.DeactivateOn != b.DeactivateOn {
			changes = append(changes, fmt.Sprintf("%s now runs on %q (the plan deactivates it on %q)", a.Workload, b.DeactivateOn, a.DeactivateOn))
		}
	}
	if len(changes) > 0 {
		return &PlanChangedError{Changes: changes}
	}
	return nil
}

func (e *Engine) restoreStep(ctx context.Context, s RestoreSpec, cluster catalog.Cluster, repo catalog.Repository, opID string, seq int, p RestoreStepPlan, w RestoreWorkload, prior catalog.RestoreStep, hooks RestoreHooks) (catalog.RestoreStep, error) {
	st := catalog.RestoreStep{OperationID: opID, Seq: seq, Workload: p.Workload, SnapshotID: p.RecoveryPoint, Node: p.Node,
		Migrated: p.Migrate, Outcome: StepRunning, StartedAt: e.now().UTC()}
	if prior.Seq == seq {
		st.DeactivatedOn = prior.DeactivatedOn // a resumed step already stopped it there
	}
	save := func() {
		if err := e.store.PutRestoreStep(context.WithoutCancel(ctx), st); err != nil {
			e.log.ErrorContext(ctx, "recording restore step", "operation", opID, "seq", seq, "error", err.Error())
		}
	}
	endpoint := func(node string) string {
		for _, n := range cluster.Nodes {
			if n.Name == node {
				return n.Endpoint
			}
		}
		return ""
	}
	dataSwapped := false
	// Any failure after this step stopped the workload puts it back where
	// it ran (failure leaves things as they were), and says what was done.
	fail := func(err error) (catalog.RestoreStep, error) {
		se := &RestoreStepError{Workload: p.Workload, Err: err, StoppedOn: st.DeactivatedOn, DataRestored: dataSwapped}
		if st.DeactivatedOn != "" {
			se.RestartErr = e.restartWhereItRan(context.WithoutCancel(ctx), s, cluster, p, st.DeactivatedOn)
			se.Restarted = se.RestartErr == nil
			if se.Restarted {
				st.DeactivatedOn = "" // running again: a resume stops it again
			}
		}
		st.Outcome, st.Error, st.FinishedAt = catalog.StepFailed, se.Error(), e.now().UTC()
		save()
		return st, se
	}
	save()
	target, err := e.dial(p.Node, endpoint(p.Node))
	if err != nil {
		return fail(err)
	}
	repoID, err := e.repositoryID(ctx, repo)
	if err != nil {
		return fail(err)
	}
	req := api.RestoreRequest{OperationID: opID, Repository: repo.Name, RepositoryID: repoID, SnapshotID: SnapshotOf(p.RecoveryPoint),
		Verify: s.Verify, Files: w.Files, Destination: w.DestinationPath, Cluster: s.Cluster}
	req.KeepSetuid = s.KeepSetuid
	// Inspect before anything is stopped or written (M8): a damaged
	// recovery point must cost neither data nor downtime.
	if s.Verify != api.VerifyNone {
		inspect := req
		inspect.InspectOnly = true
		ires, err := target.Restore(ctx, p.Workload, inspect)
		if err == nil {
			err = checkResultRepositoryID(p.Node, repo.Name, ires.RepositoryID, repoID)
		}
		if err != nil {
			return fail(err)
		}
		req.Verify = api.VerifyMetadata // the data was read once already
	}
	// Re-check reality right before acting (a resumed or long restore must
	// not replay its plan against a cluster that changed since).
	if w.DestinationPath == "" {
		expect, before := p.DeactivateOn, "stopping"
		if st.DeactivatedOn != "" {
			expect, before = "", "writing" // this operation stopped it already
		} else if expect == "" {
			before = "writing"
		}
		if err := e.recheckStep(ctx, s, p, expect, before); err != nil {
			return fail(err)
		}
	}
	// Stop every running copy first: never active on two nodes (E12).
	if p.DeactivateOn != "" && st.DeactivatedOn == "" {
		cl, err := e.dial(p.DeactivateOn, endpoint(p.DeactivateOn))
		if err != nil {
			return fail(err)
		}
		e.log.InfoContext(ctx, "deactivating workload before restore", "workload", p.Workload, "node", p.DeactivateOn)
		res, err := cl.Action(ctx, p.Workload, "stop")
		if err != nil {
			return fail(fmt.Errorf("could not stop it on %s: %w", p.DeactivateOn, err))
		}
		// A stop command that returns before the workload is down (or an
		// agent that has none) must not let the restore write under it.
		if res.State != api.StateInactive {
			return fail(fmt.Errorf("the stop on %s returned, but the agent still reports %s as %s there; nothing was written: make its stop command wait until it is down, then apply again", p.DeactivateOn, p.Workload, res.State))
		}
		st.DeactivatedOn = p.DeactivateOn
		save()
		if hooks.AfterDeactivate != nil {
			if herr := hooks.AfterDeactivate(ctx, st); errors.Is(herr, ErrSimulatedCrash) {
				return st, herr
			}
		}
	}
	held, err := e.coordinate(ctx, s.Cluster, p.Node, target, 0)
	if err != nil {
		return fail(err)
	}
	defer held.stop()
	lease, stepCtx := held.Lease, held.ctx
	st.Epoch = lease.Epoch
	req.Epoch = lease.Epoch
	e.log.InfoContext(ctx, "restoring", "workload", p.Workload, "node", p.Node, "epoch", lease.Epoch, "recovery_point", p.RecoveryPoint)
	res, err := target.Restore(stepCtx, p.Workload, req)
	// A backup of the same workload holds it on the agent: wait for it.
	for attempt := 1; err != nil && client.IsBusy(err) && attempt <= 30; attempt++ {
		e.log.InfoContext(ctx, "workload busy with a backup; waiting", "workload", p.Workload, "node", p.Node, "attempt", attempt)
		if werr := e.wait(stepCtx, time.Second); werr != nil {
			break
		}
		if _, cerr := target.ClaimCoordinator(stepCtx, api.CoordinatorClaim{Cluster: s.Cluster, Epoch: lease.Epoch, Owner: e.owner()}); cerr != nil && !client.IsStaleEpoch(cerr) {
			break
		}
		res, err = target.Restore(stepCtx, p.Workload, req)
	}
	if lost := leaseLost(held); lost != nil && err != nil {
		err = fmt.Errorf("%w (%w)", lost, err)
	}
	if err == nil {
		// The agent checked the id before writing; this catches an agent
		// that did not (an older one) before the step counts as done.
		err = checkResultRepositoryID(p.Node, repo.Name, res.RepositoryID, repoID)
	}
	if err != nil {
		// The previous data is in place (the agent swaps only at the end).
		return fail(err)
	}
	dataSwapped = true
	st.BytesWritten = res.BytesWritten
	if hooks.AfterWrite != nil {
		if herr := hooks.AfterWrite(ctx, st); errors.Is(herr, ErrSimulatedCrash) {
			return st, herr
		}
	}
	if p.Activate {
		if err := e.recheckStep(ctx, s, p, "", "starting"); err != nil {
			return fail(fmt.Errorf("restored, but not started: %w", err))
		}
		if _, err := target.Action(ctx, p.Workload, "start"); err != nil {
			return fail(fmt.Errorf("restored, but could not start it on %s: %w", p.Node, err))
		}
		st.Activated = true
	}
	st.Outcome, st.FinishedAt = catalog.StepSucceeded, e.now().UTC()
	save()
	e.log.InfoContext(ctx, "workload restored", "workload", p.Workload, "node", p.Node, "bytes", st.BytesWritten, "activated", st.Activated)
	return st, nil
}

// ForgetRestore deletes a restore operation's record; it does not undo it.
func (e *Engine) ForgetRestore(ctx context.Context, id string) error {
	return e.store.DeleteRestore(ctx, id)
}

// GetRestore returns an operation and its steps.
func (e *Engine) GetRestore(ctx context.Context, id string) (catalog.RestoreOperation, []catalog.RestoreStep, error) {
	op, err := e.store.GetRestore(ctx, id)
	if err != nil {
		return op, nil, err
	}
	steps, err := e.store.RestoreSteps(ctx, id)
	return op, steps, err
}

// PreviewRestore is what a plan shows (T3): the plan of an unfinished
// operation with the same request (it will be resumed), or a fresh one.
func (e *Engine) PreviewRestore(ctx context.Context, s RestoreSpec) (RestorePlan, bool, error) {
	if op, err := e.store.FindRestoreByKey(ctx, RestoreKey(s)); err == nil {
		var p RestorePlan
		if err := json.Unmarshal([]byte(op.Spec), &p); err == nil {
			if op.Status != catalog.RestoreSucceeded {
				// Show now, not at apply, that the recorded plan no
				// longer holds.
				if err := e.checkResumable(ctx, s, op, p); err != nil {
					return p, true, err
				}
			}
			return p, true, nil
		}
	}
	p, err := e.PlanRestore(ctx, s)
	return p, false, err
}
