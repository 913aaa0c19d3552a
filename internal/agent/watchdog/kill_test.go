package watchdog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
)

// A process that dropped the workload's environment entry (as PostgreSQL
// backends and setproctitle programs do) is killed with its parent.
func TestWatchdogKillsTheWholeProcessTree(t *testing.T) {
	env := "CLUSTERGUARD_WATCHDOG_TEST=" + strconv.Itoa(os.Getpid()) + "-tree"
	cmd := exec.Command("sh", "-c", `env -i sleep 300 & echo $!; wait`)
	cmd.Env = []string{"PATH=/usr/bin:/bin", env}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done; _ = (&os.Process{Pid: child}).Kill() })
	h := startMain(t)
	h.send(arm("tree", env, 50*time.Millisecond))
	waitClosed(t, done, "the workload's parent killed")
	if !proc.WaitUntil(context.Background(), 10*time.Second, func() bool { return !proc.Alive(child) }) {
		t.Fatalf("the workload's child %d, without the environment entry, survives the watchdog", child)
	}
}

// blockedWriter never returns from Write: a log pipe nobody reads.
type blockedWriter struct{ release chan struct{} }

func (b blockedWriter) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

// A log that blocks does not hold up the kill.
func TestWatchdogKillsWhileItsLogBlocks(t *testing.T) {
	env := "CLUSTERGUARD_WATCHDOG_TEST=" + strconv.Itoa(os.Getpid()) + "-blocked"
	_, exited := sleeper(t, env)
	r, w := io.Pipe()
	log := blockedWriter{release: make(chan struct{})}
	done := make(chan int, 1)
	go func() { done <- Main(r, log) }()
	t.Cleanup(func() { close(log.release); _ = w.Close(); <-done })
	// Sent beside the test: a watchdog stuck on its log stops reading.
	go func() {
		_, _ = w.Write([]byte("not json\n")) // logged: the log is now stuck
		_ = json.NewEncoder(w).Encode(arm("blocked", env, 50*time.Millisecond))
	}()
	waitClosed(t, exited, "the workload killed while the watchdog's log blocks")
}

// syncBuffer is a log the test reads while the watchdog writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A deadline that passes with nothing to kill is an error: the workload's
// processes cannot be recognised, or something else stopped them.
func TestWatchdogReportsNothingToKillAsAnError(t *testing.T) {
	r, w := io.Pipe()
	var log syncBuffer
	done := make(chan int, 1)
	go func() { done <- Main(r, &log) }()
	t.Cleanup(func() { _ = w.Close(); <-done })
	env := "CLUSTERGUARD_WATCHDOG_TEST=" + strconv.Itoa(os.Getpid()) + "-nothing"
	if err := json.NewEncoder(w).Encode(arm("ghost", env, 10*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if !proc.WaitUntil(context.Background(), 10*time.Second, func() bool { return strings.Contains(log.String(), `"workload":"ghost"`) }) {
		t.Fatalf("nothing logged for the due workload: %q", log.String())
	}
	if !strings.Contains(log.String(), `"level":"ERROR"`) || !strings.Contains(log.String(), "nothing to kill found") {
		t.Fatalf("a kill that found nothing is not logged as an error: %q", log.String())
	}
}

// The watchdog helper process of TestWatchdogSurvivesAClosedLogPipe.
func TestMain(m *testing.M) {
	if os.Getenv("CLUSTERGUARD_WATCHDOG_HELPER") == "1" {
		os.Exit(Main(os.Stdin, os.Stderr))
	}
	os.Exit(m.Run())
}

// A watchdog whose stderr is a pipe nobody reads any more (the agent's
// log collector went away) is not killed by SIGPIPE when it logs.
func TestWatchdogSurvivesAClosedLogPipe(t *testing.T) {
	env := "CLUSTERGUARD_WATCHDOG_TEST=" + strconv.Itoa(os.Getpid()) + "-sigpipe"
	_, exited := sleeper(t, env)
	lr, lw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	_ = lr.Close() // every write to the log now raises SIGPIPE
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{"CLUSTERGUARD_WATCHDOG_HELPER=1", "PATH=/usr/bin:/bin"}
	cmd.Stderr = lw
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = lw.Close()
	waited := make(chan error, 1)
	gone := make(chan struct{})
	go func() { waited <- cmd.Wait(); close(gone) }()
	t.Cleanup(func() { _ = in.Close(); _ = cmd.Process.Kill(); <-gone })
	if _, err := in.Write([]byte("not json\n")); err != nil { // logged at once
		t.Fatal(err)
	}
	if err := json.NewEncoder(in).Encode(arm("sigpipe", env, 300*time.Millisecond)); err != nil {
		t.Fatalf("the watchdog is gone after logging to a closed pipe: %v", err)
	}
	select {
	case <-exited:
	case err := <-waited:
		t.Fatalf("the watchdog exited (%v) before the deadline: a closed log pipe killed it", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the workload was not killed within 10s")
	}
}

// Close does not hang on a watchdog that does not exit when its pipe is
// closed: it is killed after closeWait.
func TestFeederCloseKillsAWatchdogThatDoesNotExit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stuck")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexec sleep 300\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := closeWait
	closeWait = 200 * time.Millisecond
	t.Cleanup(func() { closeWait = old })
	f, err := Start(bin, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	pid := f.PID()
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		_ = (&os.Process{Pid: pid}).Kill()
		t.Fatal("Close hangs on a watchdog process that does not exit")
	}
	if proc.Alive(pid) {
		t.Fatalf("the watchdog process %d still runs after Close", pid)
	}
}
