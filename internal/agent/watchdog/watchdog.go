// Package watchdog kills a node's workloads when their agent stops renewing
// their ownership leases, whatever happens to the agent: it is a separate
// process (the hidden subcommand `agent watchdog` of the same binary) that
// the agent feeds through a pipe. After every successful renewal the agent
// arms the workload's deadline (the end of its lease validity by the
// host's CLOCK_BOOTTIME, which keeps counting through a suspend:
// expiry − clock_skew_margin after the renewal began); when a deadline
// passes without a new feed — the agent is stopped (SIGSTOP, a frozen VM),
// its renewal goroutine starves, or a renewal hangs on the shared volume —
// the watchdog kills the workload's whole process tree: every process
// carrying the workload's identifying environment entry (or, for
// PostgreSQL, running in its data directory and not under another agent's
// server) and all their descendants, found by their parent pids — a
// PostgreSQL backend or a program that sets its process title no longer
// carries the entry. The set is stopped with SIGSTOP first, so nothing
// forks away or is re-parented out of sight, then SIGKILLed; passes repeat
// until none is left, for at most 5 s. Due workloads are killed together,
// beside the main loop. The watchdog kills first and logs after, through
// a bounded buffer that drops lines rather than block, and ignores
// SIGPIPE: a blocked or closed log pipe cannot keep it from killing.
//
// Like sanlock's wdmd, the watchdog only checks an expiry time the lease
// manager keeps pushing forward after successful renewals, so a lease
// manager that cannot run cannot keep a workload alive. Unlike wdmd it
// kills the workload's processes rather than resetting the host through
// /dev/watchdog: the agent runs without that device or the right to reset
// the node, and the workloads it protects are its own children.
//
// The end of the pipe (the agent exited, or was killed) disarms everything
// and the watchdog exits: an agent that stops or restarts leaves its
// workloads running, as documented for the ownership lease, and a restarted
// agent adopts them and starts a new watchdog.
package watchdog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
)

// Subcommand is the argument of `agent` that runs the watchdog.
const Subcommand = "watchdog"

// message is one line on the pipe.
type message struct {
	Op       string `json:"op"` // "arm" or "disarm"
	Workload string `json:"workload"`
	// Env ("KEY=value") identifies the workload's processes.
	Env string `json:"env,omitempty"`
	// Cwd, when set, also identifies them by their working directory
	// (PostgreSQL's backends, which overwrite their environment with their
	// process title, run in the data directory); see proc.Match.
	Cwd string `json:"cwd,omitempty"`
	// Comm limits the match by Cwd to processes of that name.
	Comm string `json:"comm,omitempty"`
	// DeadlineNS is when the lease stops being valid, on the host's
	// CLOCK_BOOTTIME (shared by both processes, and running on through a
	// suspend, unlike CLOCK_MONOTONIC): a message read late, by a watchdog
	// that was itself descheduled, still fires on time.
	DeadlineNS int64 `json:"deadline_ns,omitempty"`
}

// BootNow is CLOCK_BOOTTIME in nanoseconds: the clock of the lease
// holder's self-judgement and of the watchdog's deadlines. It counts the
// time a host spends suspended, during which leases expire too.
func BootNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_BOOTTIME): %v", err)) // cannot fail on Linux
	}
	return ts.Nano()
}

type armed struct {
	match    proc.Match
	deadline int64 // BootNow
}

// killWithin bounds the kill of one batch of due workloads.
const killWithin = 5 * time.Second

// maxKillers bounds the batches being killed at once.
const maxKillers = 8

// Main runs the watchdog: it reads messages from in until EOF and kills
// the processes of each workload whose deadline passes. It logs to log,
// but never waits for it: the agent's stderr it shares may be a blocked
// or closed pipe, and a kill must not wait behind a log line.
func Main(in io.Reader, log io.Writer) int {
	// A closed log pipe must not kill the watchdog (EPIPE instead).
	signal.Ignore(syscall.SIGPIPE)
	lw := newDropWriter(log, 256<<10)
	defer lw.close()
	logger := slog.New(slog.NewJSONHandler(lw, nil)).With("component", "watchdog")
	msgs := make(chan message)
	go func() {
		defer close(msgs)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			var m message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				logger.Error("unreadable message from the agent; ignored", "error", err)
				continue
			}
			msgs <- m
		}
	}()
	state := map[string]armed{}
	timer := time.NewTimer(time.Hour)
	var killers sync.WaitGroup
	defer killers.Wait()
	slots := make(chan struct{}, maxKillers)
	for {
		next := time.Hour
		now := BootNow()
		for _, a := range state {
			next = min(next, time.Duration(a.deadline-now))
		}
		timer.Reset(max(next, 0))
		select {
		case m, ok := <-msgs:
			if !ok {
				if len(state) > 0 {
					logger.Info("the agent closed the watchdog pipe (it exited): its workloads are left running", "armed", len(state))
				}
				return 0
			}
			switch m.Op {
			case "arm":
				state[m.Workload] = armed{match: proc.Match{Env: m.Env, Cwd: m.Cwd, Comm: m.Comm}, deadline: m.DeadlineNS}
			case "disarm":
				delete(state, m.Workload)
			}
		case <-timer.C:
			now := BootNow()
			var names []string
			var ms []proc.Match
			var late []time.Duration
			for name, a := range state {
				if now < a.deadline {
					continue
				}
				delete(state, name)
				names, ms, late = append(names, name), append(ms, a.match), append(late, time.Duration(now-a.deadline))
			}
			if len(names) == 0 {
				continue
			}
			// Killed beside the loop, all due workloads in the same passes:
			// a slow kill delays neither the others nor later deadlines.
			killers.Add(1)
			go func() {
				defer killers.Done()
				slots <- struct{}{}
				defer func() { <-slots }()
				killed, left := proc.KillTrees(ms, killWithin)
				for i, name := range names {
					reason := "the agent did not renew the workload's ownership lease before it ran out"
					switch {
					case len(left[i]) > 0:
						logger.Error(reason+": workload processes survive SIGKILL", "workload", name, "late_by", late[i].String(), "killed", killed[i], "pids", left[i])
					case len(killed[i]) == 0:
						logger.Error(reason+": nothing to kill found (the workload's processes were already gone, or cannot be recognised)", "workload", name, "late_by", late[i].String(), "pids", killed[i])
					default:
						logger.Warn(reason+": workload killed", "workload", name, "late_by", late[i].String(), "pids", killed[i])
					}
				}
			}()
		}
	}
}

// dropWriter hands what is written to w from a goroutine of its own,
// through a bounded buffer: Write never blocks, and what does not fit is
// dropped (and counted in the next line that gets through).
type dropWriter struct {
	mu      sync.Mutex
	buf     [][]byte
	size    int
	limit   int
	dropped int
	wake    chan struct{}
	w       io.Writer
}

func newDropWriter(w io.Writer, limit int) *dropWriter {
	d := &dropWriter{w: w, limit: limit, wake: make(chan struct{}, 1)}
	go d.run()
	return d
}

func (d *dropWriter) Write(p []byte) (int, error) {
	d.mu.Lock()
	if d.size+len(p) > d.limit {
		d.dropped++
	} else {
		d.buf = append(d.buf, bytes.Clone(p))
		d.size += len(p)
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (d *dropWriter) run() {
	for range d.wake {
		d.mu.Lock()
		lines, dropped := d.buf, d.dropped
		d.buf, d.size, d.dropped = nil, 0, 0
		d.mu.Unlock()
		if dropped > 0 {
			_, _ = fmt.Fprintf(d.w, `{"level":"WARN","msg":"watchdog log lines dropped: the log was not being read","component":"watchdog","dropped":%d}`+"\n", dropped)
		}
		for _, l := range lines {
			_, _ = d.w.Write(l) // errors (a closed pipe) only lose the line
		}
	}
}

// close flushes what is buffered, waiting for it at most a moment.
func (d *dropWriter) close() {
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		empty := len(d.buf) == 0
		d.mu.Unlock()
		if empty {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Feeder is the agent's end: it starts the watchdog process and sends it
// arm and disarm messages. Sends never block the caller (a renewal holds
// the lease lock): a message that does not fit in the queue is dropped,
// which can only make the watchdog fire earlier, never later.
type Feeder struct {
	cmd    *exec.Cmd
	pipe   io.WriteCloser
	queue  chan message
	done   chan struct{}
	logger *slog.Logger
	mu     sync.Mutex
	closed bool
}

// Start runs `bin agent watchdog` in a session of its own (signals to the
// agent's process group do not reach it), with its log on stderr.
func Start(bin string, stderr io.Writer, logger *slog.Logger) (*Feeder, error) {
	cmd := exec.Command(bin, "agent", Subcommand)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	pipe, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the watchdog process %s: %w", bin, err)
	}
	f := &Feeder{cmd: cmd, pipe: pipe, queue: make(chan message, 256), done: make(chan struct{}), logger: logger}
	go f.write()
	logger.Info("watchdog started", "pid", cmd.Process.Pid)
	return f, nil
}

// PID is the watchdog process's pid.
func (f *Feeder) PID() int { return f.cmd.Process.Pid }

func (f *Feeder) write() {
	defer close(f.done)
	enc := json.NewEncoder(f.pipe)
	for m := range f.queue {
		if err := enc.Encode(m); err != nil {
			f.mu.Lock()
			closing := f.closed
			f.mu.Unlock()
			if closing {
				for range f.queue {
				}
				return
			}
			f.logger.Error("the watchdog process is gone: workloads are no longer killed if this agent stalls; restart the agent", "error", err)
			for range f.queue {
			}
			return
		}
	}
}

func (f *Feeder) send(m message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	select {
	case f.queue <- m:
	default:
		f.logger.Warn("watchdog queue full; message dropped", "op", m.Op, "workload", m.Workload)
	}
}

// Arm sets workload's deadline validFor from now; m finds its processes.
func (f *Feeder) Arm(workload string, m proc.Match, validFor time.Duration) {
	f.send(message{Op: "arm", Workload: workload, Env: m.Env, Cwd: m.Cwd, Comm: m.Comm, DeadlineNS: BootNow() + int64(validFor)})
}

// Disarm removes workload's deadline.
func (f *Feeder) Disarm(workload string) { f.send(message{Op: "disarm", Workload: workload}) }

// closeWait bounds how long Close waits for the watchdog to exit before
// it kills it.
var closeWait = 5 * time.Second

// Close closes the pipe (the watchdog disarms everything and exits) and
// waits for the process, at most closeWait: a watchdog that does not exit
// (stopped, or stuck) is killed, so that the agent's shutdown never hangs
// on it. Messages still queued are dropped: the close disarms them all.
func (f *Feeder) Close() error {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		close(f.queue)
	}
	f.mu.Unlock()
	// Closed first: a writer blocked on a full pipe (the watchdog is not
	// reading) returns at once.
	_ = f.pipe.Close()
	<-f.done
	exited := make(chan error, 1)
	go func() { exited <- f.cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-time.After(closeWait):
		f.logger.Warn("the watchdog process did not exit after its pipe was closed: killing it", "pid", f.cmd.Process.Pid, "waited", closeWait)
		_ = f.cmd.Process.Kill()
		err = <-exited
	}
	if err != nil {
		return fmt.Errorf("watchdog process: %w", err)
	}
	return nil
}
