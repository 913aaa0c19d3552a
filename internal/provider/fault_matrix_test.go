package provider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// Fault-matrix rows through real Terraform (ARCHITECTURE.md, "Safety
// model"): a node lost mid-run, and an agent killed during a restore's swap.

// TestAccBackupRun_agentKilledMidRun: the agent of node-3 is SIGKILLed
// while it is quiescing app for the run (its quiesce command held). The run
// ends partial with app reported missing, naming node-3; the workloads of
// the surviving nodes are not left frozen; once node-3's agent is back (and
// has thawed what its predecessor froze) the next run succeeds.
func TestAccBackupRun_agentKilledMidRun(t *testing.T) {
	holdDir := t.TempDir()
	e := newTestEnvWith(t, 3, map[string]string{testworkload.HoldDirEnv: holdDir}, "web", "db", "app")
	e.cluster.StartWorkload(t, "node-1", "web")
	e.cluster.StartWorkload(t, "node-2", "db")
	e.cluster.StartWorkload(t, "node-3", "app")
	hold, held := testworkload.HoldFiles(holdDir, "app", "quiesce")
	t.Cleanup(func() { _ = os.Remove(hold) })
	// Fixed master node-1, master_last: order node-2, node-3, node-1.
	clusterExtra := `  master_policy = "fixed"
  master_node   = "node-1"`
	group := `  workloads  = ["web", "db", "app"]
  node_order = "master_last"`
	cfg := func(trigger string) string {
		base := testAccBackupConfig(e, e.repoDir, group, fmt.Sprintf(`  triggers = { n = %q }`, trigger))
		return regexp.MustCompile(`(?m)^  nodes         = `).ReplaceAllString(base, clusterExtra+"\n  nodes         = ")
	}
	var killed sync.WaitGroup
	var killErr error
	kill := true
	hooks := engine.RunHooks{BeforeNode: func(_ context.Context, node string, _ []string) {
		if node != "node-3" || !kill {
			return
		}
		kill = false
		if err := os.WriteFile(hold, nil, 0o644); err != nil {
			killErr = err
			return
		}
		// The request to node-3 is sent once this hook returns: kill its
		// agent while it is in the middle of freezing app.
		killed.Add(1)
		go func() {
			defer killed.Done()
			if killErr = waitPath(held, time.Minute); killErr == nil {
				e.cluster.KillAgent(t, "node-3")
			}
		}()
	}}
	watch := watchOverlaps(t, e)
	var runEnd time.Time
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(WithRunHooks(hooks)),
		Steps: []resource.TestStep{
			{
				Config:             cfg("1"),
				ExpectNonEmptyPlan: true, // node-3 is down after the run: the cluster shows it as drift
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("status"), knownvalue.StringExact("partial")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("app").AtMapKey("error"), knownvalue.StringRegexp(regexp.MustCompile(`node-3`))),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("web").AtMapKey("error"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("db").AtMapKey("error"), knownvalue.StringExact("")),
				},
				Check: func(*terraform.State) error {
					killed.Wait()
					if killErr != nil {
						return fmt.Errorf("killing node-3's agent mid-run: %w", killErr)
					}
					runEnd = time.Now()
					// Nothing is left frozen on the surviving nodes.
					for node, w := range map[string]string{"node-1": "web", "node-2": "db"} {
						if err := waitNotQuiesced(e, node, w, runEnd, 30*time.Second); err != nil {
							return err
						}
					}
					return nil
				},
			},
			{
				// node-3's agent comes back after its held quiesce command
				// finished: it thaws app, and the next run backs up all three.
				PreConfig: func() {
					pid := heldPID(t, held)
					if err := os.Remove(hold); err != nil {
						t.Fatal(err)
					}
					waitProcessGone(t, pid, time.Minute)
					// The dead agent's quiesce command went through: app's
					// writes are held with no agent to release them.
					stateDir := e.cluster.WorkloadStateDir("node-3", "app")
					for deadline := time.Now().Add(10 * time.Second); ; {
						st, err := testworkload.ReadStatus(stateDir)
						if err == nil && st.Quiesced {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("app after its agent died quiescing it: %+v, %v; the test needs it quiesced", st, err)
						}
						time.Sleep(50 * time.Millisecond) // polling interval
					}
					e.cluster.StartAgent(t, "node-3")
					if err := waitNotQuiesced(e, "node-3", "app", time.Now(), 30*time.Second); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg("2"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
					statecheck.ExpectKnownValue(runAddr, tfjsonpath.New("workloads").AtMapKey("app").AtMapKey("node"), knownvalue.StringExact("node-3")),
				},
			},
		},
	})
	watch.check(t)
	verifyRepoDir(t, e.repoDir)
}

// TestAccRestoreJob_agentKilledDuringSwap: the agent of the node a restore
// writes to is SIGKILLed between the write (the swap) and the activation.
// The apply fails saying the workload was not started again and why; the
// workload is active nowhere meanwhile (never on two nodes); once the agent
// is back, applying again resumes the operation and completes it, with the
// restored data.
func TestAccRestoreJob_agentKilledDuringSwap(t *testing.T) {
	e := newTestEnv(t, 2, "web")
	e.writeData(t, "web", "marker", "web-v1")
	e.cluster.StartWorkload(t, "node-1", "web")
	backup := testAccBackupConfig(e, e.repoDir, `  workloads = ["web"]`, `  triggers = { n = "1" }`)
	job := testAccRepoConfig(e, e.repoDir) + restoreJob(`  workloads = [{ name = "web" }]`)
	kill := true
	hooks := engine.RestoreHooks{AfterWrite: func(_ context.Context, st catalog.RestoreStep) error {
		if kill && st.Node == "node-1" {
			kill = false
			e.cluster.KillAgent(t, "node-1")
		}
		return nil
	}}
	watch := watchOverlaps(t, e)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(WithRestoreHooks(hooks)),
		Steps: []resource.TestStep{
			{Config: backup},
			{
				PreConfig:   func() { e.writeData(t, "web", "marker", "web-v2") },
				Config:      job,
				ExpectError: regexp.MustCompile(`(?s)stopped\s+on\s+node-1\s+for\s+the\s+restore\s+and\s+was\s+NOT\s+started\s+again`),
			},
			{
				PreConfig: func() {
					if e.processRunning(t, "node-1", "web") {
						t.Fatal("web runs on node-1 although the failed restore could not start it")
					}
					if got := e.activeOn(t, "web"); len(got) != 0 {
						t.Fatalf("web is active on %v while node-1's agent is down", got)
					}
					if got := e.readVolume(t, "apps/web/marker"); got != "web-v1" {
						t.Fatalf("marker after the write: %q, want the restored web-v1", got)
					}
					e.cluster.StartAgent(t, "node-1")
				},
				Config: job,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("resumed"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
				},
				Check: resource.ComposeTestCheckFunc(expectActiveOn(t, e, "web", "node-1"), func(*terraform.State) error {
					if got := e.readVolume(t, "apps/web/marker"); got != "web-v1" {
						return fmt.Errorf("marker after the resumed restore: %q, want web-v1", got)
					}
					return nil
				}),
			},
		},
	})
	watch.check(t)
}

// processRunning reports whether the test workload's process on node is
// alive, whatever its agent says (or whether it answers at all).
func (e *testEnv) processRunning(t *testing.T, node, workload string) bool {
	t.Helper()
	data, err := os.ReadFile(e.cluster.WorkloadStateDir(node, workload) + "/" + testworkload.PIDFile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	return err == nil && testworkload.IsRunProcess(pid)
}

// waitNotQuiesced waits until the test workload on node reports, after
// since, that its writes are not held.
func waitNotQuiesced(e *testEnv, node, workload string, since time.Time, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last testworkload.Status
	for time.Now().Before(deadline) {
		st, err := testworkload.ReadStatus(e.cluster.WorkloadStateDir(node, workload))
		if err == nil && st.UpdatedAt.After(since) && !st.Quiesced {
			return nil
		}
		last = st
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	return fmt.Errorf("%s on %s is still quiesced (or silent) %s after the run: %+v", workload, node, timeout, last)
}

func waitPath(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	return fmt.Errorf("%s did not appear within %s", path, timeout)
}

// heldPID is the pid of the held command that wrote held.
func heldPID(t *testing.T, held string) int {
	t.Helper()
	data, err := os.ReadFile(held)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("held file %s: %v", held, err)
	}
	return pid
}

// alive: pid exists and is not a zombie (a killed agent's children are
// reparented to an init that may not reap them).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func waitProcessGone(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs after %s", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}
