package provider

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// TestAccRestoreJob_providerProcessKilled runs the real provider binary under
// the real terraform CLI and SIGKILLs the provider process in the middle of a
// restore of two workloads: after the first is restored, while the agent is
// stopping the second. The next apply must resume that operation — not start
// a second one — finish it, and never have a workload active on two nodes.
func TestAccRestoreJob_providerProcessKilled(t *testing.T) {
	holdDir := t.TempDir()
	e := newTestEnvWith(t, 2, map[string]string{testworkload.HoldDirEnv: holdDir}, "web", "app")
	e.writeData(t, "web", "marker", "web-v1")
	e.writeData(t, "app", "marker", "app-v1")
	e.cluster.StartWorkload(t, "node-1", "web")
	e.cluster.StartWorkload(t, "node-2", "app")
	tf := newTerraformCLI(t)

	backup := `
terraform {
  required_providers {
    clusterguard = { source = "clusterguard/clusterguard" }
  }
}
` + testAccBackupConfig(e, e.repoDir, `  workloads = ["web", "app"]`, `  triggers = { n = "1" }`)
	tf.apply(t, backup)
	e.writeData(t, "web", "marker", "web-v2")
	e.writeData(t, "app", "marker", "app-v2")

	job := backup + restoreJob(`  workloads = [{ name = "web" }, { name = "app" }]`)
	hold, held := testworkload.HoldFiles(holdDir, "app", "stop")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	watch := watchOverlaps(t, e)
	first := tf.start(t, job)
	waitForFile(t, held, 2*time.Minute, first)
	// web is done and recorded; the agent is stopping app. Kill the provider.
	pid := providerPID(t, first.cmd.Process.Pid, tf.providerBin)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill provider %d: %v", pid, err)
	}
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
	if err := first.wait(); err == nil {
		t.Fatalf("terraform apply succeeded although its provider was killed:\n%s", first.out.String())
	}
	if got := e.readVolume(t, "apps/web/marker"); got != "web-v1" {
		t.Fatalf("before the provider died web was restored, marker is %q", got)
	}

	tf.apply(t, job)
	watch.check(t)
	res := tf.resource(t, "clusterguard_restore_job", "test")
	if res["resumed"] != true || res["status"] != "succeeded" {
		t.Fatalf("second apply: resumed=%v status=%v, want a resumed, succeeded operation", res["resumed"], res["status"])
	}
	if steps, _ := res["steps"].([]any); len(steps) != 2 {
		t.Fatalf("steps: %v, want web and app", res["steps"])
	}
	if n := countRestoreOperations(t, e.catalog); n != 1 {
		t.Fatalf("the catalog holds %d restore operations, want the one that was resumed", n)
	}
	for w, want := range map[string]string{"web": "web-v1", "app": "app-v1"} {
		if got := e.readVolume(t, "apps/"+w+"/marker"); got != want {
			t.Errorf("%s marker: %q, want %q", w, got, want)
		}
	}
	for w, node := range map[string]string{"web": "node-1", "app": "node-2"} {
		if err := expectActiveOn(t, e, w, node)(nil); err != nil {
			t.Error(err)
		}
	}
}

// terraformCLI runs the terraform binary against the provider binary the
// tests built, through a dev_overrides CLI configuration.
type terraformCLI struct {
	dir, rc, providerBin string
}

func newTerraformCLI(t *testing.T) *terraformCLI {
	t.Helper()
	bin, _ := agenttest.Binaries(t)
	tf := &terraformCLI{dir: t.TempDir(), providerBin: bin}
	tf.rc = filepath.Join(t.TempDir(), "terraformrc")
	rc := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"clusterguard/clusterguard\" = %q\n  }\n  direct {}\n}\n", filepath.Dir(bin))
	if err := os.WriteFile(tf.rc, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	return tf
}

type tfRun struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func (r *tfRun) wait() error { return <-r.done }

func (tf *terraformCLI) command(args ...string) *exec.Cmd {
	cmd := exec.Command(terraformBinary(), args...)
	cmd.Dir = tf.dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+tf.rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_LOG=")
	return cmd
}

// start writes config and starts `terraform apply` without waiting for it.
func (tf *terraformCLI) start(t *testing.T, config string) *tfRun {
	t.Helper()
	if err := os.WriteFile(filepath.Join(tf.dir, "main.tf"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &tfRun{cmd: tf.command("apply", "-auto-approve", "-input=false", "-no-color"), out: &bytes.Buffer{}, done: make(chan error, 1)}
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start terraform: %v", err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Process.Kill()
		}
	})
	return r
}

func (tf *terraformCLI) apply(t *testing.T, config string) {
	t.Helper()
	r := tf.start(t, config)
	if err := r.wait(); err != nil {
		t.Fatalf("terraform apply: %v\n%s", err, r.out.String())
	}
}

// resource returns the attribute values of one resource in the state.
func (tf *terraformCLI) resource(t *testing.T, typ, name string) map[string]any {
	t.Helper()
	out, err := tf.command("show", "-json").Output()
	if err != nil {
		t.Fatalf("terraform show: %v", err)
	}
	var state struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Type, Name string
					Values     map[string]any
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal(out, &state); err != nil {
		t.Fatalf("terraform show -json: %v", err)
	}
	for _, r := range state.Values.RootModule.Resources {
		if r.Type == typ && r.Name == name {
			return r.Values
		}
	}
	t.Fatalf("%s.%s is not in the state", typ, name)
	return nil
}

func terraformBinary() string {
	if p := os.Getenv("TF_ACC_TERRAFORM_PATH"); p != "" {
		return p
	}
	if p, err := exec.LookPath("terraform"); err == nil {
		return p
	}
	return "/usr/local/bin/terraform"
}

// waitForFile polls for path; it fails early if run ends first.
func waitForFile(t *testing.T, path string, timeout time.Duration, run *tfRun) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		select {
		case err := <-run.done:
			run.done <- err
			t.Fatalf("terraform ended (%v) before %s appeared:\n%s", err, path, run.out.String())
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
	t.Fatalf("%s did not appear within %v", path, timeout)
}

// providerPID finds the provider process terraform (parent) started from bin:
// the one child running bin with no arguments (agents run it as `agent`).
func providerPID(t *testing.T, parent int, bin string) int {
	t.Helper()
	for _, pid := range proc.Children(parent) {
		if args := proc.Args(pid); len(args) == 1 && args[0] == bin {
			return pid
		}
	}
	t.Fatalf("no provider process %s under terraform (pid %d)", bin, parent)
	return 0
}

func countRestoreOperations(t *testing.T, catalogPath string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+catalogPath+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM restore_operations").Scan(&n); err != nil {
		t.Fatalf("count restore operations: %v", err)
	}
	return n
}
