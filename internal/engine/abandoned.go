package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// Heartbeat timing of runs and restore operations. The engine carrying one
// out refreshes its heartbeat every HeartbeatInterval; an operation still
// "running" whose last sign of life (heartbeat, or start when it has none)
// is older than AbandonedAfter is abandoned: its engine died (provider
// killed, daemon host lost). AbandonedAfter is three missed refreshes (a
// catalog briefly slow or unreachable does not make a live engine look
// dead) plus HeartbeatSkew for the clocks of two engines sharing a catalog,
// which must agree to within it (as for coordinator leases).
const (
	HeartbeatInterval = 10 * time.Second
	HeartbeatSkew     = 5 * time.Second
	AbandonedAfter    = 3*HeartbeatInterval + HeartbeatSkew
)

// OwnerStore records who carries out a run or restore operation and when it
// last said so. catalog/memstore and catalog/sqlstore implement it.
type OwnerStore interface {
	// ClaimRun sets a running run's Owner to to and HeartbeatAt to now,
	// only if it is still running, still owned by from, and either from ==
	// to (a heartbeat) or its heartbeat is older than staleBefore (a
	// take-over of an abandoned run); else ErrConflict (ErrNotFound if
	// absent). It returns the run as updated. The conditions are checked
	// atomically, so of two engines taking over one run exactly one wins.
	ClaimRun(ctx context.Context, id, from, to string, staleBefore, now time.Time) (catalog.Run, error)
	// ClaimRestore is ClaimRun for a restore operation.
	ClaimRestore(ctx context.Context, id, from, to string, staleBefore, now time.Time) (catalog.RestoreOperation, error)
	// RunningRuns and RunningRestores list every run or operation in state
	// running, oldest first.
	RunningRuns(ctx context.Context) ([]catalog.Run, error)
	RunningRestores(ctx context.Context) ([]catalog.RestoreOperation, error)
}

// RecoveryReport says what RecoverAbandoned found and did.
type RecoveryReport struct {
	Runs     []RecoveredRun
	Restores []RecoveredRestore
}

// RecoveredRun is an abandoned backup run, now marked failed.
type RecoveredRun struct {
	ID, Group, Owner string
	LastSeen         time.Time // its last heartbeat (or start)
	Error            string    // recorded on the run
}

// RecoveredRestore is an abandoned restore operation.
type RecoveredRestore struct {
	ID, Cluster, Owner string
	LastSeen           time.Time
	// Restarted lists the workloads started again where they ran.
	Restarted []WorkloadNode
	// NotRestarted lists the workloads left as they are, and why.
	NotRestarted []WorkloadNode
	// Failed is true when the operation was marked failed (with Error).
	// It stays running, handed back as abandoned, when a workload's state
	// could not be known (a node could not be asked): a later pass, or a
	// re-apply of the restore job, tries again.
	Failed bool
	Error  string
}

// WorkloadNode is one workload on one node, with why it was left alone.
type WorkloadNode struct {
	Workload, Node string
	Reason         string // for NotRestarted
}

// RecoverAbandoned finishes what a dead engine left behind. A backup run
// still running whose owner stopped refreshing its heartbeat for
// AbandonedAfter is marked failed; workloads it had frozen were released by
// their agents already (the agent releases a workload when the backup
// request ends or its stun timeout passes, whatever the engine does). A
// restore operation abandoned in the same way has every workload it stopped
// and did not start again (DeactivatedOn set, not Activated) started on the
// node where it ran, only when the workload is active nowhere, no other node
// holds its ownership lease and every node could be asked; it is then
// marked failed, saying what was done and that re-applying the restore job
// finishes it. Data is left in place: a workload restarted before its
// restore swapped data in runs on its previous data; one whose swap had
// happened runs on the restored data.
//
// Every action is preceded by an atomic take-over of the operation
// (OwnerStore.ClaimRun/ClaimRestore), so two engines running this at once
// never both act on one operation, and an operation whose owner is alive
// (fresh heartbeat) is never touched. The engine daemon's leader calls it
// every minute. The provider does not: a re-apply of a restore job resumes
// its own operation (RunRestore), and an apply should not act on other
// jobs' operations.
func (e *Engine) RecoverAbandoned(ctx context.Context) (RecoveryReport, error) {
	var rep RecoveryReport
	var errs []error
	runs, err := e.store.RunningRuns(ctx)
	if err != nil {
		return rep, fmt.Errorf("listing running backup runs to find abandoned ones: %w", err)
	}
	for _, r := range runs {
		rr, ok, err := e.recoverRun(ctx, r)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			rep.Runs = append(rep.Runs, rr)
		}
	}
	ops, err := e.store.RunningRestores(ctx)
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("listing running restore operations to find abandoned ones: %w", err))...)
	}
	for _, op := range ops {
		ro, ok, err := e.recoverRestore(ctx, op)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			rep.Restores = append(rep.Restores, ro)
		}
	}
	return rep, errors.Join(errs...)
}

// lastSeen is the last sign of life of an operation's owner.
// runningHere holds the ids of the restore operations an engine of this
// process is carrying out now. An operation owned by another engine of this
// process that is not in it was left by an engine that returned (an error
// between steps): a re-apply in the same process resumes it at once.
var runningHere sync.Map

func lastSeen(heartbeat, started time.Time) time.Time {
	if heartbeat.IsZero() {
		return started
	}
	return heartbeat
}

// abandoned reports whether an operation whose owner was last seen at seen
// is abandoned at now, and the bound to claim it with.
func (e *Engine) abandoned(owner string, seen time.Time) (staleBefore time.Time, ok bool) {
	staleBefore = e.now().Add(-AbandonedAfter)
	if seen.Before(staleBefore) {
		return staleBefore, true
	}
	if ownerProcessGone(owner) {
		// Its process is gone: no need to wait for the heartbeat to age.
		return seen.Add(time.Nanosecond), true
	}
	return staleBefore, false
}

func (e *Engine) recoverRun(ctx context.Context, r catalog.Run) (RecoveredRun, bool, error) {
	seen := lastSeen(r.HeartbeatAt, r.StartedAt)
	staleBefore, ok := e.abandoned(r.Owner, seen)
	if !ok {
		return RecoveredRun{}, false, nil
	}
	claimed, err := e.store.ClaimRun(ctx, r.ID, r.Owner, e.owner(), staleBefore, e.now().UTC())
	if errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrNotFound) {
		return RecoveredRun{}, false, nil // finished, alive after all, or taken by another engine
	}
	if err != nil {
		return RecoveredRun{}, false, fmt.Errorf("taking over abandoned run %s: %w", r.ID, err)
	}
	owner := r.Owner
	if owner == "" {
		owner = "an engine that recorded no owner"
	}
	claimed.Status = catalog.RunFailed
	claimed.Error = fmt.Sprintf("abandoned by %s at %s: its engine stopped while the run was in progress (recovered by %s); workloads it froze were released by their agents; run the backup again",
		owner, seen.UTC().Format(time.RFC3339), e.owner())
	claimed.FinishedAt = e.now().UTC()
	if err := e.store.UpdateRun(ctx, claimed); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return RecoveredRun{}, false, nil
		}
		return RecoveredRun{}, false, fmt.Errorf("marking abandoned run %s failed: %w", r.ID, err)
	}
	e.log.WarnContext(ctx, "abandoned backup run marked failed", "run", r.ID, "group", r.Group, "owner", owner, "last_seen", seen)
	return RecoveredRun{ID: r.ID, Group: r.Group, Owner: r.Owner, LastSeen: seen, Error: claimed.Error}, true, nil
}

func (e *Engine) recoverRestore(ctx context.Context, op catalog.RestoreOperation) (RecoveredRestore, bool, error) {
	seen := lastSeen(op.HeartbeatAt, op.StartedAt)
	staleBefore, ok := e.abandoned(op.Owner, seen)
	if !ok {
		return RecoveredRestore{}, false, nil
	}
	claimed, err := e.store.ClaimRestore(ctx, op.ID, op.Owner, e.owner(), staleBefore, e.now().UTC())
	if errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrNotFound) {
		return RecoveredRestore{}, false, nil
	}
	if err != nil {
		return RecoveredRestore{}, false, fmt.Errorf("taking over abandoned restore operation %s: %w", op.ID, err)
	}
	rep := RecoveredRestore{ID: op.ID, Cluster: op.Cluster, Owner: op.Owner, LastSeen: seen}
	// Heartbeats while restarting: this engine now owns the operation.
	var finished atomic.Bool
	ctx, stopBeat := e.keepAlive(ctx, "restore operation", op.ID, e.beatRestore(op.ID, &finished))
	defer stopBeat()
	owner := op.Owner
	if owner == "" {
		owner = "an engine that recorded no owner"
	}
	handBack := func(err error) (RecoveredRestore, bool, error) {
		// Back to its old owner and heartbeat, so it stays abandoned: the
		// next pass or a re-apply takes it at once.
		stopBeat()
		if _, herr := e.store.ClaimRestore(context.WithoutCancel(ctx), op.ID, e.owner(), op.Owner, e.now().Add(24*time.Hour), op.HeartbeatAt); herr != nil {
			err = errors.Join(err, fmt.Errorf("handing restore operation %s back: %w", op.ID, herr))
		}
		return rep, true, err
	}
	steps, err := e.store.RestoreSteps(ctx, op.ID)
	if err != nil {
		return handBack(fmt.Errorf("reading the steps of abandoned restore operation %s: %w", op.ID, err))
	}
	cluster, err := e.store.GetCluster(ctx, op.Cluster)
	if err != nil {
		return handBack(fmt.Errorf("abandoned restore operation %s: cluster %q: %w", op.ID, op.Cluster, err))
	}
	unknown := false
	for _, st := range steps {
		if st.DeactivatedOn == "" || st.Activated || st.Outcome == catalog.StepSucceeded {
			continue
		}
		node := st.DeactivatedOn
		if reason, known := e.mayRestart(ctx, op.Cluster, st.Workload, node); reason != "" {
			rep.NotRestarted = append(rep.NotRestarted, WorkloadNode{Workload: st.Workload, Node: node, Reason: reason})
			unknown = unknown || !known
			continue
		}
		s := RestoreSpec{Cluster: op.Cluster} // no assume_down: recovery never presumes a node dead
		err := e.restartWhereItRan(ctx, s, cluster, RestoreStepPlan{Workload: st.Workload}, node)
		var pc *PlanChangedError
		switch {
		case err == nil:
			rep.Restarted = append(rep.Restarted, WorkloadNode{Workload: st.Workload, Node: node})
			st.DeactivatedOn = "" // running again: a resume stops it again
			st.Outcome, st.FinishedAt = catalog.StepFailed, e.now().UTC()
			st.Error = fmt.Sprintf("abandoned by %s; %s was started again on %s", owner, st.Workload, node)
			if perr := e.store.PutRestoreStep(context.WithoutCancel(ctx), st); perr != nil {
				e.log.ErrorContext(ctx, "recording a recovered restore step", "operation", op.ID, "seq", st.Seq, "error", perr.Error())
			}
		case errors.As(err, &pc):
			// It runs elsewhere, on several nodes, or no agent defines it:
			// nothing to restart, and nothing a later pass would change.
			rep.NotRestarted = append(rep.NotRestarted, WorkloadNode{Workload: st.Workload, Node: node, Reason: err.Error()})
		default:
			rep.NotRestarted = append(rep.NotRestarted, WorkloadNode{Workload: st.Workload, Node: node, Reason: err.Error()})
			unknown = true
		}
	}
	if unknown {
		e.log.WarnContext(ctx, "abandoned restore operation left as it is: a workload's state is unknown", "operation", op.ID, "owner", owner, "not_restarted", describeWorkloadNodes(rep.NotRestarted))
		return handBack(nil)
	}
	rep.Failed = true
	rep.Error = fmt.Sprintf("abandoned by %s at %s", owner, seen.UTC().Format(time.RFC3339))
	for _, w := range rep.Restarted {
		rep.Error += fmt.Sprintf("; workload %s restarted on node %s", w.Workload, w.Node)
	}
	for _, w := range rep.NotRestarted {
		rep.Error += fmt.Sprintf("; workload %s (stopped on node %s) not restarted: %s", w.Workload, w.Node, w.Reason)
	}
	rep.Error += "; re-apply the restore job to finish it"
	claimed.Status, claimed.Error, claimed.FinishedAt = catalog.RestoreFailed, rep.Error, e.now().UTC()
	finished.Store(true)
	if err := e.store.UpdateRestore(context.WithoutCancel(ctx), claimed); err != nil {
		return rep, true, fmt.Errorf("marking abandoned restore operation %s failed: %w", op.ID, err)
	}
	e.log.WarnContext(ctx, "abandoned restore operation marked failed", "operation", op.ID, "owner", owner, "error", rep.Error)
	return rep, true, nil
}

// mayRestart says why workload must not be started on node now ("" if it
// may), and whether that is known for sure (false: a node could not be
// asked, so a later attempt may succeed).
func (e *Engine) mayRestart(ctx context.Context, cluster, workload, node string) (reason string, known bool) {
	status, err := e.ClusterStatus(ctx, cluster)
	if err != nil {
		return fmt.Sprintf("probing cluster %q failed: %v", cluster, err), false
	}
	d := mergeDigest(status)
	if len(d.Unreachable) > 0 {
		var names []string
		for _, n := range d.Unreachable {
			names = append(names, n.Node+" ("+n.Error()+")")
		}
		return fmt.Sprintf("node(s) %s could not be asked, so %s may be running there; nothing was started", strings.Join(names, ", "), workload), false
	}
	for _, n := range status.Nodes {
		if n.Name == node {
			continue
		}
		if until, live := liveOwnerLease(status, workload, n.Name, e.now()); live {
			return fmt.Sprintf("node %s holds the ownership lease of %s until %s; nothing was started", n.Name, workload, until.UTC().Format(time.RFC3339)), false
		}
	}
	return "", true
}

func describeWorkloadNodes(ws []WorkloadNode) string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Workload+"@"+w.Node+": "+w.Reason)
	}
	return strings.Join(out, "; ")
}

// keepAlive refreshes an operation's heartbeat every HeartbeatInterval
// (the engine's heartbeat option) until stop (idempotent). A refresh refused because
// another engine took the operation over (it judged it abandoned), or
// because it is gone, cancels the returned context with that reason, so the
// old owner stops working on it; other errors are logged and retried, and
// cancel it once no refresh succeeded for three intervals, before another
// engine may judge the operation abandoned (AbandonedAfter: three intervals
// plus the clock skew). Work a slow owner does meanwhile is still fenced by
// the agents (the workload lock through a restore's swap, the ownership
// lease on every start).
func (e *Engine) keepAlive(ctx context.Context, kind, id string, beat func(ctx context.Context) error) (context.Context, func()) {
	opCtx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(e.heartbeatEvery)
		defer t.Stop()
		lastOK := e.now()
		for {
			select {
			case <-done:
				return
			case <-opCtx.Done():
				return
			case <-t.C:
			}
			err := beat(opCtx)
			switch {
			case err == nil:
				lastOK = e.now()
			case opCtx.Err() != nil:
			case errors.Is(err, errFinishedByOwner):
				return // this engine recorded the end; the stop is on its way
			case errors.Is(err, catalog.ErrConflict), errors.Is(err, catalog.ErrNotFound):
				cause := fmt.Errorf("%s %s was taken over by another engine (or removed), so this engine stopped working on it: %w", kind, id, err)
				e.log.ErrorContext(ctx, "operation taken over", "kind", kind, "id", id, "error", err.Error())
				cancel(cause)
				return
			case e.now().Sub(lastOK) >= 3*e.heartbeatEvery:
				// Another engine may judge it abandoned soon (at
				// AbandonedAfter on its clock): stop first.
				cause := fmt.Errorf("%s %s: its heartbeat could not be refreshed for %s, so another engine may take it over; this engine stopped working on it: %w", kind, id, e.now().Sub(lastOK).Round(time.Second), err)
				e.log.ErrorContext(ctx, "heartbeat lost", "kind", kind, "id", id, "error", err.Error())
				cancel(cause)
				return
			default:
				e.log.WarnContext(ctx, "refreshing the heartbeat failed; retrying", "kind", kind, "id", id, "error", err.Error())
			}
		}
	}()
	var once sync.Once
	return opCtx, func() {
		once.Do(func() {
			close(done)
			<-finished
			cancel(nil)
		})
	}
}

// errFinishedByOwner: a heartbeat found the operation finished by this
// engine itself (it recorded the outcome just before stopping the beat).
var errFinishedByOwner = errors.New("finished by its owner")

// beatRun and beatRestore refresh the heartbeat of this engine's run or
// restore operation. finished is set by this engine just before it records
// the operation's end: a refused refresh is then that end, not a take-over.
// It is this engine's own memory, not the record's Owner: another engine
// that marked the operation failed without changing its Owner must still
// stop this one.
func (e *Engine) beatRun(id string, finished *atomic.Bool) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := e.store.ClaimRun(ctx, id, e.owner(), e.owner(), time.Time{}, e.now().UTC())
		if errors.Is(err, catalog.ErrConflict) && finished.Load() {
			return errFinishedByOwner
		}
		return err
	}
}

func (e *Engine) beatRestore(id string, finished *atomic.Bool) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := e.store.ClaimRestore(ctx, id, e.owner(), e.owner(), time.Time{}, e.now().UTC())
		if errors.Is(err, catalog.ErrConflict) && finished.Load() {
			return errFinishedByOwner
		}
		return err
	}
}

// takeOverRunningRestore makes this engine the owner of a running restore
// operation it is about to resume: at once if it owns it already, else only
// if it is abandoned (its owner's heartbeat is older than AbandonedAfter, or
// its process on this host is gone). An operation another live engine is
// carrying out is refused, never run twice.
func (e *Engine) takeOverRunningRestore(ctx context.Context, op catalog.RestoreOperation) error {
	if op.Owner == e.owner() {
		return nil
	}
	seen := lastSeen(op.HeartbeatAt, op.StartedAt)
	staleBefore, ok := e.abandoned(op.Owner, seen)
	if _, busy := runningHere.Load(op.ID); !ok && !busy && ownerIsThisProcess(op.Owner) {
		staleBefore, ok = e.now().Add(time.Hour), true // its engine here returned
	}
	if ok {
		_, err := e.store.ClaimRestore(ctx, op.ID, op.Owner, e.owner(), staleBefore, e.now().UTC())
		if err == nil {
			return nil
		}
		if !errors.Is(err, catalog.ErrConflict) {
			return fmt.Errorf("taking over interrupted restore operation %s: %w", op.ID, err)
		}
	}
	return fmt.Errorf("restore operation %s for this request is being carried out by %s (last heartbeat %s): wait for it to finish and apply again; if that engine died, apply again %s after its last heartbeat: %w",
		op.ID, op.Owner, seen.UTC().Format(time.RFC3339), AbandonedAfter, catalog.ErrConflict)
}
