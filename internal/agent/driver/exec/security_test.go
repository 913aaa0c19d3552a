package exec_test

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/exec"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
)

// A workload user who owned the state directory (as before the commands got
// a directory of their own) planted a link at the marker's name to a root
// file; the agent's next quiesce must not write through it, and the user
// must no longer be able to create entries where the agent writes.
func TestMarkerLinkPlantedByTheWorkloadUserIsNotFollowed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run commands as nobody")
	}
	dir, err := os.MkdirTemp("", "cg-exec-marker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, "root-only-victim")
	if err := os.WriteFile(victim, []byte("precious root data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state", "workloads", "web")
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(stateDir, 65534, 65534); err != nil { // nobody owned it
		t.Fatal(err)
	}
	asNobody := func(args ...string) ([]byte, error) {
		return osexec.Command("setpriv", append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups"}, args...)...).CombinedOutput()
	}
	if out, err := asNobody("ln", "-s", victim, filepath.Join(stateDir, "quiesced-by-agent")); err != nil {
		t.Fatalf("plant the link as nobody: %v %s", err, out)
	}
	d, err := exec.New(exec.Config{Workload: "web", StateDir: stateDir, User: "nobody", Timeout: 5 * time.Second,
		Commands: map[string][]string{exec.Status: {"/bin/true"}, exec.Quiesce: {"/bin/true"}, exec.Thaw: {"/bin/true"}}})
	if err != nil {
		t.Fatal(err)
	}
	// A quiesce command of the user's plants it again for the next quiesce.
	if out, err := asNobody("ln", "-sf", victim, filepath.Join(stateDir, "quiesced-by-agent")); err == nil {
		t.Errorf("the workload user can still create entries in the agent's state directory (%s)", out)
	}
	if err := d.Quiesce(context.Background()); err != nil {
		t.Fatalf("quiesce: %v", err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "precious root data\n" {
		t.Errorf("the root file was overwritten through the planted link: now %q", data)
	}
	if fi, err := os.Lstat(filepath.Join(stateDir, "quiesced-by-agent")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("the marker is not a regular file after quiesce: %v %v", fi, err)
	}
	if err := d.Thaw(context.Background()); err != nil {
		t.Fatalf("thaw: %v", err)
	}
}

// A quiesce command of an agent that died keeps running (it was not killed
// with the agent); the next agent must end it before thawing, or its freeze
// would land after the thaw and the workload would stay quiesced.
func TestRecoveryEndsTheDeadAgentsQuiesceBeforeThawing(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state", "workloads", "web")
	work := filepath.Join(stateDir, "work")
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	// What a dead agent leaves: its quiesce command in a session of its own,
	// still running, and the marker naming its process group.
	orphan := osexec.Command("/bin/sh", "-c", `trap "" TERM; sleep 30; echo frozen > "$CLUSTERGUARD_STATE_DIR/frozen"`)
	orphan.Env = []string{"PATH=/usr/bin:/bin", "CLUSTERGUARD_STATE_DIR=" + work, "CLUSTERGUARD_ACTION=quiesce"}
	orphan.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := orphan.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL); _ = orphan.Wait() })
	if err := os.WriteFile(filepath.Join(stateDir, "quiesced-by-agent"), []byte("quiesce pgid="+strconv.Itoa(pgid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	thawed := filepath.Join(work, "thawed")
	_, err := exec.New(exec.Config{Workload: "web", StateDir: stateDir, Timeout: 5 * time.Second,
		Commands: map[string][]string{exec.Status: {"/bin/true"}, exec.Quiesce: {"/bin/true"}, exec.Thaw: {"/bin/sh", "-c", "touch " + thawed}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(thawed); err != nil {
		t.Fatalf("the new driver did not thaw: %v", err)
	}
	if live := proc.Group(pgid); len(live) > 0 {
		t.Errorf("the dead agent's quiesce command (process group %d: %v) still runs after the thaw; its freeze can land afterwards", pgid, live)
	}
}

// A program name is looked up in the PATH the command gets, not the
// agent's own.
func TestProgramIsLookedUpInTheCommandsPath(t *testing.T) {
	dir := t.TempDir()
	agentBin, cfgBin := filepath.Join(dir, "agentbin"), filepath.Join(dir, "cfgbin")
	for _, d := range []string{agentBin, cfgBin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(agentBin, "agentonly-tool"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgBin, "cfg-tool"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", agentBin+":"+os.Getenv("PATH"))
	d, err := exec.New(exec.Config{Workload: "web", StateDir: filepath.Join(dir, "s"), Timeout: 5 * time.Second,
		Env:      map[string]string{"PATH": cfgBin + ":/usr/bin:/bin"},
		Commands: map[string][]string{exec.Status: {"agentonly-tool"}, exec.Start: {"cfg-tool"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Errorf("a program on the command's PATH did not run: %v", err)
	}
	_, err = d.Status(context.Background())
	if err == nil {
		t.Fatal("a program only on the agent's PATH ran")
	}
	if !strings.Contains(err.Error(), cfgBin) {
		t.Errorf("the error does not name the PATH searched: %v", err)
	}
}
