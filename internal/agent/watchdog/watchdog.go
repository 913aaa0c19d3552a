// Package watchdog kills a node's workloads when their agent stops renewing
// their ownership leases, whatever happens to the agent: it is a separate
// process (the hidden subcommand `agent watchdog` of the same binary) that
// the agent feeds through a pipe. After every successful renewal the agent
// arms the workload's deadline (the end of its lease validity by the
// agent's monotonic clock: expiry − clock_skew_margin after the renewal
// began); when a deadline passes without a new feed — the agent is stopped
// (SIGSTOP, a frozen VM), its renewal goroutine starves, or a renewal hangs
// on the shared volume — the watchdog SIGKILLs every process carrying the
// workload's identifying environment entry, repeating until none is left.
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
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
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
	// DeadlineNS is when the lease stops being valid, on the host's
	// CLOCK_MONOTONIC (shared by both processes): a message read late, by a
	// watchdog that was itself descheduled, still fires on time.
	DeadlineNS int64 `json:"deadline_ns,omitempty"`
}

// monoNow is CLOCK_MONOTONIC in nanoseconds.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_MONOTONIC): %v", err)) // cannot fail on Linux
	}
	return ts.Nano()
}

type armed struct {
	env      string
	deadline time.Time // carries the monotonic reading
}

// Main runs the watchdog: it reads messages from in until EOF and kills
// the processes of each workload whose deadline passes. It logs to log.
func Main(in io.Reader, log io.Writer) int {
	logger := slog.New(slog.NewJSONHandler(log, nil)).With("component", "watchdog")
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
	for {
		next := time.Hour
		for _, a := range state {
			next = min(next, time.Until(a.deadline))
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
				state[m.Workload] = armed{env: m.Env, deadline: time.Now().Add(time.Duration(m.DeadlineNS - monoNow()))}
			case "disarm":
				delete(state, m.Workload)
			}
		case <-timer.C:
			now := time.Now()
			for name, a := range state {
				if now.Before(a.deadline) {
					continue
				}
				delete(state, name)
				logger.Error("the agent did not renew the workload's ownership lease before it ran out: killing the workload's processes",
					"workload", name, "late_by", now.Sub(a.deadline).String())
				killed, left := kill(a.env, 5*time.Second)
				if len(left) > 0 {
					logger.Error("workload processes survive SIGKILL", "workload", name, "pids", left)
				} else {
					logger.Warn("workload killed", "workload", name, "pids", killed)
				}
			}
		}
	}
}

// kill SIGKILLs every process carrying env until none is left or within
// passes; it returns the pids it signalled and those still alive.
func kill(env string, within time.Duration) (killed, left []int) {
	if env == "" {
		return nil, nil
	}
	deadline := time.Now().Add(within)
	for {
		pids := proc.WithEnv(env)
		if len(pids) == 0 || time.Now().After(deadline) {
			return killed, pids
		}
		for _, pid := range pids {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed = append(killed, pid)
			}
		}
		time.Sleep(10 * time.Millisecond) // let the kernel reap before looking again
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

// Arm sets workload's deadline validFor from now.
func (f *Feeder) Arm(workload, env string, validFor time.Duration) {
	f.send(message{Op: "arm", Workload: workload, Env: env, DeadlineNS: monoNow() + int64(validFor)})
}

// Disarm removes workload's deadline.
func (f *Feeder) Disarm(workload string) { f.send(message{Op: "disarm", Workload: workload}) }

// Close closes the pipe (the watchdog disarms everything and exits) and
// waits for the process.
func (f *Feeder) Close() error {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		close(f.queue)
	}
	f.mu.Unlock()
	<-f.done
	_ = f.pipe.Close()
	err := f.cmd.Wait()
	if err != nil {
		return fmt.Errorf("watchdog process: %w", err)
	}
	return nil
}
