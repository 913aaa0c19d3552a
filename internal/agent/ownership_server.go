package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// CodeLeaseHeld refuses a start while another node holds the workload's
// ownership lease (409).
const CodeLeaseHeld = "lease_held"

// NotOwnedHereError refuses a backup of a workload that stopped, or whose
// ownership lease this node no longer holds, after the request was accepted.
type NotOwnedHereError struct{ Reason string }

func (e *NotOwnedHereError) Error() string { return e.Reason }

// fencedStart takes the ownership lease before the driver starts the
// workload; a start that fails gives the lease back unless the workload
// runs after all.
func (s *Server) fencedStart(wl *workload) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := s.owners.Acquire(ctx, wl.cfg.Name); err != nil {
			return err
		}
		if err := wl.driver.Start(ctx); err != nil {
			// Only a definite "inactive" gives the lease back: a workload
			// whose state is unknown or failed may run, or be starting; the
			// renewal keeps its lease until probes see it inactive twice.
			if st, serr := wl.driver.Status(context.WithoutCancel(ctx)); serr == nil && st == api.StateInactive {
				if rerr := s.owners.Release(wl.cfg.Name); rerr != nil {
					s.logger.Warn("could not release the ownership lease after a failed start", "workload", wl.cfg.Name, "error", rerr)
				}
			}
			return err
		}
		// The lease may have been lost while the driver started the
		// workload (a forced stop then found nothing to kill yet): it must
		// not run here without it.
		if !s.owners.Holds(wl.cfg.Name) {
			s.logger.Error("the ownership lease was lost while the workload started: stopping it again", "workload", wl.cfg.Name)
			if err := s.boundedStop(wl, s.owners.cfg.stopDeadline()); err != nil {
				s.driverErrors.Add(1)
				return fmt.Errorf("start %s: its ownership lease was lost while it started, and it could not be stopped again; stop it by hand: %w", wl.cfg.Name, err)
			}
			s.owners.disarmWatchdog(wl.cfg.Name)
			return fmt.Errorf("start %s: its ownership lease was lost while it started (another node took it over, or it could not be renewed); it was stopped again", wl.cfg.Name)
		}
		return nil
	}
}

// releasingStop gives the lease back once the workload stopped, so another
// node may start it at once instead of waiting for the lease to expire.
func (s *Server) releasingStop(wl *workload) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := wl.driver.Stop(ctx); err != nil {
			return err // it may still run: keep the lease
		}
		// A stop that returned is not proof: a workload without a stop
		// command, or with an asynchronous one, may still run.
		if err := s.stoppedHere(ctx, wl); err != nil {
			return err
		}
		if err := s.owners.Release(wl.cfg.Name); err != nil {
			s.logger.Warn("workload stopped but its ownership lease could not be released; other nodes wait for it to expire", "workload", wl.cfg.Name, "error", err)
		}
		return nil
	}
}

// leaseRefused answers a start refused by the lease; false when err is another error.
func (s *Server) leaseRefused(w http.ResponseWriter, wl *workload, err error) bool {
	var held *LeaseHeldError
	if !errors.As(err, &held) {
		return false
	}
	s.logger.Warn("start refused: another node holds the ownership lease", "workload", wl.cfg.Name, "holder", held.Record.Node, "generation", held.Record.Generation)
	s.writeError(w, http.StatusConflict, CodeLeaseHeld, fmt.Sprintf("start %s on node %s refused: %v", wl.cfg.Name, s.cfg.Node, err))
	return true
}

// observeOwnership adds the owner record to a probe's result and acts on
// what it shows: a workload active here with no live lease elsewhere is
// adopted; one active here while another node holds a valid lease is a
// conflict, reported and stopped here; a lease held for a workload found
// inactive here is released.
func (s *Server) observeOwnership(ctx context.Context, wl *workload, out *api.Workload) {
	name := wl.cfg.Name
	rec, ok, err := ReadOwnerRecord(s.cfg.SharedVolume, name)
	if err != nil {
		s.logger.Warn("cannot read the owner record", "workload", name, "error", err)
		return
	}
	held := s.owners.Holds(name)
	if ok {
		out.Owner = rec.View(held)
	}
	if out.State != api.StateInactive {
		s.owners.clearInactive(name)
	}
	switch out.State {
	case api.StateActive:
		if held {
			return
		}
		if ok && rec.Node != s.cfg.Node && rec.LiveAt(s.now(), s.owners.cfg.ClockSkewMargin) {
			out.OwnerConflict = fmt.Sprintf("workload %s is active on node %s while node %s holds its ownership lease (generation %d, expires %s)",
				name, s.cfg.Node, rec.Node, rec.Generation, rec.ExpiresAt().UTC().Format(time.RFC3339Nano))
		}
		s.background(wl, s.adoptOrFence)
	case api.StateInactive:
		if held && wl.actionMu.TryLock() {
			defer wl.actionMu.Unlock()
			// Re-checked under the lock: no start is half-way. Released only
			// when seen inactive twice, a renewal interval apart: a slow
			// start may look inactive for a moment.
			if st, err := wl.driver.Status(ctx); err == nil && st == api.StateInactive && s.owners.Holds(name) {
				if !s.owners.confirmInactive(name, s.now()) {
					s.logger.Info("workload found stopped here while this node holds its ownership lease: kept until seen stopped again a renewal interval later", "workload", name)
					return
				}
				s.logger.Warn("workload found stopped here while this node held its ownership lease: releasing the lease", "workload", name)
				if err := s.owners.Release(name); err != nil {
					s.logger.Warn("release the ownership lease", "workload", name, "error", err)
				}
				if out.Owner != nil {
					out.Owner.HeldHere = false
				}
			}
		}
	}
}

// background runs fn for wl once at a time.
func (s *Server) background(wl *workload, fn func(*workload)) {
	if !s.owners.begin(wl.cfg.Name) {
		return
	}
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		defer s.owners.end(wl.cfg.Name)
		fn(wl)
	}()
}

// StopBackground cancels background ownership work and waits for it, at
// most timeout.
func (s *Server) StopBackground(timeout time.Duration) bool {
	s.bgCancel()
	done := make(chan struct{})
	go func() { s.bgWG.Wait(); s.owners.lostWG.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// adoptOrFence decides, under the workload's lock, about a workload active
// here whose lease this node does not hold. Without a live lease elsewhere
// it is adopted (the lease is taken: an agent restarted under a running
// workload). If another node holds a lease, it is a conflict, and the copy
// here is stopped only when all of these hold: this node started it under a
// lease of its own and never stopped or released it since (its confirmed
// claim is still noted in state_dir), the other
// lease is newer (a higher generation: it was taken over from this node,
// e.g. while this agent was down), and it is valid even after the
// clock-skew margin. The holder of the newest valid lease is never stopped;
// a copy started by hand outside clusterguard is reported, not stopped,
// since the agent cannot tell which copy the operator meant.
func (s *Server) adoptOrFence(wl *workload) {
	name := wl.cfg.Name
	wl.actionMu.Lock()
	defer wl.actionMu.Unlock()
	cfg := s.owners.cfg
	ctx, cancel := context.WithTimeout(s.bgCtx, cfg.takeoverDelay()+2*time.Minute)
	defer cancel()
	if st, _ := wl.driver.Status(ctx); st != api.StateActive || s.owners.Holds(name) {
		return
	}
	_, err := s.owners.Acquire(ctx, name)
	if err == nil {
		s.logger.Warn("workload found active here with no live ownership lease elsewhere: lease taken (adopted)", "workload", name)
		return
	}
	var other *LeaseHeldError
	if !errors.As(err, &other) {
		s.logger.Error("workload active here but its ownership lease could not be taken", "workload", name, "error", err)
		return
	}
	rec := other.Record
	own, hadLease := s.owners.LastOwnClaim(name)
	if !hadLease || own.Generation >= rec.Generation {
		s.logger.Error("workload active here, apparently started outside clusterguard, while another node holds its ownership lease: left running; stop one copy by hand",
			"workload", name, "holder", rec.Node, "generation", rec.Generation)
		return
	}
	if !s.now().Before(rec.ExpiresAt().Add(-cfg.ClockSkewMargin)) {
		s.logger.Error("workload active here while another node's ownership lease may still be live: left running, resolve the conflict by hand",
			"workload", name, "holder", rec.Node, "generation", rec.Generation, "expires_at", rec.ExpiresAt())
		return
	}
	s.logger.Error("workload active here while another node holds its ownership lease: stopping it here",
		"workload", name, "own_generation", own.Generation, "holder", rec.Node, "generation", rec.Generation, "heartbeat_at", rec.HeartbeatAt, "expires_at", rec.ExpiresAt())
	if err := wl.driver.Stop(ctx); err != nil {
		s.driverErrors.Add(1)
		s.logger.Error("could not stop the conflicting workload here", "workload", name, "error", err)
		return
	}
	s.owners.ForgetClaim(name)
}

// ownershipLost stops a workload whose lease this node lost: taken over by
// another node, or not renewed for longer than the expiry.
func (s *Server) ownershipLost(name, reason string) {
	wl, ok := s.workloads[name]
	if !ok {
		return
	}
	if !s.lockForFence(wl) {
		return // forced down without the lock: another action held it
	}
	defer wl.actionMu.Unlock()
	if s.owners.Holds(name) {
		return // taken again since
	}
	s.logger.Error("stopping the workload: this node lost its ownership lease", "workload", name, "reason", reason, "stop_deadline", s.owners.cfg.stopDeadline())
	// Bounded by the lease (graceful, then forced): the workload must be
	// down before another node can take the lease over.
	// The claim stays noted while the workload may still run here, so a
	// later probe still fences this copy.
	if err := s.boundedStop(wl, s.owners.cfg.stopDeadline()); err != nil {
		s.driverErrors.Add(1)
		s.logger.Error("the workload still runs here after losing its ownership lease; stop it by hand", "workload", name, "error", err)
		return
	}
	s.owners.disarmWatchdog(name)
	s.owners.ForgetClaim(name)
}

// checkOwnedHere re-checks, under the workload's lock, that the workload is
// active here and that this node holds its lease, right before a copy.
func (s *Server) checkOwnedHere(ctx context.Context, wl *workload) error {
	name := wl.cfg.Name
	st, err := wl.driver.Status(ctx)
	if st != api.StateActive {
		reason := fmt.Sprintf("workload %s stopped on node %s (%s) after the backup was asked for; no copy was taken: it may have moved, ask the node where it runs now", name, s.cfg.Node, st)
		if err != nil {
			reason += ": " + err.Error()
		}
		return &NotOwnedHereError{Reason: reason}
	}
	if err := s.owners.Verify(name); err != nil {
		return &NotOwnedHereError{Reason: fmt.Sprintf("backup of %s on node %s refused: this node does not hold its ownership lease (%v); no copy was taken", name, s.cfg.Node, err)}
	}
	return nil
}

// RunOwnership adopts the workloads found active here at start and renews
// the held leases until ctx ends.
func (s *Server) RunOwnership(ctx context.Context) {
	defer s.startWatchdog()()
	s.owners.running.Store(true)
	for _, name := range s.names {
		if ctx.Err() != nil {
			return
		}
		_ = s.probe(ctx, s.workloads[name])
	}
	s.owners.Run(ctx)
}

// leaseElsewhere refuses an in-place restore while another node holds the
// workload's live ownership lease: the workload runs there, on this data.
func (s *Server) leaseElsewhere(wl *workload) error {
	rec, ok, err := ReadOwnerRecord(s.cfg.SharedVolume, wl.cfg.Name)
	if err != nil {
		return fmt.Errorf("in-place restore of %s refused: %w", wl.cfg.Name, err)
	}
	if ok && rec.Node != s.cfg.Node && rec.LiveAt(s.now(), s.owners.cfg.ClockSkewMargin) {
		return fmt.Errorf("in-place restore of %s on node %s refused: node %s holds its ownership lease (generation %d, expires %s unless renewed), so it runs there on this data; stop it there first",
			wl.cfg.Name, s.cfg.Node, rec.Node, rec.Generation, rec.ExpiresAt().UTC().Format(time.RFC3339Nano))
	}
	return nil
}
