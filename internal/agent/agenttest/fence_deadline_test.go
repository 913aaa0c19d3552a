package agenttest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// runPID is the pid of the test workload's run process on node.
func runPID(t *testing.T, c *Cluster, node, workload string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.WorkloadStateDir(node, workload), testworkload.PIDFile))
	must(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	must(t, err)
	if !testworkload.IsRunProcess(pid) {
		t.Fatalf("pid %d of %s on %s is not its run process", pid, workload, node)
	}
	return pid
}

// waitGoneWithin polls until pid is no longer the workload's run process.
func waitGoneWithin(t *testing.T, pid int, within time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for testworkload.IsRunProcess(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the workload (pid %d) still runs after %v", what, pid, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A node whose lease was taken over stops its workload within the lease's
// stop deadline even when the workload's stop command hangs: the graceful
// stop is cut short and the workload's processes are killed, so it is down
// before the lease could have expired for the taker (expiry − margin after
// the takeover at the latest; the real taker waits longer still).
func TestLostLeaseStopIsForcedAtTheStopDeadline(t *testing.T) {
	c, _, _, holdDir := heldCluster(t, 2, "web")
	stopHeld, _ := hold(t, holdDir, "web", "stop")
	pid := runPID(t, c, "node-1", "web")
	takeOver(t, c, "web")
	o := c.OwnershipTiming()
	waitGoneWithin(t, pid, o.Expiry-o.ClockSkewMargin, "lease taken over while the stop command hangs")
	if _, err := os.Stat(stopHeld); err != nil {
		t.Fatalf("the stop command never ran (so nothing was cut short): %v", err)
	}
	c.WaitWorkloadState(t, "node-1", "web", "inactive", 10*time.Second)
}
