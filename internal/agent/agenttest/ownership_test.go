package agenttest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

func state(t *testing.T, c *Cluster, node, workload string) string {
	t.Helper()
	w, err := c.Client(t, node).Workload(context.Background(), workload)
	if err != nil {
		t.Fatal(err)
	}
	return w.State
}

func writeOwnerRecord(t *testing.T, c *Cluster, rec agent.OwnerRecord) {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	path := agent.OwnerRecordPath(c.SharedVolume, rec.Workload)
	tmp := path + ".test-tmp"
	must(t, os.WriteFile(tmp, data, 0o644))
	must(t, os.Rename(tmp, path))
}

// Two agents asked to start the same workload at the same instant: exactly
// one wins the ownership lease and starts it; the other refuses, naming it.
func TestTwoAgentsRaceToStartOneWins(t *testing.T) {
	c := Start(t, Options{Nodes: 2, Workloads: []string{"web"}, WorkloadEnv: fastWorkload})
	nodes := []string{"node-1", "node-2"}
	for round := range 3 {
		var wg sync.WaitGroup
		var errs [2]error
		start := make(chan struct{})
		for i, n := range nodes {
			cl := c.Client(t, n)
			wg.Go(func() {
				<-start
				_, errs[i] = cl.Action(context.Background(), "web", agent.ActionStart)
			})
		}
		close(start)
		wg.Wait()
		var winner, loser int
		switch {
		case errs[0] == nil && errs[1] != nil:
			winner, loser = 0, 1
		case errs[1] == nil && errs[0] != nil:
			winner, loser = 1, 0
		default:
			t.Fatalf("round %d: start on node-1: %v; on node-2: %v; want exactly one to win", round, errs[0], errs[1])
		}
		if !client.IsLeaseHeld(errs[loser]) || !strings.Contains(errs[loser].Error(), "node "+nodes[winner]) {
			t.Fatalf("round %d: the loser's error %v, want lease_held naming %s", round, errs[loser], nodes[winner])
		}
		if s := state(t, c, nodes[winner], "web"); s != api.StateActive {
			t.Fatalf("round %d: the winner %s reports %s", round, nodes[winner], s)
		}
		if s := state(t, c, nodes[loser], "web"); s != api.StateInactive {
			t.Fatalf("round %d: the loser %s reports %s: two nodes active", round, nodes[loser], s)
		}
		rec := c.WaitOwnerRecord(t, "web", "held by the winner", time.Second, func(r agent.OwnerRecord) bool { return r.Node == nodes[winner] && !r.Released })
		if rec.Generation == 0 {
			t.Fatalf("owner record %+v has no generation", rec)
		}
		c.StopWorkload(t, nodes[winner], "web")
	}
}

// A stop releases the lease, so another node starts at once although the
// lease would otherwise bind it for a minute.
func TestStopReleasesTheLeaseForAnotherNodeAtOnce(t *testing.T) {
	long := agent.OwnershipConfig{RenewInterval: 200 * time.Millisecond, Expiry: time.Minute, ClockSkewMargin: 500 * time.Millisecond}
	c := Start(t, Options{Nodes: 2, Workloads: []string{"web"}, WorkloadEnv: fastWorkload, Ownership: long})
	c.StartWorkload(t, "node-1", "web")
	if _, err := c.Client(t, "node-2").Action(context.Background(), "web", agent.ActionStart); !client.IsLeaseHeld(err) || !strings.Contains(err.Error(), "node node-1") {
		t.Fatalf("start on node-2 while node-1 runs it: %v, want lease_held naming node-1", err)
	}
	c.StopWorkload(t, "node-1", "web")
	if rec := c.WaitOwnerRecord(t, "web", "released", time.Second, func(r agent.OwnerRecord) bool { return true }); !rec.Released || rec.Node != "node-1" {
		t.Fatalf("after stop the record is %+v, want released by node-1", rec)
	}
	began := time.Now()
	c.StartWorkload(t, "node-2", "web")
	if took := time.Since(began); took > 30*time.Second {
		t.Fatalf("start on node-2 after a stop took %v: it waited for expiry", took)
	}
	rec := c.WaitOwnerRecord(t, "web", "held by node-2", time.Second, func(r agent.OwnerRecord) bool { return r.Node == "node-2" && !r.Released })
	w, err := c.Client(t, "node-1").Workload(context.Background(), "web")
	if err != nil || w.Owner == nil || w.Owner.Node != "node-2" || w.Owner.Generation != rec.Generation || w.Owner.HeldHere || w.Owner.ExpiresAt.IsZero() {
		t.Fatalf("node-1 reports owner %+v (%v), want node-2's lease", w.Owner, err)
	}
	if w, _ := c.Client(t, "node-2").Workload(context.Background(), "web"); w.Owner == nil || !w.Owner.HeldHere {
		t.Fatalf("node-2 reports owner %+v, want held here", w.Owner)
	}
}

// A crashed agent renews nothing: its lease binds the other nodes until it
// expires, and then another node may take the workload over (once the
// operator fenced the dead node, here by stopping its workload).
func TestKilledAgentsLeaseExpiresThenAnotherNodeTakesOver(t *testing.T) {
	c := Start(t, Options{Nodes: 2, Workloads: []string{"web"}, WorkloadEnv: fastWorkload})
	c.StartWorkload(t, "node-1", "web")
	first := c.WaitOwnerRecord(t, "web", "held by node-1", time.Second, func(r agent.OwnerRecord) bool { return r.Node == "node-1" })
	c.KillAgent(t, "node-1")
	n2 := c.Client(t, "node-2")
	if _, err := n2.Action(context.Background(), "web", agent.ActionStart); !client.IsLeaseHeld(err) {
		t.Fatalf("start on node-2 right after node-1's agent died: %v, want lease_held", err)
	}
	c.StopWorkloadProcess(t, "node-1", "web")
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := n2.Action(context.Background(), "web", agent.ActionStart)
		if err == nil {
			break
		}
		if !client.IsLeaseHeld(err) || time.Now().After(deadline) {
			t.Fatalf("start on node-2 after node-1's lease expired: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rec := c.WaitOwnerRecord(t, "web", "taken over by node-2", time.Second, func(r agent.OwnerRecord) bool { return r.Node == "node-2" })
	timing := c.OwnershipTiming()
	if rec.Generation <= first.Generation || time.Since(first.HeartbeatAt) < timing.Expiry+timing.ClockSkewMargin {
		t.Fatalf("takeover %+v after %+v: generation must grow, and not before expiry + margin", rec, first)
	}
}

// A node whose lease another node took over stops the workload itself.
func TestNodeThatLosesItsLeaseStopsItsWorkload(t *testing.T) {
	c := Start(t, Options{Nodes: 2, Workloads: []string{"web"}, WorkloadEnv: fastWorkload})
	c.StartWorkload(t, "node-1", "web")
	rec := c.WaitOwnerRecord(t, "web", "held by node-1", time.Second, func(r agent.OwnerRecord) bool { return r.Node == "node-1" })
	pid := waitStatus(t, c.WorkloadStateDir("node-1", "web"), "workload running", func(s testworkload.Status) bool { return s.PID > 0 }).PID
	// node-2's takeover, as it would write it.
	rec.Node, rec.Claim, rec.Generation, rec.HeartbeatAt = "node-2", "takeover", rec.Generation+1, time.Now().UTC()
	writeOwnerRecord(t, c, rec)
	// Watched on the process, not through the agent: a probe would find the
	// conflict by itself, and this test is about the renewal loop.
	deadline := time.Now().Add(10 * time.Second)
	for testworkload.IsRunProcess(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("node-1 still runs the workload (pid %d) after losing its lease", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if log := tail(c.Node("node-1").LogPath, 20000); !strings.Contains(log, "lost its ownership lease") || !strings.Contains(log, "node-2 took over") {
		t.Fatalf("node-1's log does not say why it stopped the workload:\n%s", log)
	}
	if got, _, _ := agent.ReadOwnerRecord(c.SharedVolume, "web"); got.Node != "node-2" || got.Released {
		t.Fatalf("the stopping node rewrote the new holder's record: %+v", got)
	}
}

// An agent restarted under a running workload whose lease expired meanwhile
// adopts it: the lease is renewed again and other nodes are refused.
func TestRestartedAgentAdoptsItsRunningWorkload(t *testing.T) {
	c := Start(t, Options{Nodes: 2, Workloads: []string{"web"}, WorkloadEnv: fastWorkload})
	c.StartWorkload(t, "node-1", "web")
	c.StopAgent(t, "node-1")
	timing := c.OwnershipTiming()
	c.WaitOwnerRecord(t, "web", "expired", 20*time.Second, func(r agent.OwnerRecord) bool { return !r.LiveAt(time.Now(), timing.ClockSkewMargin) })
	restarted := time.Now()
	c.StartAgent(t, "node-1")
	c.WaitOwnerRecord(t, "web", "renewed by node-1 after its restart", 20*time.Second, func(r agent.OwnerRecord) bool {
		return r.Node == "node-1" && r.HeartbeatAt.After(restarted) && r.LiveAt(time.Now(), 0)
	})
	if _, err := c.Client(t, "node-2").Action(context.Background(), "web", agent.ActionStart); !client.IsLeaseHeld(err) {
		t.Fatalf("start on node-2 while node-1 runs the adopted workload: %v, want lease_held", err)
	}
	if s := state(t, c, "node-1", "web"); s != api.StateActive {
		t.Fatalf("the adopted workload is %s on node-1", s)
	}
}

// A workload left running under a dead agent, taken over meanwhile by
// another node, is stopped by the restarted agent — never the new holder's.
func TestRestartedAgentStopsACopyAnotherNodeOwns(t *testing.T) {
	c := Start(t, Options{Nodes: 2, Workloads: []string{"web"}, WorkloadEnv: fastWorkload})
	c.StartWorkload(t, "node-1", "web")
	c.KillAgent(t, "node-1")
	timing := c.OwnershipTiming()
	c.WaitOwnerRecord(t, "web", "expired", 20*time.Second, func(r agent.OwnerRecord) bool { return !r.LiveAt(time.Now(), timing.ClockSkewMargin) })
	c.StartWorkload(t, "node-2", "web") // the takeover a confirmed node death allows
	c.StartAgent(t, "node-1")
	c.WaitWorkloadState(t, "node-1", "web", api.StateInactive, 20*time.Second)
	if s := state(t, c, "node-2", "web"); s != api.StateActive {
		t.Fatalf("the lease holder node-2 reports %s: the legitimate copy was stopped", s)
	}
	if log := tail(c.Node("node-1").LogPath, 20000); !strings.Contains(log, "another node holds its ownership lease: stopping it here") {
		t.Fatalf("node-1's log does not explain the stop:\n%s", log)
	}
}

// F6: a workload stopped after its backup request was accepted, but before
// the copy, is not copied and labelled consistent.
func TestBackupRefusedWhenWorkloadStopsWhileRequestWaits(t *testing.T) {
	backupWhileStopping(t, func(cl *client.Client, repo string) error {
		_, err := cl.Backup(context.Background(), "web", api.BackupRequest{Epoch: 1, Repository: repo, Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"})
		return err
	})
}

// F6 for a node backup (extract_at = "restore"): the same re-check per workload.
func TestNodeBackupRefusedWhenWorkloadStopsWhileRequestWaits(t *testing.T) {
	backupWhileStopping(t, func(cl *client.Client, repo string) error {
		_, err := cl.NodeBackup(context.Background(), api.NodeBackupRequest{Epoch: 1, Repository: repo, Consistency: api.ConsistencyApplication, Workloads: []string{"web"}, Cluster: "c", Group: "g", RunID: "r"})
		return err
	})
}

// backupWhileStopping stops web while backup's request waits between its
// first probe (which sees web active) and the copy, and checks the refusal.
func backupWhileStopping(t *testing.T, backup func(*client.Client, string) error) {
	holdDir := t.TempDir()
	env := map[string]string{testworkload.HoldDirEnv: holdDir}
	for k, v := range fastWorkload {
		env[k] = v
	}
	repo := newRepo(t)
	c := Start(t, Options{Nodes: 1, Workloads: []string{"web"}, WorkloadEnv: env, Repositories: []Repository{repo}})
	c.StartWorkload(t, "node-1", "web")
	cl := c.Client(t, "node-1")
	ctx := context.Background()
	if _, err := cl.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	// The stop is held in its command, holding the workload's lock.
	stopHold, stopHeld := testworkload.HoldFiles(holdDir, "web", "stop")
	must(t, os.WriteFile(stopHold, nil, 0o644))
	stopped := make(chan error, 1)
	go func() { _, err := cl.Action(ctx, "web", agent.ActionStop); stopped <- err }()
	waitFile(t, stopHeld)
	// The backup's first probe is held too; it sees the workload active.
	statusHold, statusHeld := testworkload.HoldFiles(holdDir, "web", "status")
	must(t, os.WriteFile(statusHold, nil, 0o644))
	backedUp := make(chan error, 1)
	go func() { backedUp <- backup(cl, repo.Name) }()
	waitFile(t, statusHeld)
	// The held file is created before the probe writes its pid into it.
	deadline := time.Now().Add(20 * time.Second)
	statusPID := 0
	for statusPID <= 0 {
		data, err := os.ReadFile(statusHeld)
		must(t, err)
		statusPID, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		if statusPID <= 0 && time.Now().After(deadline) {
			t.Fatalf("the backup's status probe wrote no pid into %s", statusHeld)
		}
		if statusPID <= 0 {
			time.Sleep(10 * time.Millisecond) // polling a file: no event to wait on
		}
	}
	must(t, os.Remove(statusHold))
	// Once that probe finished (active), let the stop go on.
	for syscall.Kill(statusPID, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the backup's status probe (pid %d) did not finish", statusPID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	must(t, os.Remove(stopHold))
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	err := <-backedUp
	if !client.IsNotActive(err) || !strings.Contains(err.Error(), "no copy was taken") {
		t.Fatalf("backup of a workload stopped while the request waited: %v, want not_active and no copy", err)
	}
}

// F6: a lease taken over while the backup is frozen is noticed right
// before the copy.
func TestBackupRefusedWhenLeaseIsTakenOverBeforeTheCopy(t *testing.T) {
	holdDir := t.TempDir()
	env := map[string]string{testworkload.HoldDirEnv: holdDir}
	for k, v := range fastWorkload {
		env[k] = v
	}
	repo := newRepo(t)
	c := Start(t, Options{Nodes: 2, Workloads: []string{"web"}, WorkloadEnv: env, Repositories: []Repository{repo}})
	c.StartWorkload(t, "node-1", "web")
	cl := c.Client(t, "node-1")
	ctx := context.Background()
	if _, err := cl.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	hold, held := testworkload.HoldFiles(holdDir, "web", "quiesce")
	must(t, os.WriteFile(hold, nil, 0o644))
	backedUp := make(chan error, 1)
	go func() {
		_, err := cl.Backup(ctx, "web", api.BackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"})
		backedUp <- err
	}()
	waitFile(t, held)
	rec := c.WaitOwnerRecord(t, "web", "held by node-1", time.Second, func(r agent.OwnerRecord) bool { return r.Node == "node-1" })
	rec.Node, rec.Claim, rec.Generation, rec.HeartbeatAt = "node-2", "takeover", rec.Generation+1, time.Now().UTC()
	writeOwnerRecord(t, c, rec)
	must(t, os.Remove(hold))
	err := <-backedUp
	if !client.IsNotActive(err) || !strings.Contains(err.Error(), "node-2 took over") {
		t.Fatalf("backup after a takeover: %v, want not_active naming node-2", err)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", filepath.Base(path))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A copy started by hand, outside clusterguard, while another node holds
// the lease is reported as a conflict and left running: the agent cannot
// tell which copy the operator meant, and it never stops the lease holder.
func TestCopyStartedByHandIsReportedNotStopped(t *testing.T) {
	c := Start(t, Options{Nodes: 2, Workloads: []string{"web"}, WorkloadEnv: fastWorkload})
	// node-1 ran it under an older lease, but stopped it cleanly since.
	c.StartWorkload(t, "node-1", "web")
	c.MoveWorkload(t, "web", "node-1", "node-2")
	c.StartWorkloadProcess(t, "node-1", "web")
	w, err := c.Client(t, "node-1").Workload(context.Background(), "web")
	if err != nil || w.State != api.StateActive || !strings.Contains(w.OwnerConflict, "node node-2 holds its ownership lease") || w.Owner == nil || w.Owner.Node != "node-2" {
		t.Fatalf("node-1 reports %+v (%v), want active with a conflict naming node-2's lease", w, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(tail(c.Node("node-1").LogPath, 20000), "apparently started outside clusterguard") {
		if time.Now().After(deadline) {
			t.Fatalf("node-1 did not decide about the conflict; its log:\n%s", tail(c.Node("node-1").LogPath, 5000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range []string{"node-1", "node-2"} {
		if s := state(t, c, n, "web"); s != api.StateActive {
			t.Fatalf("%s reports %s: a copy was stopped", n, s)
		}
	}
}

// An in-place restore on a node is refused while another node holds the
// workload's lease: it runs there, on the data the restore would replace.
func TestInPlaceRestoreRefusedWhileAnotherNodeHoldsTheLease(t *testing.T) {
	repo := newRepo(t)
	c := Start(t, Options{Nodes: 2, Workloads: []string{"web"}, WorkloadEnv: fastWorkload, Repositories: []Repository{repo}})
	c.StartWorkload(t, "node-1", "web")
	ctx := context.Background()
	n1, n2 := c.Client(t, "node-1"), c.Client(t, "node-2")
	if _, err := n1.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	snap, err := n1.Backup(ctx, "web", api.BackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n2.ClaimCoordinator(ctx, api.CoordinatorClaim{Cluster: "c", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	_, err = n2.Restore(ctx, "web", api.RestoreRequest{Epoch: 2, OperationID: "op", Repository: repo.Name, SnapshotID: snap.SnapshotID, Verify: api.VerifyNone})
	if !client.IsActive(err) || !strings.Contains(err.Error(), "node node-1 holds its ownership lease") {
		t.Fatalf("in-place restore on node-2 while node-1 runs the workload: %v, want active naming node-1's lease", err)
	}
}
