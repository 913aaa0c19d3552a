// Package drivertest is the conformance suite every workload driver passes. It
// drives a real workload through the lifecycle the engine relies on and checks
// the states the driver reports. Import it only from tests.
package drivertest

import (
	"context"
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
