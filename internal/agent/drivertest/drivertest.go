// Package drivertest is the conformance suite every workload driver passes. It
// drives a real workload through the lifecycle the engine relies on and checks
// the states the driver reports. Import it only from tests.
package drivertest

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
)

// Timeout bounds each driver call made by the suite.
var Timeout = 30 * time.Second

// Workload is a fresh, stopped workload under test.
type Workload struct {
	Driver agent.Driver
	// Reopen builds a new driver for the same workload on the same node,
	// from the same config, as a restarted agent does.
	Reopen func() (agent.Driver, error)
	// Frozen reports whether the workload is held by a quiesce or pause
	// (its writes held, its processes stopped), judged from the workload
	// itself rather than from the driver's records.
	Frozen func(ctx context.Context) (bool, error)
	// Busy, when set, opens a client session that keeps the running
	// workload working (PostgreSQL: a long query in a backend) until it is
	// killed; the session ends at the test's cleanup.
	Busy func(t *testing.T)
	// Processes, when set, lists the workload's processes judged from the
	// system rather than from the driver (PostgreSQL: every process whose
	// working directory is the data directory).
	Processes func() []int
}

// Run checks a driver against the agent.Driver contract. newWorkload
// returns a fresh, stopped workload (and registers its own cleanup); the
// suite calls it once per subtest.
func Run(t *testing.T, newWorkload func(t *testing.T) Workload) {
	newDriver := func(t *testing.T) agent.Driver { return newWorkload(t).Driver }

	// An agent killed while a workload is frozen for a backup cannot keep
	// its promise to release it; the driver the next agent builds does.
	t.Run("NewInstanceThawsWhatAKilledPredecessorFroze", func(t *testing.T) {
		w := newWorkload(t)
		call(t, "Start", w.Driver.Start)
		freezes := []struct {
			name   string
			freeze func(context.Context) error
		}{{"Quiesce", w.Driver.Quiesce}}
		if p, ok := w.Driver.(agent.Pauser); ok && p.CanPause() {
			freezes = append(freezes, struct {
				name   string
				freeze func(context.Context) error
			}{"Pause", p.Pause})
		}
		for _, f := range freezes {
			call(t, f.name, f.freeze)
			expectFrozen(t, w, "after "+f.name, true)
			// The first driver is abandoned without a thaw: its agent was killed.
			again, err := w.Reopen()
			if err != nil {
				t.Fatalf("a new driver after %s: %v", f.name, err)
			}
			expectFrozen(t, w, "once a new driver was built after "+f.name, false)
			expectState(t, again, "after the new driver thawed it", api.StateActive)
			// Thawing an unfrozen workload is harmless, and the new driver works.
			call(t, "Thaw by the new driver", again.Thaw)
			if third, err := w.Reopen(); err != nil {
				t.Fatalf("a third driver: %v", err)
			} else {
				expectState(t, third, "after a third driver was built", api.StateActive)
			}
			expectFrozen(t, w, "after a further restart", false)
		}
		call(t, "Stop", w.Driver.Stop)
	})

	t.Run("Lifecycle", func(t *testing.T) {
		d := newDriver(t)
		expectState(t, d, "a fresh workload", api.StateInactive)

		call(t, "Start", d.Start)
		expectState(t, d, "after Start", api.StateActive)
		call(t, "Start again", d.Start) // idempotent
		expectState(t, d, "after a second Start", api.StateActive)

		call(t, "Quiesce", d.Quiesce)
		expectState(t, d, "while quiesced", api.StateActive)
		call(t, "Thaw", d.Thaw)
		expectState(t, d, "after Thaw", api.StateActive)

		call(t, "Stop", d.Stop)
		expectState(t, d, "after Stop", api.StateInactive)
		call(t, "Stop again", d.Stop) // idempotent
		expectState(t, d, "after a second Stop", api.StateInactive)
	})

	t.Run("RestartAfterStop", func(t *testing.T) {
		d := newDriver(t)
		for range 2 {
			call(t, "Start", d.Start)
			expectState(t, d, "after Start", api.StateActive)
			call(t, "Stop", d.Stop)
			expectState(t, d, "after Stop", api.StateInactive)
		}
	})

	// The forced stop of a workload whose ownership lease was lost: it must
	// bring even a frozen workload down quickly, and leave nothing that
	// keeps the next start from working.
	t.Run("KillForcesTheWorkloadDown", func(t *testing.T) {
		d := newDriver(t)
		k, ok := d.(agent.Killer)
		if !ok {
			t.Skip("the driver has no forced stop")
		}
		call(t, "Start", d.Start)
		call(t, "Quiesce", d.Quiesce)
		began := time.Now()
		call(t, "Kill", k.Kill)
		if took := time.Since(began); took > 3*time.Second {
			t.Errorf("Kill took %v; a forced stop must fit in a lease's stop deadline (seconds)", took)
		}
		expectState(t, d, "after Kill", api.StateInactive)
		call(t, "Kill again", k.Kill) // idempotent
		call(t, "Start after Kill", d.Start)
		expectState(t, d, "after a Start following Kill", api.StateActive)
		call(t, "Stop", d.Stop)
	})

	// The agent's watchdog kills a stalled agent's workload by an
	// environment entry of its processes: it must find the running
	// workload, and nothing once it stopped.
	t.Run("WatchdogEnvFindsTheWorkload", func(t *testing.T) {
		d := newDriver(t)
		wt, ok := d.(agent.WatchdogTarget)
		if !ok {
			t.Skip("the driver's workloads are not covered by the watchdog")
		}
		call(t, "Start", d.Start)
		if pids := proc.WithEnv(wt.WatchdogEnv()); len(pids) == 0 {
			t.Errorf("no process carries %q while the workload runs", wt.WatchdogEnv())
		}
		call(t, "Stop", d.Stop)
		if !proc.WaitUntil(context.Background(), Timeout, func() bool { return len(proc.WithEnv(wt.WatchdogEnv())) == 0 }) {
			t.Errorf("processes %v still carry %q after Stop", proc.WithEnv(wt.WatchdogEnv()), wt.WatchdogEnv())
		}
	})

	// A forced stop and the watchdog's kill leave no process of the
	// workload behind, even one doing work for an open client session
	// (a PostgreSQL backend, whose process title hides the environment
	// entry the watchdog looks for); while one is left the driver does not
	// report the workload inactive.
	t.Run("KillLeavesNoProcessOfTheWorkload", func(t *testing.T) {
		for _, by := range []string{"the watchdog", "Kill"} {
			// A fresh workload each: a process SIGKILLed may stay a zombie
			// for a while under a lazy init, and hold its port.
			w := newWorkload(t)
			wt, ok := w.Driver.(agent.WatchdogTarget)
			k, kok := w.Driver.(agent.Killer)
			if !ok || !kok || w.Processes == nil {
				t.Skip("the driver's workloads are not covered by the watchdog, or the test cannot list them")
			}
			call(t, "Start", w.Driver.Start)
			if w.Busy != nil {
				w.Busy(t)
			}
			before := w.Processes()
			if len(before) == 0 {
				t.Fatal("no process of the running workload found")
			}
			if by == "the watchdog" {
				if _, left := proc.KillTree(agent.WatchdogMatch(wt), 5*time.Second); len(left) > 0 {
					t.Errorf("the watchdog's kill left %v", left)
				}
			} else {
				call(t, "Kill", k.Kill)
			}
			if left := w.Processes(); len(left) > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), Timeout)
				st, err := w.Driver.Status(ctx)
				cancel()
				t.Errorf("processes %v of the workload (of %v) still run after %s killed it; Status says %q (%v)", left, before, by, st, err)
				if st == api.StateInactive {
					t.Errorf("Status reports %q while processes %v of the workload run", st, left)
				}
				for _, p := range left {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			}
			call(t, "Kill to clean up", k.Kill)
			expectState(t, w.Driver, "after "+by+" killed it", api.StateInactive)
		}
	})

	t.Run("StatusHonoursCancelledContext", func(t *testing.T) {
		d := newDriver(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan struct{})
		var state string
		var err error
		go func() { defer close(done); state, err = d.Status(ctx) }()
		select {
		case <-done:
		case <-time.After(Timeout):
			t.Fatalf("Status on a cancelled context did not return within %v", Timeout)
		}
		// It could not have probed anything, so it must not claim a state.
		if err == nil || state != api.StateUnknown {
			t.Errorf("Status on a cancelled context = %q, %v; want %q with an error", state, err, api.StateUnknown)
		}
	})
}

func call(t *testing.T, what string, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func expectFrozen(t *testing.T, w Workload, when string, want bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	got, err := w.Frozen(ctx)
	if err != nil {
		t.Fatalf("is the workload frozen %s: %v", when, err)
	}
	if got != want {
		t.Fatalf("workload frozen %s = %v, want %v", when, got, want)
	}
}

func expectState(t *testing.T, d agent.Driver, when, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	got, err := d.Status(ctx)
	if err != nil || got != want {
		t.Fatalf("Status %s = %q, %v; want %q", when, got, err, want)
	}
}
