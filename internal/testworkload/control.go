package testworkload

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const pollInterval = 10 * time.Millisecond

func (s settings) path(name string) string { return filepath.Join(s.stateDir, name) }

// runningPID returns the pid from the pidfile when that process is alive and is
// our run command; 0 otherwise.
func (s settings) runningPID() int {
	data, err := os.ReadFile(s.path(PIDFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !IsRunProcess(pid) {
		return 0
	}
	return pid
}

// IsRunProcess reports whether pid is a live (not zombie) clusterguard-testworkload
// run process, judged by /proc/PID/cmdline so that a recycled pid does not count.
func IsRunProcess(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) == 0 { // zombies have an empty cmdline
		return false
	}
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	return len(argv) >= 2 && strings.HasPrefix(filepath.Base(argv[0]), BinaryName) && argv[1] == "run"
}

// lock serialises start and stop for one state directory (the agent may run
// them concurrently, and so may an operator).
func (s settings) lock() (unlock func(), err error) {
	f, err := os.OpenFile(s.path(lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func (s settings) status() int {
	if pid := s.runningPID(); pid != 0 {
		fmt.Fprintf(s.stdout, "running (pid %d)\n", pid)
		return exitOK
	}
	fmt.Fprintln(s.stdout, "not running")
	return exitNotRunning
}

func (s settings) start() int {
	unlock, err := s.lock()
	if err != nil {
		fmt.Fprintf(s.stderr, "start: %v\n", err)
		return exitFailed
	}
	defer unlock()
	if pid := s.runningPID(); pid != 0 {
		fmt.Fprintf(s.stdout, "already running (pid %d)\n", pid)
		return exitOK
	}
	if s.dataDir == "" {
		fmt.Fprintln(s.stderr, "start: no data directory; set CLUSTERGUARD_PATHS or pass --path")
		return exitUsage
	}
	for _, stale := range []string{PIDFile, StatusFile, AckFile} {
		if err := os.Remove(s.path(stale)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(s.stderr, "start: remove stale %s: %v\n", stale, err)
			return exitFailed
		}
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(s.stderr, "start: find own executable: %v\n", err)
		return exitFailed
	}
	logf, err := os.OpenFile(s.path(LogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(s.stderr, "start: %v\n", err)
		return exitFailed
	}
	defer logf.Close()
	cmd := exec.Command(self, "run",
		"--node", s.node, "--workload", s.workload, "--path", s.dataDir, "--state-dir", s.stateDir,
		"--interval", s.interval.String(), "--flush-every", strconv.Itoa(s.flushEvery))
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: the agent kills the process group of a command that
	// times out, and the workload must outlive the start command in any case.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(s.stderr, "start: %v\n", err)
		return exitFailed
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := writeFileAtomic(s.path(PIDFile), fmt.Appendf(nil, "%d\n", pid)); err != nil {
		_ = cmd.Process.Kill()
		fmt.Fprintf(s.stderr, "start: write pidfile: %v\n", err)
		return exitFailed
	}
	deadline := time.Now().Add(s.wait)
	for {
		select {
		case err := <-exited:
			_ = os.Remove(s.path(PIDFile))
			fmt.Fprintf(s.stderr, "start: the workload exited at once (%v); its log %s ends with:\n%s\n", err, s.path(LogFile), tailOf(s.path(LogFile), 2048))
			return exitFailed
		default:
		}
		if st, err := ReadStatus(s.stateDir); err == nil && st.PID == pid {
			fmt.Fprintf(s.stdout, "started (pid %d)\n", pid)
			return exitOK
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = os.Remove(s.path(PIDFile))
			fmt.Fprintf(s.stderr, "start: the workload did not report running within %v; killed it; see %s\n", s.wait, s.path(LogFile))
			return exitFailed
		}
		time.Sleep(pollInterval)
	}
}

func (s settings) stop() int {
	unlock, err := s.lock()
	if err != nil {
		fmt.Fprintf(s.stderr, "stop: %v\n", err)
		return exitFailed
	}
	defer unlock()
	pid := s.runningPID()
	if pid == 0 {
		_ = os.Remove(s.path(PIDFile))
		fmt.Fprintln(s.stdout, "not running")
		return exitOK
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		fmt.Fprintf(s.stderr, "stop: signal pid %d: %v\n", pid, err)
		return exitFailed
	}
	code := exitOK
	if !waitFor(s.wait, func() bool { return !IsRunProcess(pid) }) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitFor(s.wait, func() bool { return !IsRunProcess(pid) })
		fmt.Fprintf(s.stderr, "stop: pid %d did not exit within %v of SIGTERM; killed it, its buffered records are lost\n", pid, s.wait)
		code = exitFailed
	}
	_ = os.Remove(s.path(PIDFile))
	_ = os.Remove(s.path(AckFile))
	fmt.Fprintf(s.stdout, "stopped (pid %d)\n", pid)
	return code
}

func (s settings) quiesce() int {
	pid := s.runningPID()
	if pid == 0 {
		fmt.Fprintln(s.stdout, "not running; nothing to flush")
		return exitOK
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		fmt.Fprintf(s.stderr, "quiesce: signal pid %d: %v\n", pid, err)
		return exitFailed
	}
	if !waitFor(s.wait, func() bool { _, ok, _ := ReadQuiesceAck(s.stateDir); return ok }) {
		fmt.Fprintf(s.stderr, "quiesce: pid %d did not acknowledge within %v (no %s)\n", pid, s.wait, s.path(AckFile))
		return exitFailed
	}
	seq, _, err := ReadQuiesceAck(s.stateDir)
	if err != nil {
		fmt.Fprintf(s.stderr, "quiesce: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(s.stdout, "quiesced (pid %d, flushed up to seq %d)\n", pid, seq)
	return exitOK
}

func (s settings) thaw() int {
	pid := s.runningPID()
	if pid == 0 {
		fmt.Fprintln(s.stdout, "not running; nothing to thaw")
		return exitOK
	}
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		fmt.Fprintf(s.stderr, "thaw: signal pid %d: %v\n", pid, err)
		return exitFailed
	}
	if !waitFor(s.wait, func() bool { _, ok, _ := ReadQuiesceAck(s.stateDir); return !ok }) {
		fmt.Fprintf(s.stderr, "thaw: pid %d did not remove %s within %v\n", pid, s.path(AckFile), s.wait)
		return exitFailed
	}
	fmt.Fprintf(s.stdout, "thawed (pid %d)\n", pid)
	return exitOK
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

func tailOf(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(bytes.TrimSpace(data))
}

// signal sends sig to the running workload (pause: SIGSTOP, resume: SIGCONT);
// not running is fine for resume and an error for pause.
func (s settings) signal(name string, sig syscall.Signal) int {
	pid := s.runningPID()
	if pid == 0 {
		if sig == syscall.SIGCONT {
			fmt.Fprintln(s.stdout, "not running; nothing to resume")
			return exitOK
		}
		fmt.Fprintf(s.stderr, "%s: not running\n", name)
		return exitFailed
	}
	if err := syscall.Kill(pid, sig); err != nil {
		fmt.Fprintf(s.stderr, "%s: signal pid %d: %v\n", name, pid, err)
		return exitFailed
	}
	// A signal is delivered asynchronously: pause is done only once the
	// process is stopped (a copy must not begin while it can still write).
	want := sig == syscall.SIGSTOP
	if !waitFor(s.wait, func() bool { return stopped(pid) == want || !IsRunProcess(pid) }) {
		fmt.Fprintf(s.stderr, "%s: pid %d did not take the signal within %v\n", name, pid, s.wait)
		return exitFailed
	}
	fmt.Fprintf(s.stdout, "%sd (pid %d)\n", name, pid)
	return exitOK
}

// stopped reports whether pid is stopped by a signal (state T in
// /proc/PID/stat, after the command name, which may hold spaces).
func stopped(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'T' || stat[i+2] == 't')
}
