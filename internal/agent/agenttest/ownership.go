package agenttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
)

// TestOwnership is the lease timing of test agents: starts wait 300 ms
// instead of seconds. A holder that cannot renew stops its workload 1.7 s
// after its last renewal (expiry − margin − stop deadline), within the
// 800 ms stop deadline: eight renewals of slack on a loaded machine, so no
// test workload is stopped by a late renewal.
var TestOwnership = agent.OwnershipConfig{RenewInterval: 200 * time.Millisecond, Expiry: 3 * time.Second, ClockSkewMargin: 500 * time.Millisecond,
	StopDeadline: 800 * time.Millisecond}

// OwnershipTiming is the lease timing the cluster's agents use.
func (c *Cluster) OwnershipTiming() agent.OwnershipConfig {
	if c.opts.Ownership == (agent.OwnershipConfig{}) {
		return TestOwnership
	}
	return c.opts.Ownership
}

func (c *Cluster) ownershipBlock() string {
	o := c.OwnershipTiming()
	stop := ""
	if o.StopDeadline > 0 {
		stop = fmt.Sprintf("  stop_deadline     = %q\n", o.StopDeadline)
	}
	return fmt.Sprintf("\nownership {\n  renew_interval    = %q\n  expiry            = %q\n  clock_skew_margin = %q\n%s}\n",
		o.RenewInterval, o.Expiry, o.ClockSkewMargin, stop)
}

// OwnerRecords reads every owner record on the cluster's shared volume, by workload.
func (c *Cluster) OwnerRecords() (map[string]agent.OwnerRecord, error) {
	return ReadOwnerRecords(c.SharedVolume)
}

// ReadOwnerRecords reads every owner record on a shared volume, by workload.
func ReadOwnerRecords(volume string) (map[string]agent.OwnerRecord, error) {
	entries, err := os.ReadDir(filepath.Join(volume, agent.OwnersDir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]agent.OwnerRecord{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		rec, found, err := agent.ReadOwnerRecord(volume, name)
		if err != nil {
			return nil, err
		}
		if found {
			out[name] = rec
		}
	}
	return out, nil
}

// KillAgent kills node's agent with SIGKILL, as a crash would: it releases
// nothing and its workloads keep running.
func (c *Cluster) KillAgent(t testing.TB, node string) {
	t.Helper()
	n := c.node(t, node)
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil || closed(exited) {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// StopWorkloadProcess stops the test workload on node directly, not through
// its agent (which may be dead), as an operator fencing a node would.
func (c *Cluster) StopWorkloadProcess(t testing.TB, node, workload string) {
	t.Helper()
	c.stopWorkloadProcess(t, c.node(t, node), workload)
}

// WaitOwnerRecord polls the shared volume until workload's owner record
// satisfies cond, and returns it.
func (c *Cluster) WaitOwnerRecord(t testing.TB, workload, what string, timeout time.Duration, cond func(agent.OwnerRecord) bool) agent.OwnerRecord {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rec, ok, err := agent.ReadOwnerRecord(c.SharedVolume, workload)
		if err == nil && ok && cond(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("owner record of %s: %s not within %v; last %+v (found %v, error %v)", workload, what, timeout, rec, ok, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartWorkloadProcess starts the test workload on node directly, behind its
// agent's back, as an operator starting it by hand would: no ownership
// lease is taken. Cleanup stops it like any other.
func (c *Cluster) StartWorkloadProcess(t testing.TB, node, workload string) {
	t.Helper()
	c.node(t, node)
	// The exec driver's commands see their work directory as their state.
	stateDir := c.WorkloadStateDir(node, workload)
	must(t, os.MkdirAll(stateDir, 0o755))
	cmd := exec.Command(c.workloadBin, agent.ActionStart)
	cmd.Env = append(os.Environ(), "CLUSTERGUARD_STATE_DIR="+stateDir, "CLUSTERGUARD_NODE="+node, "CLUSTERGUARD_WORKLOAD="+workload,
		"CLUSTERGUARD_SHARED_VOLUME="+c.SharedVolume, "CLUSTERGUARD_PATHS="+filepath.Join(c.SharedVolume, "apps", workload))
	for k, v := range c.opts.WorkloadEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start %s on %s by hand: %v\n%s", workload, node, err, out)
	}
}

// SignalAgent sends sig to node's agent process (only to it: its watchdog
// and workloads run in sessions of their own), e.g. SIGSTOP to freeze it as
// a stalled host would, and SIGCONT to let it run again.
func (c *Cluster) SignalAgent(t testing.TB, node string, sig syscall.Signal) {
	t.Helper()
	n := c.node(t, node)
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil || closed(exited) {
		t.Fatalf("signal %v to the agent of %s: it is not running", sig, node)
	}
	must(t, syscall.Kill(cmd.Process.Pid, sig))
}
