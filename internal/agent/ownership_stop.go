package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// Killer is a driver that can force its workload down at once, without the
// graceful shutdown: SIGKILL of the exec workload's processes, QEMU quit
// then SIGKILL, PostgreSQL immediate shutdown then SIGKILL. Kill may run
// while a Stop of the same workload is still under way, and returns once
// the workload's processes are gone (or ctx ends).
type Killer interface {
	Kill(ctx context.Context) error
}

// boundedStop stops a workload whose lease this node lost, within the
// lease's stop deadline: the graceful stop gets two thirds of it; when it
// has not stopped the workload by then the driver's forced stop (Killer)
// gets the rest. It returns nil once the driver reports the workload
// inactive.
func (s *Server) boundedStop(wl *workload, deadline time.Duration) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	graceCtx, graceCancel := context.WithTimeout(ctx, deadline*2/3)
	defer graceCancel()
	stopped := make(chan error, 1)
	go func() { stopped <- wl.driver.Stop(graceCtx) }()
	var stopErr error
	select {
	case stopErr = <-stopped:
		if stopErr == nil && s.stoppedHere(ctx, wl) == nil {
			return nil
		}
	case <-graceCtx.Done():
		stopErr = fmt.Errorf("the graceful stop did not finish within %s", (deadline * 2 / 3).Round(time.Millisecond))
	}
	k, ok := wl.driver.(Killer)
	if !ok {
		return fmt.Errorf("stop %s within the lease's stop deadline %s: %w; the driver has no forced stop", wl.cfg.Name, deadline, stopErr)
	}
	s.logger.Error("the workload did not stop gracefully in time after its ownership lease was lost: forcing it down",
		"workload", wl.cfg.Name, "elapsed", time.Since(start), "stop_deadline", deadline, "error", stopErr)
	killErr := k.Kill(ctx)
	// Status gets its own short context: the deadline may have passed, and
	// the answer decides whether the claim note is kept.
	stCtx, stCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer stCancel()
	if st, err := wl.driver.Status(stCtx); err == nil && st == api.StateInactive {
		if time.Since(start) > deadline {
			s.logger.Error("the workload was forced down only after the lease's stop deadline; raise expiry or lower stop_deadline", "workload", wl.cfg.Name, "took", time.Since(start), "stop_deadline", deadline)
		}
		return nil
	}
	return fmt.Errorf("force %s down after its ownership lease was lost: %w", wl.cfg.Name, errors.Join(stopErr, killErr, fmt.Errorf("it is not reported inactive after the forced stop")))
}

// lockForFence takes wl's action lock for a stop after a lost lease, but
// waits for it at most a third of the stop deadline: an action holding it
// (a backup copying for minutes) must not delay the stop past the lease.
// When the lock stays taken, the workload is forced down without it (Kill
// may run beside another action) and false is returned.
func (s *Server) lockForFence(wl *workload) bool {
	deadline := s.owners.cfg.stopDeadline()
	wait := time.Now().Add(deadline / 3)
	for !wl.actionMu.TryLock() {
		if time.Now().After(wait) {
			if s.forceWithoutLock(wl, deadline-deadline/3) {
				return false
			}
			wl.actionMu.Lock() // no forced stop: stop once the action ends
			return true
		}
		time.Sleep(5 * time.Millisecond) // polling a mutex: no channel to wait on
	}
	return true
}

// forceWithoutLock kills wl without its action lock; false when the driver
// has no forced stop (the caller then waits for the lock).
func (s *Server) forceWithoutLock(wl *workload, within time.Duration) bool {
	name := wl.cfg.Name
	if s.owners.Holds(name) {
		return true // taken again since: nothing to stop
	}
	k, ok := wl.driver.(Killer)
	if !ok {
		s.logger.Error("the workload's lease was lost while another action holds it, and its driver has no forced stop; it is stopped once that action ends", "workload", name)
		return false
	}
	s.logger.Error("the workload's lease was lost while another action holds it: forcing the workload down without waiting", "workload", name)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := k.Kill(ctx); err != nil {
		s.driverErrors.Add(1)
		s.logger.Error("could not force the workload down after losing its ownership lease; stop it by hand", "workload", name, "error", err)
	}
	return true
}
