package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// MasterEngine names the engine itself acting as master (E1).
const MasterEngine = "engine"

// RunHooks let tests act at precise points of a run (for example move a
// workload to a node already visited). Nil hooks are skipped.
type RunHooks struct {
	BeforeNode func(ctx context.Context, node string, visited []string)
	AfterNode  func(ctx context.Context, node string)
}

// RunOptions configure one federated backup run.
type RunOptions struct {
	Group string
	// RunID is generated when empty.
	RunID string
	Tags  []string
	// Only, when not nil, narrows the run to these of the group's
	// workloads (a retry of an interrupted run backs up only what it had
	// not captured).
	Only []string
	// VerifyAttempts bounds how often missing workloads are looked for
	// again (E8); default 3. VerifyBackoff is waited between attempts
	// through the engine's Wait (injectable), default 2s.
	VerifyAttempts int
	VerifyBackoff  time.Duration
	// StunTimeout bounds quiesce/pause → release on the agent; default 2m.
	StunTimeout time.Duration
	// LeaseTTL bounds a coordinator lease between renewals; default the
	// engine's (DefaultLeaseTTL).
	LeaseTTL time.Duration
	Hooks    RunHooks
}

// MissingWorkload is an expected workload the run did not capture.
type MissingWorkload struct {
	Name   string
	Reason string
}

// RunReport is the outcome of a run.
type RunReport struct {
	Run     catalog.Run
	Steps   []catalog.Step
	Missing []MissingWorkload
}

// RunBackup performs one federated backup of a protection group (E1-E10):
// resolve the expected workloads, choose the master, order the nodes, make
// each node in turn the fenced coordinator and back up the workloads active
// on it, then verify that nothing was missed and catch up where workloads
// moved. The run and every step are recorded as they happen.
func (e *Engine) RunBackup(ctx context.Context, o RunOptions) (RunReport, error) {
	o.setDefaults()
	g, err := e.store.GetGroup(ctx, o.Group)
	if err != nil {
		return RunReport{}, fmt.Errorf("protection group %q: %w", o.Group, err)
	}
	repo, err := e.store.GetRepository(ctx, g.Repository)
	if err != nil {
		return RunReport{}, fmt.Errorf("protection group %q: repository %q: %w", g.Name, g.Repository, err)
	}
	status, err := e.ClusterStatus(ctx, g.Cluster)
	if err != nil {
		return RunReport{}, fmt.Errorf("protection group %q: cluster %q: %w", g.Name, g.Cluster, err)
	}
	repoID, err := e.checkRunRepository(ctx, status, repo)
	if err != nil {
		return RunReport{}, fmt.Errorf("protection group %q: %w", g.Name, err)
	}
	if o.RunID == "" {
		o.RunID = newRunID(e.now())
	}
	r := &runner{e: e, o: o, g: g, repo: repo, repoID: repoID, cluster: status.Cluster}
	return r.run(ctx, status)
}

func (o *RunOptions) setDefaults() {
	if o.VerifyAttempts <= 0 {
		o.VerifyAttempts = 3
	}
	if o.VerifyBackoff <= 0 {
		o.VerifyBackoff = 2 * time.Second
	}
	if o.StunTimeout <= 0 {
		o.StunTimeout = 2 * time.Minute
	}
}

func newRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "run-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

type runner struct {
	e       *Engine
	o       RunOptions
	g       catalog.ProtectionGroup
	repo    catalog.Repository
	cluster catalog.Cluster
	repoID  string // learned once per run; sent with and checked in every result

	run_     catalog.Run
	finished atomic.Bool // set just before the run's end is recorded (see beatRun)
	steps    []catalog.Step
	captured map[string]api.BackupResult
	lastErr  map[string]string // workload -> why its last attempt failed
	// conflicted workloads were active on several nodes when the run began.
	conflicted map[string]bool
	// placement is where each workload was active when the run began.
	placement map[string]string
}

func (r *runner) run(ctx context.Context, status ClusterStatus) (RunReport, error) {
	e := r.e
	d := mergeDigest(status)
	expected := selectWorkloads(r.g, d)
	if r.o.Only != nil {
		expected = slices.DeleteFunc(expected, func(w string) bool { return !slices.Contains(r.o.Only, w) })
	}
	r.captured = map[string]api.BackupResult{}
	r.lastErr = map[string]string{}
	r.conflicted = map[string]bool{}
	r.placement = map[string]string{}
	for _, w := range d.Workloads {
		if w.State == api.StateActive {
			r.placement[w.Name] = w.Node
		}
	}
	r.run_ = catalog.Run{
		ID: r.o.RunID, Group: r.g.Name, Cluster: r.g.Cluster, Expected: expected,
		Status: catalog.RunRunning, StartedAt: e.now().UTC(), NodeOrder: []string{},
		Owner: e.owner(), HeartbeatAt: e.now().UTC(),
	}
	var healthy []NodeStatus
	for _, n := range status.Nodes {
		if n.Err == nil {
			healthy = append(healthy, n)
		} else {
			r.lastErr["@"+n.Name] = n.Err.Error()
		}
	}
	master, merr := chooseMaster(r.cluster.MasterPolicy, r.cluster.MasterNode, status.Nodes, e.intN)
	if merr != nil {
		// The engine can always act as master (E1); say why it had to.
		e.log.WarnContext(ctx, "engine acts as master", "cluster", r.g.Cluster, "reason", merr.Error())
		master = MasterEngine
	}
	r.run_.Master = master
	order, err := OrderNodes(OrderInput{Policy: r.g.NodeOrder, Master: master, Nodes: healthy, Selected: expected, Critical: r.g.CriticalWorkloads}, e.intN)
	if err != nil {
		return RunReport{}, err
	}
	r.run_.NodeOrder = order
	if err := e.store.CreateRun(ctx, r.run_); err != nil {
		return RunReport{}, fmt.Errorf("recording run %s: %w", r.run_.ID, err)
	}
	// The heartbeat tells a long run from one whose engine died
	// (RecoverAbandoned); a run taken over as abandoned stops here.
	ctx, stopBeat := e.keepAlive(ctx, "backup run", r.run_.ID, e.beatRun(r.run_.ID, &r.finished))
	defer stopBeat()
	e.log.InfoContext(ctx, "backup run started", "run", r.run_.ID, "group", r.g.Name, "master", master, "order", strings.Join(order, ","), "expected", len(expected))

	if len(expected) == 0 {
		return r.finish(ctx, fmt.Errorf("no workload of cluster %q matches the selection of group %q", r.g.Cluster, r.g.Name))
	}
	want := map[string]bool{}
	for _, w := range expected {
		want[w] = true
	}
	// A workload active on two nodes has two writers; neither copy can be
	// trusted, so it is reported, not backed up (E12's invariant is broken).
	for _, w := range d.Workloads {
		if w.State == StateConflict && want[w.Name] {
			delete(want, w.Name)
			r.conflicted[w.Name] = true
			r.lastErr[w.Name] = fmt.Sprintf("active on several nodes at once (%s); not backed up until only one runs it", strings.Join(w.Nodes, ", "))
		}
	}

	// Visit nodes in order; each backs up only what is active on it (E2).
	var visited []string
	for _, node := range order {
		if err := ctx.Err(); err != nil {
			return r.finish(ctx, fmt.Errorf("run cancelled: %w", err))
		}
		if r.o.Hooks.BeforeNode != nil {
			r.o.Hooks.BeforeNode(ctx, node, slices.Clone(visited))
		}
		r.backupOnNode(ctx, node, "node", want)
		visited = append(visited, node)
		if r.o.Hooks.AfterNode != nil {
			r.o.Hooks.AfterNode(ctx, node)
		}
	}

	// Verification (E8): find missed workloads where they run now.
	for attempt := 1; attempt <= r.o.VerifyAttempts; attempt++ {
		missing := r.missing(expected)
		if len(missing) == 0 {
			break
		}
		e.log.InfoContext(ctx, "verification: workloads missed", "run", r.run_.ID, "attempt", attempt, "missing", strings.Join(missing, ","))
		st, err := e.ClusterStatus(ctx, r.g.Cluster)
		if err != nil {
			return r.finish(ctx, fmt.Errorf("verification could not read the cluster: %w", err))
		}
		located := mergeDigest(st)
		byNode := map[string]map[string]bool{}
		for _, w := range located.Workloads {
			if !slices.Contains(missing, w.Name) {
				continue
			}
			switch {
			case w.State == StateConflict:
				r.lastErr[w.Name] = fmt.Sprintf("active on several nodes at once (%s); not backed up until only one runs it", strings.Join(w.Nodes, ", "))
			case w.State == api.StateActive:
				if byNode[w.Node] == nil {
					byNode[w.Node] = map[string]bool{}
				}
				byNode[w.Node][w.Name] = true
			default:
				r.lastErr[w.Name] = r.notLocated(w, located)
			}
		}
		for _, m := range missing {
			if !slices.ContainsFunc(located.Workloads, func(w DigestEntry) bool { return w.Name == m }) {
				r.lastErr[m] = "no agent reports this workload; check the name and the agents' workload definitions"
			}
		}
		for _, node := range sortedKeys(byNode) {
			r.backupOnNode(ctx, node, "verify", byNode[node])
		}
		if len(r.missing(expected)) == 0 {
			break
		}
		if attempt < r.o.VerifyAttempts {
			if err := e.wait(ctx, r.o.VerifyBackoff); err != nil {
				return r.finish(ctx, fmt.Errorf("run cancelled during verification: %w", err))
			}
		}
	}
	return r.finish(ctx, nil)
}

// notLocated explains why a workload was not found active anywhere.
func (r *runner) notLocated(w DigestEntry, d Digest) string {
	if len(d.Unreachable) > 0 {
		var nodes []string
		for _, n := range d.Unreachable {
			nodes = append(nodes, n.Node)
		}
		prev := r.lastErr[w.Name]
		msg := fmt.Sprintf("not active on any reachable node (unreachable: %s)", strings.Join(nodes, ", "))
		if prev != "" && !strings.Contains(prev, "not active on any reachable node") {
			msg += "; earlier: " + prev
		}
		return msg
	}
	return fmt.Sprintf("not active on any node (state %s); start it, or exclude it from the group", w.State)
}

func (r *runner) missing(expected []string) []string {
	var out []string
	for _, w := range expected {
		if _, ok := r.captured[w]; !ok {
			out = append(out, w)
		}
	}
	return out
}

// backupOnNode makes node the coordinator and backs up the workloads in
// want that are active on it and not yet captured.
func (r *runner) backupOnNode(ctx context.Context, node, phase string, want map[string]bool) {
	e := r.e
	ep := ""
	for _, n := range r.cluster.Nodes {
		if n.Name == node {
			ep = n.Endpoint
		}
	}
	cl, err := e.dial(node, ep)
	if err != nil {
		r.lastErr["@"+node] = err.Error()
		return
	}
	// The list comes from the probe that started the run (node phase) or
	// from verification's fresh probe: the agent checks again that each
	// workload is active before freezing it (409 not_active), and anything
	// that moved in the meantime is found by verification (E8). Probing
	// every workload again before every turn would run one driver status
	// command per workload per node, which is most of a run's overhead.
	var todo []string
	for w := range want {
		if _, done := r.captured[w]; !done && (phase != "node" || r.placement[w] == node) {
			todo = append(todo, w)
		}
	}
	sort.Strings(todo)
	if len(todo) == 0 {
		return
	}
	// The lease is renewed while the node works and lost renewal aborts
	// its requests (held.ctx).
	held, err := e.coordinate(ctx, r.g.Cluster, node, cl, r.o.LeaseTTL)
	if err != nil {
		for _, w := range todo {
			r.lastErr[w] = err.Error()
		}
		return
	}
	defer held.stop()
	defer func() {
		// Say why the node's remaining workloads failed when the lease went.
		if lost := leaseLost(held); lost != nil {
			for _, w := range todo {
				if _, ok := r.captured[w]; !ok {
					r.lastErr[w] = lost.Error()
				}
			}
		}
	}()
	ctx, lease := held.ctx, held.Lease
	e.log.InfoContext(ctx, "coordinating node", "run", r.run_.ID, "node", node, "epoch", lease.Epoch, "workloads", strings.Join(todo, ","))
	if r.g.ExtractAt == ExtractAtRestore {
		r.backupNodeView(ctx, cl, node, phase, lease.Epoch, todo)
		return
	}
	for _, w := range todo {
		r.backupOne(ctx, cl, node, phase, lease.Epoch, w)
	}
}

// backupNodeView stores the node's whole shared-volume view once, with its
// workloads frozen together (E6, extract_at = "restore"); each workload's
// recovery point is that snapshot, indexed as "<snapshot>@<workload>".
func (r *runner) backupNodeView(ctx context.Context, cl AgentClient, node, phase string, epoch int64, todo []string) {
	e := r.e
	started := e.now().UTC()
	res, err := cl.NodeBackup(ctx, api.NodeBackupRequest{
		Epoch: epoch, Repository: r.repo.Name, RepositoryID: r.repoID, Consistency: r.g.Consistency,
		StunTimeoutMS: r.o.StunTimeout.Milliseconds(), Workloads: todo, Cluster: r.g.Cluster, Group: r.g.Name,
		RunID: r.run_.ID, Tags: r.o.Tags,
	})
	if err == nil {
		err = checkResultRepositoryID(node, r.repo.Name, res.RepositoryID, r.repoID)
	}
	for _, w := range todo {
		step := catalog.Step{RunID: r.run_.ID, Seq: len(r.steps) + 1, Phase: phase, Node: node, Epoch: epoch, Workload: w,
			StartedAt: started, FinishedAt: e.now().UTC()}
		if err != nil {
			step.Outcome, step.Error = catalog.StepFailed, err.Error()
			r.lastErr[w] = fmt.Sprintf("node backup on %s failed: %v", node, err)
		} else {
			point := res.SnapshotID + "@" + w
			step.Outcome, step.SnapshotID, step.Bytes, step.StunMS = catalog.StepSucceeded, point, res.TotalBytes, res.StunMS[w]
			r.captured[w] = api.BackupResult{Workload: w, Node: node, SnapshotID: point, TotalBytes: res.TotalBytes, StunMS: res.StunMS[w]}
			delete(r.lastErr, w)
			if perr := e.store.PutRecoveryPoint(context.WithoutCancel(ctx), catalog.RecoveryPoint{ID: point, Repository: r.repo.Name, Cluster: r.g.Cluster,
				Group: r.g.Name, Workload: w, Node: node, RunID: r.run_.ID, Consistency: r.g.Consistency, Size: res.TotalBytes, CreatedAt: res.StartedAt.UTC()}); perr != nil {
				e.log.ErrorContext(ctx, "indexing recovery point", "snapshot", point, "error", perr.Error())
			}
		}
		r.steps = append(r.steps, step)
		if aerr := e.store.AddStep(context.WithoutCancel(ctx), step); aerr != nil {
			e.log.ErrorContext(ctx, "recording step", "run", r.run_.ID, "seq", step.Seq, "error", aerr.Error())
		}
	}
}

// SnapshotOf returns the repository snapshot of a recovery point id: node
// views are indexed per workload as "<snapshot>@<workload>".
func SnapshotOf(recoveryPoint string) string {
	id, _, _ := strings.Cut(recoveryPoint, "@")
	return id
}

func (r *runner) backupOne(ctx context.Context, cl AgentClient, node, phase string, epoch int64, w string) {
	e := r.e
	step := catalog.Step{
		RunID: r.run_.ID, Seq: len(r.steps) + 1, Phase: phase, Node: node, Epoch: epoch, Workload: w,
		StartedAt: e.now().UTC(),
	}
	res, err := cl.Backup(ctx, w, api.BackupRequest{
		Epoch:         epoch,
		Repository:    r.repo.Name,
		RepositoryID:  r.repoID,
		Consistency:   r.g.Consistency,
		StunTimeoutMS: r.o.StunTimeout.Milliseconds(),
		Cluster:       r.g.Cluster,
		Group:         r.g.Name,
		RunID:         r.run_.ID,
		Tags:          r.o.Tags,
	})
	if err == nil {
		err = checkResultRepositoryID(node, r.repo.Name, res.RepositoryID, r.repoID)
	}
	step.FinishedAt = e.now().UTC()
	if lost := lostCause(ctx); err != nil && lost != nil && !strings.Contains(err.Error(), lost.Error()) {
		err = fmt.Errorf("%w (%w)", lost, err)
	}
	if err != nil {
		step.Outcome, step.Error = catalog.StepFailed, err.Error()
		switch {
		case client.IsNotActive(err):
			r.lastErr[w] = fmt.Sprintf("left node %s before its backup started (migrated mid-run)", node)
		default:
			r.lastErr[w] = fmt.Sprintf("backup on node %s failed: %v", node, err)
		}
		e.log.WarnContext(ctx, "workload backup failed", "run", r.run_.ID, "node", node, "workload", w, "error", err.Error())
	} else {
		step.Outcome, step.SnapshotID = catalog.StepSucceeded, res.SnapshotID
		step.Bytes, step.BytesAdded, step.StunMS = res.TotalBytes, res.BytesAdded, res.StunMS
		step.Incremental, step.BytesRead, step.Checkpoint = res.Incremental, res.ViewBytesRead, res.Checkpoint
		r.captured[w] = res
		delete(r.lastErr, w)
		if err := e.store.PutRecoveryPoint(context.WithoutCancel(ctx), catalog.RecoveryPoint{
			ID: res.SnapshotID, Repository: r.repo.Name, Cluster: r.g.Cluster, Group: r.g.Name, Workload: w,
			Node: node, RunID: r.run_.ID, Consistency: res.Consistency, Size: res.TotalBytes, CreatedAt: res.StartedAt.UTC(),
		}); err != nil {
			e.log.ErrorContext(ctx, "indexing recovery point", "snapshot", res.SnapshotID, "error", err.Error())
		}
		e.log.InfoContext(ctx, "workload backed up", "run", r.run_.ID, "node", node, "workload", w, "snapshot", res.SnapshotID, "bytes", res.TotalBytes, "stun_ms", res.StunMS)
	}
	r.steps = append(r.steps, step)
	if err := e.store.AddStep(context.WithoutCancel(ctx), step); err != nil {
		e.log.ErrorContext(ctx, "recording step", "run", r.run_.ID, "seq", step.Seq, "error", err.Error())
	}
}

// finish records the outcome. fatal, when set, fails the run as a whole.
func (r *runner) finish(ctx context.Context, fatal error) (RunReport, error) {
	e := r.e
	rep := RunReport{Steps: r.steps}
	for _, w := range r.missing(r.run_.Expected) {
		reason := r.lastErr[w]
		if reason == "" {
			reason = "not found active on any node during the run"
		}
		rep.Missing = append(rep.Missing, MissingWorkload{Name: w, Reason: reason})
		// A skipped step carries the reason, so the record alone explains
		// every expected workload.
		step := catalog.Step{RunID: r.run_.ID, Seq: len(r.steps) + 1, Phase: "verify", Workload: w,
			Outcome: catalog.StepSkipped, Error: reason, StartedAt: e.now().UTC(), FinishedAt: e.now().UTC()}
		r.steps = append(r.steps, step)
		if err := e.store.AddStep(context.WithoutCancel(ctx), step); err != nil {
			e.log.ErrorContext(ctx, "recording step", "run", r.run_.ID, "seq", step.Seq, "error", err.Error())
		}
	}
	rep.Steps = r.steps
	switch {
	case fatal != nil:
		r.run_.Status, r.run_.Error = catalog.RunFailed, fatal.Error()
	case len(rep.Missing) == 0:
		r.run_.Status = catalog.RunSucceeded
	case len(r.captured) > 0:
		r.run_.Status = catalog.RunPartial
	default:
		r.run_.Status = catalog.RunFailed
	}
	if r.run_.Error == "" && len(rep.Missing) > 0 {
		var parts []string
		for _, m := range rep.Missing {
			parts = append(parts, m.Name+": "+m.Reason)
		}
		r.run_.Error = fmt.Sprintf("%d of %d workloads not backed up: %s", len(rep.Missing), len(r.run_.Expected), strings.Join(parts, "; "))
	}
	r.run_.FinishedAt = e.now().UTC()
	r.finished.Store(true)
	if err := e.store.UpdateRun(context.WithoutCancel(ctx), r.run_); err != nil {
		return rep, fmt.Errorf("recording the end of run %s: %w", r.run_.ID, err)
	}
	rep.Run = r.run_
	e.log.InfoContext(ctx, "backup run finished", "run", r.run_.ID, "status", r.run_.Status, "captured", len(r.captured), "missing", len(rep.Missing))
	return rep, nil
}

// GetRun returns a run and its steps.
func (e *Engine) GetRun(ctx context.Context, id string) (catalog.Run, []catalog.Step, error) {
	run, err := e.store.GetRun(ctx, id)
	if err != nil {
		return catalog.Run{}, nil, err
	}
	steps, err := e.store.Steps(ctx, id)
	return run, steps, err
}

// ForgetRun deletes a run's record; its recovery points stay.
func (e *Engine) ForgetRun(ctx context.Context, id string) error {
	return e.store.DeleteRun(ctx, id)
}
