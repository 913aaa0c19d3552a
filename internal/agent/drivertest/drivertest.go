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
)

// Timeout bounds each driver call made by the suite.
var Timeout = 30 * time.Second

// Run checks a driver against the agent.Driver contract. newDriver returns a
// driver for a fresh, stopped workload (and registers its own cleanup); the
// suite calls it once per subtest.
func Run(t *testing.T, newDriver func(t *testing.T) agent.Driver) {
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

func expectState(t *testing.T, d agent.Driver, when, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	got, err := d.Status(ctx)
	if err != nil || got != want {
		t.Fatalf("Status %s = %q, %v; want %q", when, got, err, want)
	}
}
