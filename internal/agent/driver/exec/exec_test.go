package exec_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/exec"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/drivertest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload/testworkloadtest"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// newDriver builds a driver whose status command is statusScript; other
// commands come from extra.
func newDriver(t *testing.T, statusScript string, extra map[string][]string, tweak func(*exec.Config)) (*exec.Driver, exec.Config) {
	t.Helper()
	dir := t.TempDir()
	cmds := map[string][]string{exec.Status: sh(statusScript)}
	for k, v := range extra {
		cmds[k] = v
	}
	cfg := exec.Config{
		Workload:     "web",
		Node:         "node-1",
		SharedVolume: filepath.Join(dir, "shared"),
		Paths:        []string{filepath.Join(dir, "shared", "apps", "web"), filepath.Join(dir, "shared", "apps", "logs")},
		StateDir:     filepath.Join(dir, "state", "workloads", "web"),
		Commands:     cmds,
		Timeout:      10 * time.Second,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	d, err := exec.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d, cfg
}

func TestStatusExitCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		script    string
		want      string
		wantErr   []string // parts of the error; none means no error
		wantExit  int
		wantTimed bool
	}{
		{script: "exit 0", want: api.StateActive},
		{script: "exit 3", want: api.StateInactive},
		{script: "echo 'disk on fire' >&2; exit 1", want: api.StateFailed, wantErr: []string{"exited with code 1", "disk on fire", `status command ["/bin/sh"`}, wantExit: 1},
		{script: "echo only-stdout; exit 150", want: api.StateFailed, wantErr: []string{"exited with code 150", "only-stdout"}, wantExit: 150},
		{script: "kill -9 $$", want: api.StateUnknown, wantErr: []string{"failed: signal: killed"}, wantExit: -1},
	}
	for _, tc := range cases {
		t.Run(tc.script, func(t *testing.T) {
			t.Parallel()
			d, _ := newDriver(t, tc.script, nil, nil)
			state, err := d.Status(context.Background())
			if state != tc.want {
				t.Errorf("state = %q, want %q (err %v)", state, tc.want, err)
			}
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Errorf("unexpected error: %v", err)
				}
				return
			}
			var cmdErr *exec.CommandError
			if !errors.As(err, &cmdErr) {
				t.Fatalf("error %v is not a *exec.CommandError", err)
			}
			if cmdErr.ExitCode != tc.wantExit || cmdErr.Action != exec.Status || cmdErr.Workload != "web" {
				t.Errorf("CommandError = %+v", cmdErr)
			}
			for _, part := range tc.wantErr {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q lacks %q", err, part)
				}
			}
		})
	}
}

func TestMissingProgramIsUnknown(t *testing.T) {
	t.Parallel()
	d, err := exec.New(exec.Config{Workload: "web", StateDir: t.TempDir(), Commands: map[string][]string{exec.Status: {"/no/such/program"}}})
	if err != nil {
		t.Fatal(err)
	}
	state, err := d.Status(context.Background())
	if state != api.StateUnknown || err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("state = %q, err = %v; want unknown with the exec error", state, err)
	}
}

func TestEnvironmentAndWorkingDirectory(t *testing.T) {
	t.Setenv("CG_TEST_INHERITED", "from-agent")
	t.Setenv("PATH", "/agent/only/bin:"+os.Getenv("PATH"))
	dump := sh(`env > "$CLUSTERGUARD_STATE_DIR/env.$CLUSTERGUARD_ACTION"; pwd > "$CLUSTERGUARD_STATE_DIR/pwd"`)
	d, cfg := newDriver(t, "exit 0", map[string][]string{exec.Start: dump, exec.Quiesce: dump}, func(c *exec.Config) {
		c.Env = map[string]string{"GREETING": "hello world", "CLUSTERGUARD_NODE": "impostor"}
	})
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	env := readEnv(t, filepath.Join(cfg.StateDir, "work", "env.start"))
	want := map[string]string{
		"CG_TEST_INHERITED":          "", // the agent's environment stays with the agent
		"PATH":                       "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"GREETING":                   "hello world",
		"CLUSTERGUARD_WORKLOAD":      "web",
		"CLUSTERGUARD_NODE":          "node-1", // the agent's value wins over configured env
		"CLUSTERGUARD_SHARED_VOLUME": cfg.SharedVolume,
		"CLUSTERGUARD_PATHS":         cfg.Paths[0] + ":" + cfg.Paths[1],
		"CLUSTERGUARD_STATE_DIR":     filepath.Join(cfg.StateDir, "work"),
		"CLUSTERGUARD_ACTION":        "start",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if got := readEnv(t, filepath.Join(cfg.StateDir, "work", "env.quiesce"))["CLUSTERGUARD_ACTION"]; got != "quiesce" {
		t.Errorf("CLUSTERGUARD_ACTION for quiesce = %q", got)
	}
	pwd, err := os.ReadFile(filepath.Join(cfg.StateDir, "work", "pwd"))
	if err != nil || strings.TrimSpace(string(pwd)) != filepath.Join(cfg.StateDir, "work") {
		t.Errorf("working directory = %q (%v), want the commands' directory %s/work", pwd, err, cfg.StateDir)
	}
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	// The command starts a grandchild in its process group, then hangs.
	script := `sleep 300 & echo $! > "$CLUSTERGUARD_STATE_DIR/child"; wait`
	d, cfg := newDriver(t, "exit 0", map[string][]string{exec.Stop: sh(script)}, func(c *exec.Config) {
		c.Timeouts = map[string]time.Duration{exec.Stop: 300 * time.Millisecond}
	})
	started := time.Now()
	err := d.Stop(context.Background())
	elapsed := time.Since(started)
	var cmdErr *exec.CommandError
	if !errors.As(err, &cmdErr) || !cmdErr.TimedOut || cmdErr.ExitCode != -1 {
		t.Fatalf("err = %v, want a timed-out CommandError", err)
	}
	if !strings.Contains(err.Error(), "did not finish within 300ms") || !strings.Contains(err.Error(), "timeouts.stop") {
		t.Errorf("error does not say what to do: %v", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("Stop took %v with a 300ms timeout", elapsed)
	}
	data, err := os.ReadFile(filepath.Join(cfg.StateDir, "work", "child"))
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, child)
}

// waitGone polls until pid has exited (a zombie counts as exited: nobody may
// reap an orphan in a container without an init).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if _, after, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(after, "Z") {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d of the timed-out command's group is still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPerCommandTimeoutOverridesDefault(t *testing.T) {
	t.Parallel()
	d, _ := newDriver(t, "sleep 30", nil, func(c *exec.Config) {
		c.Timeout = time.Minute
		c.Timeouts = map[string]time.Duration{exec.Status: 200 * time.Millisecond}
	})
	started := time.Now()
	state, err := d.Status(context.Background())
	var cmdErr *exec.CommandError
	if state != api.StateUnknown || !errors.As(err, &cmdErr) || !cmdErr.TimedOut || cmdErr.Timeout != 200*time.Millisecond {
		t.Fatalf("state = %q, err = %v; want unknown after the 200ms status timeout", state, err)
	}
	if time.Since(started) > 5*time.Second {
		t.Errorf("status took %v", time.Since(started))
	}
}

func TestCancelledContextStopsTheCommand(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "running")
	d, _ := newDriver(t, "exit 0", map[string][]string{exec.Quiesce: sh(`touch "` + marker + `"; sleep 30`)}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Quiesce(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("quiesce command never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-errc:
		var cmdErr *exec.CommandError
		if !errors.As(err, &cmdErr) || cmdErr.TimedOut || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want a cancelled (not timed-out) CommandError", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Quiesce did not return after its context was cancelled")
	}
}

func TestMissingOptionalCommandsAreNoOps(t *testing.T) {
	t.Parallel()
	d, _ := newDriver(t, "exit 3", nil, nil)
	for name, f := range map[string]func(context.Context) error{"start": d.Start, "stop": d.Stop, "quiesce": d.Quiesce, "thaw": d.Thaw} {
		if err := f(context.Background()); err != nil {
			t.Errorf("%s without a command: %v", name, err)
		}
	}
}

func TestBackgroundProcessHoldingOutputDoesNotHang(t *testing.T) {
	t.Parallel()
	// A careless start script leaves a daemon attached to its stdout.
	pidFile := filepath.Join(t.TempDir(), "daemon")
	d, _ := newDriver(t, "exit 0", map[string][]string{exec.Start: sh(`sleep 30 & echo $! > "` + pidFile + `"; echo started`)}, nil)
	t.Cleanup(func() {
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	started := time.Now()
	if err := d.Start(context.Background()); err != nil {
		t.Fatalf("start whose daemon holds stdout: %v", err)
	}
	if elapsed := time.Since(started); elapsed > 5*time.Second {
		t.Errorf("start took %v; the driver waited for the daemon's output", elapsed)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	t.Parallel()
	cases := map[string]exec.Config{
		"no status":      {Workload: "web", StateDir: t.TempDir(), Commands: map[string][]string{exec.Start: {"/bin/true"}}},
		"empty argv":     {Workload: "web", StateDir: t.TempDir(), Commands: map[string][]string{exec.Status: {"/bin/true"}, exec.Stop: {}}},
		"unknown action": {Workload: "web", StateDir: t.TempDir(), Commands: map[string][]string{exec.Status: {"/bin/true"}, "reboot": {"/bin/true"}}},
		"no state dir":   {Workload: "web", Commands: map[string][]string{exec.Status: {"/bin/true"}}},
	}
	for name, cfg := range cases {
		if _, err := exec.New(cfg); err == nil || !strings.Contains(err.Error(), `workload "web"`) {
			t.Errorf("%s: err = %v, want an error naming the workload", name, err)
		}
	}
}

// TestConformance runs the shared driver suite against the exec driver
// operating the real test workload program, whose quiesce flushes and holds
// its writes and whose pause stops it.
func TestConformance(t *testing.T) {
	bin := testworkloadtest.Build(t)
	drivertest.Run(t, func(t *testing.T) drivertest.Workload {
		dir := t.TempDir()
		shared := filepath.Join(dir, "shared")
		cmds := map[string][]string{}
		for _, c := range []string{exec.Status, exec.Start, exec.Stop, exec.Quiesce, exec.Thaw, exec.Pause, exec.Resume} {
			cmds[c] = []string{bin, c}
		}
		cfg := exec.Config{
			Workload: "web", Node: "node-1", SharedVolume: shared,
			Paths:    []string{filepath.Join(shared, "apps", "web")},
			StateDir: filepath.Join(dir, "state", "workloads", "web"),
			Commands: cmds, Timeout: 20 * time.Second,
			Env: map[string]string{"CLUSTERGUARD_TESTWORKLOAD_INTERVAL": "5ms"},
		}
		d, err := exec.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Stop(context.Background()) })
		return drivertest.Workload{
			Driver: d,
			Reopen: func() (agent.Driver, error) { return exec.New(cfg) },
			Frozen: func(context.Context) (bool, error) {
				st, err := testworkload.ReadStatus(filepath.Join(cfg.StateDir, "work"))
				if err != nil {
					return false, err
				}
				return st.Quiesced || proc.Stopped(st.PID), nil
			},
		}
	})
}
