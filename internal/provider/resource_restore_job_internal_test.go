package provider

import (
	"errors"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

// Restore diagnostics say only what happened: a failure at plan time (or
// before any step) stopped and restored nothing; a step failure carries
// what was done with the workload it had stopped.
func TestDiagRestoreIsTruthful(t *testing.T) {
	t.Parallel()
	text := func(during string, err error) string {
		d := diagRestore(during, err)
		if len(d) != 1 {
			t.Fatalf("diagRestore(%v) = %d diagnostics", err, len(d))
		}
		return d[0].Summary() + "\n" + d[0].Detail()
	}
	plain := text("planning", errors.New(`workload "ghost" is unknown`))
	for _, lie := range []string{"was restarted", "stay restored"} {
		if strings.Contains(plain, lie) {
			t.Errorf("a plan-time failure says %q:\n%s", lie, plain)
		}
	}
	if !strings.Contains(plain, "Nothing was stopped or restored") {
		t.Errorf("a plan-time failure does not say nothing was done:\n%s", plain)
	}
	step := text("running", &engine.RestoreStepError{Workload: "web", Err: errors.New("lease held"), StoppedOn: "node-1", Restarted: true})
	if !strings.Contains(step, "was started again there") || strings.Contains(step, "Nothing was stopped") {
		t.Errorf("a step failure after a restart:\n%s", step)
	}
	notRestarted := text("running", &engine.RestoreStepError{Workload: "web", Err: errors.New("lease held"), StoppedOn: "node-1", RestartErr: errors.New("start failed")})
	if !strings.Contains(notRestarted, "NOT started again") || !strings.Contains(notRestarted, "start failed") {
		t.Errorf("a step failure without restart:\n%s", notRestarted)
	}
	unreachable := text("planning", &engine.UnreachableNodesError{Workload: "web", Nodes: []*engine.NodeError{{Node: "node-3", Endpoint: "http://10.0.0.3:7420", Problem: engine.ProblemUnreachable, Detail: "the agent did not answer"}}})
	if !strings.Contains(unreachable, "Workload Location Unknown") || !strings.Contains(unreachable, `assume_down = ["node-3"]`) {
		t.Errorf("an unreachable node at plan time:\n%s", unreachable)
	}
}
