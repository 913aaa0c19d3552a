// Package exec is the workload driver that runs configured commands: any
// service can be protected by giving the agent argv lists to probe, start, stop,
// quiesce and thaw it. Commands run without a shell, each in its own process
// group with a timeout; on timeout the whole group is killed, so a hung script
// cannot leave children behind.
//
// Status follows the LSB init-script convention: exit 0 means active, exit 3
// inactive, any other exit failed; a command that cannot run or times out
// leaves the state unknown.
//
// Commands run as the configured user (its uid, primary group and
// supplementary groups), else as the agent's user, and never see the agent's
// environment (which may hold credentials): every command gets PATH, LANG,
// HOME, USER and LOGNAME of its user, then the configured env, then
// CLUSTERGUARD_WORKLOAD, CLUSTERGUARD_NODE, CLUSTERGUARD_SHARED_VOLUME,
// CLUSTERGUARD_PATHS (absolute paths joined by ':'), CLUSTERGUARD_STATE_DIR
// (node-local: the "work" sub-directory of the workload's state directory,
// created, owned by the user) and CLUSTERGUARD_ACTION. The working directory
// is CLUSTERGUARD_STATE_DIR. The state directory itself (the agent's freeze
// markers) belongs to the agent and is writable by nobody else, so a
// command cannot plant a link where the agent writes. Program names without
// a '/' are looked up in the command's PATH (its absolute entries), never
// the agent's.
//
// A node-local marker records a quiesce (or pause) from just before its
// command runs until the thaw (or resume) succeeds, with the command's
// process group once it started; a driver built while the marker is set (an
// agent restarted after dying mid-backup) kills what is left of that group
// (waiting until it is gone, so a quiesce still under way cannot land after
// the thaw) and runs the thaw (or resume) command at once, so no workload
// stays quiesced because its agent died. Each command runs in a session of
// its own.
package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	osexec "os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/marker"
)

// Command names.
const (
	Status  = "status"
	Start   = "start"
	Stop    = "stop"
	Quiesce = "quiesce"
	Thaw    = "thaw"
	Pause   = "pause"
	Resume  = "resume"
)

// DefaultTimeout bounds a command when the config gives no timeout.
const DefaultTimeout = 30 * time.Second

// LSB status exit code for "not running".
const exitInactive = 3

// outputTail is how much of a command's stdout and stderr is kept for errors and logs.
const outputTail = 2048

// pipeGrace is how long the driver waits for a command's output pipes once the
// command exited: a start script that leaves a daemon holding its stdout must not
// look hung.
const pipeGrace = time.Second

// Config is everything the driver needs for one workload on one node.
type Config struct {
	Workload     string
	Node         string
	SharedVolume string
	Paths        []string            // absolute, inside the shared volume
	StateDir     string              // node-local directory for this workload; created
	Commands     map[string][]string // command name -> argv; Status is required
	Timeout      time.Duration       // default per command; DefaultTimeout when zero
	Timeouts     map[string]time.Duration
	Env          map[string]string
	// User runs the commands (a name or uid); "" runs them as the agent's user.
	User   string
	Logger *slog.Logger // nil: discard
}

// Driver runs one workload's commands.
type Driver struct {
	cfg    Config
	env    []string // without CLUSTERGUARD_ACTION
	cred   *syscall.Credential
	logger *slog.Logger
}

// New checks cfg and creates the workload's state directory.
func New(cfg Config) (*Driver, error) {
	if argv := cfg.Commands[Status]; len(argv) == 0 {
		return nil, fmt.Errorf("exec driver for workload %q: no status command; configure exec { status = [...] }", cfg.Workload)
	}
	for name, argv := range cfg.Commands {
		if !slices.Contains([]string{Status, Start, Stop, Quiesce, Thaw, Pause, Resume}, name) {
			return nil, fmt.Errorf("exec driver for workload %q: unknown command %q", cfg.Workload, name)
		}
		if len(argv) == 0 || argv[0] == "" {
			return nil, fmt.Errorf("exec driver for workload %q: %s command is empty", cfg.Workload, name)
		}
	}
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("exec driver for workload %q: no state directory", cfg.Workload)
	}
	// 0711: the commands' user must pass through it to its work directory.
	if err := marker.SecureDir(cfg.StateDir, 0o711); err != nil {
		return nil, fmt.Errorf("exec driver for workload %q: %w", cfg.Workload, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u, cred, err := commandUser(cfg)
	if err != nil {
		return nil, err
	}
	env := baseEnv(u)
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		env = append(env, k+"="+cfg.Env[k])
	}
	// Last, so they win over anything inherited (exec.Cmd keeps the last duplicate).
	env = append(env,
		"CLUSTERGUARD_WORKLOAD="+cfg.Workload,
		"CLUSTERGUARD_NODE="+cfg.Node,
		"CLUSTERGUARD_SHARED_VOLUME="+cfg.SharedVolume,
		"CLUSTERGUARD_PATHS="+strings.Join(cfg.Paths, ":"),
		"CLUSTERGUARD_STATE_DIR="+workDir(cfg),
	)
	d := &Driver{cfg: cfg, env: env, cred: cred, logger: logger.With("workload", cfg.Workload, "driver", "exec")}
	if u.UID == 0 {
		d.logger.Warn("exec commands run as root; set user in the workload's exec block to run them as the service's own user")
	}
	// An agent that died mid-backup left the workload quiesced or paused.
	_ = d.quiescedMarker().Recover(d.logger, d.timeout(Thaw)+pipeGrace, "quiesced", d.afterLeftover(d.quiescedMarker(), d.Thaw))
	_ = d.pausedMarker().Recover(d.logger, d.timeout(Resume)+pipeGrace, "paused", d.afterLeftover(d.pausedMarker(), d.Resume))
	return d, nil
}

// Status probes the workload: active (exit 0), inactive (exit 3), failed (other
// exits; the error carries the output) or unknown (could not run, timed out).
func (d *Driver) Status(ctx context.Context) (string, error) {
	code, err := d.run(ctx, Status)
	var cmdErr *CommandError
	switch {
	case err == nil:
		return api.StateActive, nil
	case code == exitInactive:
		return api.StateInactive, nil
	case errors.As(err, &cmdErr) && cmdErr.ExitCode > 0:
		return api.StateFailed, err
	default:
		return api.StateUnknown, err
	}
}

// Start runs the start command; without one it does nothing.
func (d *Driver) Start(ctx context.Context) error { return d.action(ctx, Start) }

// Stop runs the stop command; without one it does nothing. A stopped
// workload is no longer quiesced or paused.
func (d *Driver) Stop(ctx context.Context) error {
	if err := d.action(ctx, Stop); err != nil || len(d.cfg.Commands[Stop]) == 0 {
		return err // without a stop command nothing changed
	}
	return errors.Join(d.quiescedMarker().Clear(), d.pausedMarker().Clear())
}

// Quiesce runs the quiesce command; without one it does nothing.
func (d *Driver) Quiesce(ctx context.Context) error {
	return d.freeze(ctx, Quiesce, d.quiescedMarker())
}

// Thaw runs the thaw command; without one it does nothing.
func (d *Driver) Thaw(ctx context.Context) error { return d.release(ctx, Thaw, d.quiescedMarker()) }

// Pause stops the workload's execution for a crash-consistent copy (M6).
func (d *Driver) Pause(ctx context.Context) error { return d.freeze(ctx, Pause, d.pausedMarker()) }

// Resume continues a paused workload.
func (d *Driver) Resume(ctx context.Context) error { return d.release(ctx, Resume, d.pausedMarker()) }

// The markers record a quiesce or pause the driver began, until its thaw or
// resume succeeded (see package marker).
func (d *Driver) quiescedMarker() marker.Marker {
	return marker.New(d.cfg.StateDir, "quiesced-by-agent")
}
func (d *Driver) pausedMarker() marker.Marker { return marker.New(d.cfg.StateDir, "paused-by-agent") }

// freeze records the freeze before its command runs: a command that was
// killed with the agent half-way may have frozen the workload already.
func (d *Driver) freeze(ctx context.Context, name string, m marker.Marker) error {
	if len(d.cfg.Commands[name]) > 0 {
		if err := m.Set(name); err != nil {
			return fmt.Errorf("workload %q: %s: %w", d.cfg.Workload, name, err)
		}
	}
	return d.action(ctx, name)
}

func (d *Driver) release(ctx context.Context, name string, m marker.Marker) error {
	if err := d.action(ctx, name); err != nil {
		return err
	}
	if err := m.Clear(); err != nil {
		return fmt.Errorf("workload %q: %s: %w", d.cfg.Workload, name, err)
	}
	return nil
}

// CanPause reports whether pause and resume commands are configured.
func (d *Driver) CanPause() bool {
	return len(d.cfg.Commands[Pause]) > 0 && len(d.cfg.Commands[Resume]) > 0
}

func (d *Driver) action(ctx context.Context, name string) error {
	if len(d.cfg.Commands[name]) == 0 {
		d.logger.Debug("no command configured; nothing to do", "action", name)
		return nil
	}
	_, err := d.run(ctx, name)
	return err
}

func (d *Driver) timeout(name string) time.Duration {
	if t, ok := d.cfg.Timeouts[name]; ok && t > 0 {
		return t
	}
	return d.cfg.Timeout
}

// CommandError is a command that failed, exited non-zero or timed out.
type CommandError struct {
	Workload string
	Action   string
	Argv     []string
	ExitCode int           // -1 when it did not exit on its own
	TimedOut bool          // killed, with its process group, after Timeout
	Timeout  time.Duration // the limit it ran under
	Stderr   string        // tail of stderr (stdout when stderr was empty)
	Err      error         // the underlying error
}

func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "workload %q: %s command %s ", e.Workload, e.Action, quoteArgv(e.Argv))
	switch {
	case e.TimedOut:
		fmt.Fprintf(&b, "did not finish within %v and was killed with its process group; raise exec timeouts.%s or find out why it hangs", e.Timeout, e.Action)
	case e.ExitCode >= 0:
		fmt.Fprintf(&b, "exited with code %d", e.ExitCode)
	default:
		fmt.Fprintf(&b, "failed: %v", e.Err)
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, "; output: %s", e.Stderr)
	}
	return b.String()
}

func (e *CommandError) Unwrap() error { return e.Err }

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// run executes one command and returns its exit code (-1 when it did not exit
// on its own) and a *CommandError unless it exited 0.
func (d *Driver) run(ctx context.Context, name string) (int, error) {
	argv := d.cfg.Commands[name]
	limit := d.timeout(name)
	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	if err := d.prepareDirs(); err != nil { // they may have been cleaned up
		return -1, &CommandError{Workload: d.cfg.Workload, Action: name, Argv: argv, ExitCode: -1, Timeout: limit, Err: err}
	}
	env := append(slices.Clip(d.env), "CLUSTERGUARD_ACTION="+name)
	bin, err := lookPath(argv[0], env)
	if err != nil {
		return -1, &CommandError{Workload: d.cfg.Workload, Action: name, Argv: argv, ExitCode: -1, Timeout: limit, Err: err}
	}
	cmd := osexec.CommandContext(runCtx, bin, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = env
	cmd.Dir = workDir(d.cfg)
	stdout, stderr := &tailBuffer{max: outputTail}, &tailBuffer{max: outputTail}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A session of its own (so also a process group): the agent's terminal
	// and signals to the agent's group do not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: d.cred}
	cmd.Cancel = func() error {
		// The negative pid addresses the whole process group.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = pipeGrace

	started := time.Now()
	err = cmd.Start()
	if err == nil {
		d.started(name, cmd.Process.Pid)
		err = cmd.Wait()
	}
	elapsed := time.Since(started)
	if errors.Is(err, osexec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		d.logger.Warn("command exited but left processes holding its output; redirect their stdio", "action", name)
		err = nil
	}
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	log := d.logger.With("action", name, "argv", argv, "exit_code", code, "duration", elapsed)
	if err == nil {
		log.Debug("command succeeded", "stdout", stdout.String())
		return code, nil
	}
	cmdErr := &CommandError{Workload: d.cfg.Workload, Action: name, Argv: argv, ExitCode: code, Timeout: limit, Err: err}
	if errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		cmdErr.TimedOut, cmdErr.ExitCode = true, -1
	} else if ctx.Err() != nil {
		cmdErr.ExitCode, cmdErr.Err = -1, fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	cmdErr.Stderr = stderr.String()
	if cmdErr.Stderr == "" {
		cmdErr.Stderr = stdout.String()
	}
	if name == Status && code == exitInactive {
		log.Debug("status: inactive")
	} else {
		log.Warn("command failed", "error", cmdErr.Error())
	}
	return code, cmdErr
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu        sync.Mutex
	buf       []byte
	max       int
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if t.truncated && s != "" {
		s = "..." + s
	}
	return s
}
