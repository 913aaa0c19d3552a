package exec_test

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/exec"
)

// Commands run as the workload's user, with its groups, and see a minimal
// environment: nothing of the agent's own (here, a secret) reaches them.
func TestCommandsRunAsTheUserWithAMinimalEnvironment(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test starts commands as another user and needs root (the agent runs as root; .ci/run does too)")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("user nobody: %v", err)
	}
	t.Setenv("CG_AGENT_SECRET", "s3cr3t-of-the-agent")
	// Not t.TempDir: the workload's user must reach its state directory.
	dir, err := os.MkdirTemp("", "cg-exec-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state", "workloads", "web")
	dump := sh(`{ id -u; id -g; id -G; } > "$CLUSTERGUARD_STATE_DIR/id"; env > "$CLUSTERGUARD_STATE_DIR/env"`)
	d, err := exec.New(exec.Config{
		Workload: "web", Node: "node-1", SharedVolume: dir, Paths: []string{dir}, StateDir: stateDir,
		Commands: map[string][]string{exec.Status: sh("exit 0"), exec.Start: dump}, Timeout: 10 * time.Second,
		Env: map[string]string{"GREETING": "hello"}, User: "nobody",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	id, err := os.ReadFile(filepath.Join(stateDir, "work", "id"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(id)), "\n")
	groups, _ := nobody.GroupIds()
	if len(lines) != 3 || lines[0] != nobody.Uid || lines[1] != nobody.Gid {
		t.Fatalf("the command ran as uid/gid %q, want %s/%s", lines, nobody.Uid, nobody.Gid)
	}
	for _, g := range strings.Fields(lines[2]) {
		if g != nobody.Gid && !slices.Contains(groups, g) {
			t.Errorf("the command kept group %s, which is not one of nobody's (%v): the agent's groups leaked", g, groups)
		}
	}
	env := readEnv(t, filepath.Join(stateDir, "work", "env"))
	if v, ok := env["CG_AGENT_SECRET"]; ok {
		t.Errorf("the agent's environment reached the command: CG_AGENT_SECRET=%q", v)
	}
	want := map[string]string{"HOME": nobody.HomeDir, "USER": "nobody", "LOGNAME": "nobody", "GREETING": "hello", "CLUSTERGUARD_WORKLOAD": "web"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	allowed := []string{"PATH", "LANG", "HOME", "USER", "LOGNAME", "GREETING", "PWD", "SHLVL", "OLDPWD", "_"} // the last four the shell sets
	for k := range env {
		if !strings.HasPrefix(k, "CLUSTERGUARD_") && !slices.Contains(allowed, k) {
			t.Errorf("unexpected variable %s=%q in the command's environment", k, env[k])
		}
	}
}

func TestUnknownUserIsRefused(t *testing.T) {
	t.Parallel()
	_, err := exec.New(exec.Config{Workload: "web", StateDir: t.TempDir(), User: "no-such-user-cg",
		Commands: map[string][]string{exec.Status: {"/bin/true"}}})
	if err == nil || !strings.Contains(err.Error(), "no-such-user-cg") || !strings.Contains(err.Error(), "create the user") {
		t.Fatalf("New with an unknown user = %v, want an error naming it and what to do", err)
	}
}

// A user that cannot reach the state directory is refused when the driver
// is built, not with a puzzling error from the first command.
func TestUnreachableStateDirIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: it runs commands as another user")
	}
	stateDir := filepath.Join(t.TempDir(), "state", "workloads", "web") // t.TempDir is 0700, root's
	_, err := exec.New(exec.Config{Workload: "web", StateDir: stateDir, User: "nobody",
		Commands: map[string][]string{exec.Status: {"/bin/true"}}})
	if err == nil || !strings.Contains(err.Error(), "cannot use the workload's state directory") {
		t.Fatalf("New with an unreachable state directory = %v, want a refusal saying so", err)
	}
}
