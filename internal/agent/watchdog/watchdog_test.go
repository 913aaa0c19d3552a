package watchdog

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// sleeper starts a process carrying env that runs until killed; it is
// reaped in the background and killed at cleanup.
func sleeper(t *testing.T, env string) (pid int, exited <-chan struct{}) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	cmd.Env = []string{"PATH=/usr/bin:/bin", env}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	return cmd.Process.Pid, done
}

type harness struct {
	t    *testing.T
	w    *io.PipeWriter
	enc  *json.Encoder
	done chan int
}

func startMain(t *testing.T) *harness {
	r, w := io.Pipe()
	h := &harness{t: t, w: w, enc: json.NewEncoder(w), done: make(chan int, 1)}
	go func() { h.done <- Main(r, io.Discard) }()
	t.Cleanup(func() { _ = w.Close() })
	return h
}

func (h *harness) send(m message) {
	h.t.Helper()
	if err := h.enc.Encode(m); err != nil {
		h.t.Fatal(err)
	}
}

func arm(workload, env string, in time.Duration) message {
	return message{Op: "arm", Workload: workload, Env: env, DeadlineNS: monoNow() + int64(in)}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10s", what)
	}
}

func alive(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

func TestWatchdogKillsAWorkloadWhoseFeedStops(t *testing.T) {
	env := "CLUSTERGUARD_WATCHDOG_TEST=" + strconv.Itoa(os.Getpid()) + "-stops"
	_, exited := sleeper(t, env)
	h := startMain(t)
	h.send(arm("web", env, 50*time.Millisecond))
	waitClosed(t, exited, "the workload killed once its deadline passed")
}

// Disarmed workloads and, once the pipe ends (the agent exited), every
// workload are left running; a feed that keeps coming keeps it alive.
func TestWatchdogLeavesDisarmedWorkloadsAndExitsAtEOF(t *testing.T) {
	base := "CLUSTERGUARD_WATCHDOG_TEST=" + strconv.Itoa(os.Getpid())
	_, disarmed := sleeper(t, base+"-disarmed")
	_, fed := sleeper(t, base+"-fed")
	_, left := sleeper(t, base+"-left")
	_, probe := sleeper(t, base+"-probe")
	h := startMain(t)
	h.send(arm("disarmed", base+"-disarmed", 30*time.Millisecond))
	h.send(message{Op: "disarm", Workload: "disarmed"})
	h.send(arm("fed", base+"-fed", 3*time.Second))
	h.send(arm("left", base+"-left", time.Hour))
	h.send(arm("probe", base+"-probe", 100*time.Millisecond))
	waitClosed(t, probe, "the probe workload killed at its deadline")
	h.send(arm("fed", base+"-fed", time.Hour)) // fed again before its deadline
	if !alive(disarmed) || !alive(fed) {
		t.Fatalf("a disarmed (alive %v) or fed (alive %v) workload was killed", alive(disarmed), alive(fed))
	}
	_ = h.w.Close()
	select {
	case code := <-h.done:
		if code != 0 {
			t.Fatalf("watchdog exit code %d at EOF", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog did not exit when its pipe ended")
	}
	if !alive(left) || !alive(fed) {
		t.Fatal("the watchdog killed a workload when its pipe ended")
	}
}
