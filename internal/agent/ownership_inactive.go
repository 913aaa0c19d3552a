package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// stoppedHere checks, after a stop returned, that the driver reports the
// workload definitely inactive; otherwise the caller keeps the lease.
func (s *Server) stoppedHere(ctx context.Context, wl *workload) error {
	st, err := wl.driver.Status(context.WithoutCancel(ctx))
	if err == nil && st == api.StateInactive {
		return nil
	}
	msg := fmt.Sprintf("stop returned but the workload is still %s; the lease is kept (workload %s, node %s): its stop command must stop the workload before it exits; stop it again once it has", st, wl.cfg.Name, s.cfg.Node)
	if err != nil {
		return fmt.Errorf("%s: %w", msg, err)
	}
	return fmt.Errorf("%s", msg)
}

// confirmInactive notes that workload was seen inactive at now and reports
// whether it was already seen inactive at least one renewal interval
// before, with no other state seen in between.
func (o *Owners) confirmInactive(workload string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.inactiveSeen == nil {
		o.inactiveSeen = map[string]time.Time{}
	}
	first, ok := o.inactiveSeen[workload]
	if !ok || now.Before(first) {
		o.inactiveSeen[workload] = now
		return false
	}
	return now.Sub(first) >= o.cfg.RenewInterval
}

// clearInactive forgets an inactive observation: the workload was seen in
// another state since.
func (o *Owners) clearInactive(workload string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.inactiveSeen, workload)
}
