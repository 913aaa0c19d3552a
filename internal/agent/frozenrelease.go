package agent

import (
	"context"
	"errors"
	"fmt"
)

// releaseOrStop ends a freeze (quiesce or pause) of wl; the caller holds
// wl.actionMu. While this node still holds wl's ownership lease it runs
// release. Once the lease is gone another node may already run the workload
// on the same data, so resuming writes here would corrupt it: the workload
// is stopped instead, still under the lock, and a *NotOwnedHereError says so.
// A lease record that cannot be read is no proof of loss: the workload is
// released as usual.
func (s *Server) releaseOrStop(ctx context.Context, wl *workload, release func(context.Context) error) error {
	name := wl.cfg.Name
	verr := s.owners.Verify(name)
	var lost *leaseLostError
	if verr == nil || (!errors.As(verr, &lost) && s.owners.Holds(name)) {
		return release(ctx)
	}
	s.logger.Error("ownership lease lost while the workload was frozen for a backup: stopping it instead of resuming it", "workload", name, "reason", verr)
	if err := wl.driver.Stop(ctx); err != nil {
		s.driverErrors.Add(1)
		return fmt.Errorf("workload %s on node %s lost its ownership lease while frozen for a backup (%w) and could not be stopped; it is left frozen, stop it by hand: %w", name, s.cfg.Node, verr, err)
	}
	return &NotOwnedHereError{Reason: fmt.Sprintf("workload %s on node %s lost its ownership lease while frozen for a backup (%v): it was stopped instead of resumed and the backup failed", name, s.cfg.Node, verr)}
}
