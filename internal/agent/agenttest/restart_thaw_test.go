package agenttest

import (
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// An agent killed (SIGKILL, no chance to clean up) while its exec workload
// is quiesced leaves the workload's writes held; the agent started again
// on the node thaws it before it serves anything (issue 8, F5).
func TestRestartedAgentThawsTheWorkloadItsKilledPredecessorQuiesced(t *testing.T) {
	c := Start(t, Options{Workloads: []string{"web"}, WorkloadEnv: fastWorkload})
	c.StartWorkload(t, "node-1", "web")
	stateDir := c.WorkloadStateDir("node-1", "web")
	c.action(t, "node-1", "web", agent.ActionQuiesce, api.StateActive)
	held := waitStatus(t, stateDir, "the workload to be quiesced", func(s testworkload.Status) bool { return s.Quiesced })

	n := c.Node("node-1")
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	if st, err := testworkload.ReadStatus(stateDir); err != nil || !st.Quiesced {
		t.Fatalf("after the agent was killed the workload is %+v (%v); the test needs it still quiesced", st, err)
	}

	c.StartAgent(t, "node-1")
	waitStatus(t, stateDir, "the restarted agent to thaw the workload and its writes to resume", func(s testworkload.Status) bool {
		return !s.Quiesced && s.Generated > held.Generated
	})
	c.WaitWorkloadState(t, "node-1", "web", api.StateActive, 20*time.Second)
}
