package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// UnreachableNodesError refuses to act on a workload that may be running on
// a node nobody could ask: unreachable means unknown, never inactive.
type UnreachableNodesError struct {
	Workload string
	Nodes    []*NodeError
	// Live lists assumed-down nodes whose ownership lease on the workload
	// is still being renewed (so they are not down), with its expiry.
	Live map[string]time.Time
	// Unverified lists assumed-down nodes whose lease no answering agent
	// could report (none of them defines the workload), so its expiry
	// cannot be checked.
	Unverified []string
}

func (e *UnreachableNodesError) Error() string {
	var names, why []string
	for _, n := range e.Nodes {
		names = append(names, n.Node)
		why = append(why, n.Error())
	}
	quoted := `"` + strings.Join(names, `", "`) + `"`
	msg := fmt.Sprintf("workload %q may be running on %s, which could not be asked (%s); restoring or starting it now could make two nodes write its data. "+
		"Bring the agent back and plan again, or, only if the node is really down (powered off or fenced), confirm it with assume_down = [%s] on the restore job",
		e.Workload, strings.Join(names, ", "), strings.Join(why, "; "), quoted)
	for _, n := range sortedKeys(e.Live) {
		msg += fmt.Sprintf("; node %s is listed in assume_down, but its ownership lease on %q binds until %s (its agent renewed it recently, so the node may well be alive): assume_down for it is honoured only after that time",
			n, e.Workload, e.Live[n].UTC().Format(time.RFC3339))
	}
	for _, n := range e.Unverified {
		msg += fmt.Sprintf("; node %s is listed in assume_down, but no node that answers defines %q, so nothing can read its ownership lease on the shared volume to check that it expired: bring back an agent that defines the workload",
			n, e.Workload)
	}
	return msg
}

func (e *UnreachableNodesError) Unwrap() []error {
	out := make([]error, len(e.Nodes))
	for i, n := range e.Nodes {
		out[i] = n
	}
	return out
}

// ownerLeaseSkewMargin is added to an ownership lease's expiry before the
// engine treats it as gone: the holder's clock may run behind ours by up to
// the agents' default clock-skew margin.
const ownerLeaseSkewMargin = 2 * time.Second

// liveOwnerLease reports whether node still holds the on-volume ownership
// lease of workload, and until when. The owner record lives on the shared
// volume, so any node that answers reports it, also for a node that cannot
// be asked. A released lease binds no one; an expired one binds no one once
// the skew margin has passed too.
func liveOwnerLease(status ClusterStatus, workload, node string, now time.Time) (time.Time, bool) {
	for _, n := range status.Nodes {
		if !n.Reachable {
			continue
		}
		for _, w := range n.Workloads {
			o := w.Owner
			if w.Name != workload || o == nil || o.Node != node || o.Released {
				continue
			}
			until := o.ExpiresAt.Add(ownerLeaseSkewMargin)
			if now.Before(until) {
				return until, true
			}
		}
	}
	return time.Time{}, false
}

// reportedByAnswering reports whether a node that answered defines
// workload, so the owner record on the volume was read for it.
func reportedByAnswering(status ClusterStatus, workload string) bool {
	for _, n := range status.Nodes {
		if !n.Reachable {
			continue
		}
		for _, w := range n.Workloads {
			if w.Name == workload {
				return true
			}
		}
	}
	return false
}

// locate finds where workload runs now according to status (d is its
// merged digest, computed once by the caller), and which
// nodes that may run it could not be asked. An unreachable node named in
// assumeDown counts as down once its ownership lease on the workload has
// expired (or it has none); a node that answers is never assumed down.
func locate(status ClusterStatus, d Digest, workload string, assumeDown []string, now time.Time) (DigestEntry, bool, *UnreachableNodesError) {
	var entry DigestEntry
	known := false
	for _, w := range d.Workloads {
		if w.Name == workload {
			entry, known = w, true
		}
	}
	u := &UnreachableNodesError{Workload: workload}
	for _, n := range d.Unreachable {
		if slices.Contains(assumeDown, n.Node) {
			if !reportedByAnswering(status, workload) {
				u.Unverified = append(u.Unverified, n.Node)
				u.Nodes = append(u.Nodes, n)
				continue
			}
			until, live := liveOwnerLease(status, workload, n.Node, now)
			if !live {
				continue
			}
			if u.Live == nil {
				u.Live = map[string]time.Time{}
			}
			u.Live[n.Node] = until
		}
		u.Nodes = append(u.Nodes, n)
	}
	if len(u.Nodes) == 0 {
		return entry, known, nil
	}
	return entry, known, u
}

// recheckStep probes the cluster right before a restore step stops,
// writes or starts the workload, and refuses to go on if the workload is
// not where the step expects it: expectOn is the node it must be active
// on, "" for nowhere. A resumed operation thus never replays its recorded
// plan against a cluster that changed since. A workload expected running
// but found stopped everywhere (every node answering) passes: stopping it
// is what the step was about to do, and an apply killed while the agent
// was stopping it leaves exactly that.
func (e *Engine) recheckStep(ctx context.Context, s RestoreSpec, p RestoreStepPlan, expectOn, before string) error {
	status, err := e.ClusterStatus(ctx, s.Cluster)
	if err != nil {
		return fmt.Errorf("probing where %s runs before %s it: %w", p.Workload, before, err)
	}
	entry, known, unreachable := locate(status, mergeDigest(status), p.Workload, s.AssumeDown, e.now())
	switch {
	case unreachable != nil:
		return unreachable
	case !known:
		return &PlanChangedError{Changes: []string{fmt.Sprintf("no agent of cluster %q defines %s any more", s.Cluster, p.Workload)}}
	case entry.State == StateConflict:
		return &PlanChangedError{Changes: []string{fmt.Sprintf("%s is now active on several nodes (%s); stop all but one", p.Workload, strings.Join(entry.Nodes, ", "))}}
	case entry.Node != expectOn && (entry.Node != "" || before != "stopping"):
		where := "is not active on any node"
		if entry.Node != "" {
			where = "now runs on " + entry.Node
		}
		want := "expected it stopped"
		if expectOn != "" {
			want = "expected it running on " + expectOn
		}
		return &PlanChangedError{Changes: []string{fmt.Sprintf("right before %s it, %s %s (the restore %s)", before, p.Workload, where, want)}}
	}
	return nil
}

// checkResumable is what a plan shows for an unfinished operation with the
// same request: it fails, saying what changed, if a step not yet done
// would no longer find its workload where the recorded plan expects it.
func (e *Engine) checkResumable(ctx context.Context, s RestoreSpec, op catalog.RestoreOperation, plan RestorePlan) error {
	steps, err := e.store.RestoreSteps(ctx, op.ID)
	if err != nil {
		return err
	}
	done := map[string]catalog.RestoreStep{}
	for _, st := range steps {
		done[st.Workload] = st
	}
	var changes []string
	for i, p := range plan.Steps {
		st := done[p.Workload]
		if st.Outcome == catalog.StepSucceeded || (i < len(s.Workloads) && s.Workloads[i].DestinationPath != "") {
			continue // done, or files restored elsewhere: the workload is not touched
		}
		expect, before := p.DeactivateOn, "stopping"
		if st.DeactivatedOn != "" || expect == "" {
			expect, before = "", "writing" // nothing to stop, or this operation stopped it already
		}
		err := e.recheckStep(ctx, s, p, expect, before)
		var pc *PlanChangedError
		if errors.As(err, &pc) {
			changes = append(changes, pc.Changes...)
		} else if err != nil {
			return err
		}
	}
	if len(changes) > 0 {
		changes = append(changes, fmt.Sprintf("restore operation %s, interrupted earlier, recorded this plan and would resume it: put the workloads back where it expects them and apply again, or change triggers to plan a new restore", op.ID))
		return &PlanChangedError{Changes: changes}
	}
	return nil
}

// RestoreStepError is a failed restore step, with what was done about the
// workload it had stopped.
type RestoreStepError struct {
	Workload     string
	Err          error
	StoppedOn    string // node where the step had stopped it; "" if it stopped nothing
	DataRestored bool   // the restored data was already swapped in
	Restarted    bool   // started again on StoppedOn
	RestartErr   error  // why it could not be started again
}

func (e *RestoreStepError) Error() string {
	msg := fmt.Sprintf("restore of %s: %v", e.Workload, e.Err)
	data := "its previous data (a failed restore swaps nothing in)"
	if e.DataRestored {
		data = "the restored data"
	}
	switch {
	case e.StoppedOn == "":
		msg += fmt.Sprintf("; %s was not stopped or started by this restore", e.Workload)
	case e.Restarted:
		msg += fmt.Sprintf("; %s had been stopped on %s for the restore and was started again there, with %s", e.Workload, e.StoppedOn, data)
	default:
		msg += fmt.Sprintf("; %s had been stopped on %s for the restore and was NOT started again there (%v); its data there is %s. Make sure it runs on exactly one node: start it where it should run, or fix the cause and apply again (the job resumes, and restarts what it stopped)",
			e.Workload, e.StoppedOn, e.RestartErr, data)
	}
	return msg
}

func (e *RestoreStepError) Unwrap() error { return e.Err }

// restartWhereItRan starts the workload again on the node a failed step
// stopped it on, unless it now runs elsewhere or a node that may run it
// cannot be asked: a restart must never make a second writer.
func (e *Engine) restartWhereItRan(ctx context.Context, s RestoreSpec, cluster catalog.Cluster, p RestoreStepPlan, node string) error {
	if err := e.recheckStep(ctx, s, p, "", "starting"); err != nil {
		return fmt.Errorf("not restarted, because %w", err)
	}
	endpoint := ""
	for _, n := range cluster.Nodes {
		if n.Name == node {
			endpoint = n.Endpoint
		}
	}
	cl, err := e.dial(node, endpoint)
	if err != nil {
		return err
	}
	if _, err := cl.Action(ctx, p.Workload, "start"); err != nil {
		return fmt.Errorf("starting it on %s failed: %w", node, err)
	}
	e.log.InfoContext(ctx, "workload started again where it ran after a failed restore", "workload", p.Workload, "node", node)
	return nil
}
