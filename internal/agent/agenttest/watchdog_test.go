package agenttest

import (
	"syscall"
	"testing"
)

// An agent stopped with SIGSTOP renews nothing and stops nothing; its
// watchdog, a process of its own that the agent feeds after every renewal,
// kills the workload before the lease can expire for any other node
// (expiry − margin after the last renewal). Once the agent runs again it
// reports the workload inactive.
func TestStoppedAgentsWorkloadIsKilledByItsWatchdog(t *testing.T) {
	c := Start(t, Options{Nodes: 2, Workloads: []string{"web"}, WorkloadEnv: fastWorkload})
	c.StartWorkload(t, "node-1", "web")
	pid := runPID(t, c, "node-1", "web")
	c.SignalAgent(t, "node-1", syscall.SIGSTOP)
	cont := func() { c.SignalAgent(t, "node-1", syscall.SIGCONT) }
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		cont()
	})
	o := c.OwnershipTiming()
	waitGoneWithin(t, pid, o.Expiry, "agent SIGSTOPped")
	cont()
	c.WaitWorkloadState(t, "node-1", "web", "inactive", 10*o.Expiry)
}
