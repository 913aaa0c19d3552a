package agenttest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

var fastWorkload = map[string]string{"CLUSTERGUARD_TESTWORKLOAD_INTERVAL": "5ms", "CLUSTERGUARD_TESTWORKLOAD_FLUSH_EVERY": "5"}

func workloadStates(t *testing.T, c *Cluster, node string) map[string]string {
	t.Helper()
	list, err := c.Client(t, node).Workloads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if list.Node != node {
		t.Errorf("agent at %s says it is %q, want %q", c.Node(node).Endpoint, list.Node, node)
	}
	out := map[string]string{}
	for _, w := range list.Workloads {
		out[w.Name] = w.State
	}
	return out
}

func waitStatus(t *testing.T, stateDir, what string, cond func(testworkload.Status) bool) testworkload.Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := testworkload.ReadStatus(stateDir)
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: status %+v, err %v", what, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestThreeNodeClusterMovesAWorkload(t *testing.T) {
	c := Start(t, Options{Nodes: 3, Workloads: []string{"web", "db"}, WorkloadEnv: fastWorkload})

	if len(c.Nodes) != 3 || len(c.Endpoints()) != 3 {
		t.Fatalf("nodes = %v", c.Endpoints())
	}
	volumeIDs := map[string]bool{}
	for _, n := range c.Nodes {
		if !strings.HasPrefix(n.Endpoint, "http://127.0.0.1:") {
			t.Errorf("%s endpoint = %q", n.Name, n.Endpoint)
		}
		facts, err := c.Client(t, n.Name).Node(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if facts.Name != n.Name || facts.SharedVolume != c.SharedVolume {
			t.Errorf("facts of %s = %+v", n.Name, facts)
		}
		volumeIDs[facts.SharedVolumeID] = true
	}
	if len(volumeIDs) != 1 {
		t.Errorf("nodes report different shared volume ids: %v", volumeIDs)
	}

	c.StartWorkload(t, "node-1", "web")
	if got := workloadStates(t, c, "node-1"); got["web"] != api.StateActive || got["db"] != api.StateInactive {
		t.Errorf("node-1 states = %v", got)
	}
	for _, node := range []string{"node-2", "node-3"} {
		if got := workloadStates(t, c, node); got["web"] != api.StateInactive {
			t.Errorf("%s states = %v; web runs on node-1 only", node, got)
		}
	}
	before := waitStatus(t, c.WorkloadStateDir("node-1", "web"), "records on node-1", func(s testworkload.Status) bool { return s.Flushed >= 10 })

	c.MoveWorkload(t, "web", "node-1", "node-2")
	c.WaitWorkloadState(t, "node-1", "web", api.StateInactive, 10*time.Second)
	c.WaitWorkloadState(t, "node-2", "web", api.StateActive, 10*time.Second)
	last := waitStatus(t, c.WorkloadStateDir("node-1", "web"), "final flush on node-1", func(s testworkload.Status) bool { return s.Flushed >= before.Flushed })
	waitStatus(t, c.WorkloadStateDir("node-2", "web"), "records on node-2", func(s testworkload.Status) bool { return s.Flushed >= last.Flushed+10 })
	c.StopWorkload(t, "node-2", "web")

	// The workload's data lives on the shared volume: node-2 continued node-1's sequence.
	recs, err := testworkload.ReadRecords(c.WorkloadDataDir("web"))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		want := "node-1"
		if r.Seq > last.Flushed {
			want = "node-2"
		}
		if r.Seq != int64(i+1) || r.Node != want {
			t.Fatalf("record %d = %+v; want seq %d from %s", i, r, i+1, want)
		}
	}
}

func TestAgentRestartKeepsWorkloadsAndPort(t *testing.T) {
	c := Start(t, Options{Nodes: 1, Workloads: []string{"web"}})
	endpoint := c.Node("node-1").Endpoint
	c.StartWorkload(t, "node-1", "web")
	pid := waitStatus(t, c.WorkloadStateDir("node-1", "web"), "workload running", func(s testworkload.Status) bool { return s.PID > 0 }).PID

	c.StopAgent(t, "node-1")
	if _, err := c.Client(t, "node-1").Health(context.Background()); !client.IsUnreachable(err) {
		t.Fatalf("health of a stopped agent: %v, want unreachable", err)
	}
	if !testworkload.IsRunProcess(pid) {
		t.Fatal("stopping the agent stopped its workload")
	}
	c.StopAgent(t, "node-1") // stopping twice is harmless

	c.StartAgent(t, "node-1")
	// Nothing else grabbed the port meanwhile, so the endpoint (which a
	// Terraform config may hold) is unchanged.
	if got := c.Node("node-1").Endpoint; got != endpoint {
		t.Errorf("endpoint moved from %s to %s on restart", endpoint, got)
	}
	c.WaitWorkloadState(t, "node-1", "web", api.StateActive, 10*time.Second)
}

func TestTLSClusterAndWrongToken(t *testing.T) {
	c := Start(t, Options{Nodes: 1, TLS: true, Token: "a-fixed-token-for-this-test"})
	n := c.Node("node-1")
	if !strings.HasPrefix(n.Endpoint, "https://127.0.0.1:") || c.CAFile == "" {
		t.Fatalf("endpoint = %s, CA = %q", n.Endpoint, c.CAFile)
	}
	if _, err := c.Client(t, "node-1").Node(context.Background()); err != nil {
		t.Fatalf("node over TLS: %v", err)
	}
	tlsConfig, err := client.LoadCA(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := client.New(client.Options{Node: "node-1", Endpoint: n.Endpoint, Token: "not-the-right-token", TLSConfig: tlsConfig})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Workloads(context.Background()); !client.IsUnauthorized(err) {
		t.Errorf("wrong token: %v", err)
	}
	if c.Node("node-9") != nil {
		t.Error("Node returned a node that does not exist")
	}
}

func TestCleanupStopsAgentsAndWorkloads(t *testing.T) {
	var agentPIDs, workloadPIDs []int
	t.Run("cluster", func(t *testing.T) {
		c := Start(t, Options{Nodes: 2, Workloads: []string{"web", "db"}})
		// One workload per node: the ownership lease refuses a second node.
		onNode := map[string]string{"node-1": "web", "node-2": "db"}
		c.StartWorkload(t, "node-1", "web")
		c.StartWorkload(t, "node-2", "db")
		for _, n := range c.Nodes {
			agentPIDs = append(agentPIDs, n.cmd.Process.Pid)
			st := waitStatus(t, c.WorkloadStateDir(n.Name, onNode[n.Name]), "workload running", func(s testworkload.Status) bool { return s.PID > 0 })
			workloadPIDs = append(workloadPIDs, st.PID)
		}
		c.StopAgent(t, "node-2") // its workload must be stopped all the same
	})
	for _, pid := range workloadPIDs {
		if testworkload.IsRunProcess(pid) {
			t.Errorf("workload pid %d still running after cleanup", pid)
		}
	}
	for _, pid := range agentPIDs {
		if alive(pid) {
			t.Errorf("agent pid %d still running after cleanup", pid)
		}
	}
}

// alive reports whether pid runs (zombies do not count).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(after, "Z")
}
