package agent

import (
	"context"
	"fmt"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// restoreConflictError refuses an in-place restore whose workload was
// started, here or on another node, after the restore was accepted (409).
type restoreConflictError struct{ msg string }

func (e *restoreConflictError) Error() string { return e.msg }

// restoreAfterDownloadHook, when set by a test, runs after an in-place
// restore's download, before its final re-check.
var restoreAfterDownloadHook func()

// recheckInPlace re-checks, with wl.actionMu held, right before an in-place
// restore replaces the workload's data, that the workload does not run
// here and that no other node holds its live lease.
func (s *Server) recheckInPlace(ctx context.Context, wl *workload) error {
	name := wl.cfg.Name
	st, err := wl.driver.Status(ctx)
	// The same rule as the check when the restore was accepted: refused
	// while active here.
	if st == api.StateActive {
		msg := fmt.Sprintf("in-place restore of %s on node %s refused: the workload is %s here now (started after the restore was asked for); the previous data is untouched: stop it, then restore again", name, s.cfg.Node, st)
		if err != nil {
			msg += ": " + err.Error()
		}
		return &restoreConflictError{msg: msg}
	}
	if err := s.leaseElsewhere(wl); err != nil {
		return &restoreConflictError{msg: err.Error() + "; the previous data is untouched"}
	}
	return nil
}
