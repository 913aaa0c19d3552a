package agenttest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// A quiesce through the API holds the workload's writes only until its
// maximum hold passes: then the agent thaws it by itself, so a caller that
// dies between quiesce and thaw cannot leave it frozen.
func TestQuiesceHoldThawsByItself(t *testing.T) {
	c := Start(t, Options{Nodes: 1, Workloads: []string{"web"}, WorkloadEnv: fastWorkload})
	c.StartWorkload(t, "node-1", "web")
	stateDir := c.WorkloadStateDir("node-1", "web")
	waitStatus(t, stateDir, "records written", func(s testworkload.Status) bool { return s.Generated > 0 })
	cl := c.Client(t, "node-1")
	ctx := context.Background()

	res, err := cl.Quiesce(ctx, "web", 700*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.ThawBy == nil || res.ThawBy.Before(res.FinishedAt) {
		t.Errorf("quiesce result %+v: want thaw_by after finished_at", res)
	}
	if _, quiesced, err := testworkload.ReadQuiesceAck(stateDir); err != nil || !quiesced {
		t.Fatalf("right after quiesce: quiesced = %v (%v), want the workload's writes held", quiesced, err)
	}
	held := waitStatus(t, stateDir, "quiesced", func(s testworkload.Status) bool { return s.Quiesced })
	// No thaw is sent: the agent must thaw by itself, and writes resume.
	waitStatus(t, stateDir, "thawed by the agent, writing again", func(s testworkload.Status) bool {
		return !s.Quiesced && s.Generated > held.Generated
	})
	// The thaw command returns (and the agent logs) just after the workload resumed.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		log := tail(c.Node("node-1").LogPath, 1<<16)
		if strings.Contains(log, "workload thawed by the agent") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent log does not say it thawed the workload:\n%s", log)
		}
	}

	// A hold beyond the agent's maximum is refused, and nothing is frozen.
	if _, err := cl.Quiesce(ctx, "web", 2*time.Hour); err == nil || !strings.Contains(err.Error(), "max_hold_ms") {
		t.Errorf("quiesce with a 2h hold: %v, want 400 naming max_hold_ms", err)
	}
	if _, quiesced, _ := testworkload.ReadQuiesceAck(stateDir); quiesced {
		t.Error("a refused quiesce froze the workload")
	}
}
