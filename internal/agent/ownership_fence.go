package agent

import (
	"context"
	"fmt"
	"time"
)

// stopDeadline is how long a holder that lost its lease gives its workload
// to stop, graceful stop and forced stop together. Unset, it is half of
// what the expiry leaves after one renewal interval and the margin, so the
// holder also gets at least one renewal attempt before it must stop.
func (c OwnershipConfig) stopDeadline() time.Duration {
	if c.StopDeadline > 0 {
		return c.StopDeadline
	}
	return (c.Expiry - c.RenewInterval - c.ClockSkewMargin) / 2
}

// fenceAfter is how long after its last successful renewal began a holder
// keeps a lease it cannot renew: then it stops the workload, within the
// stop deadline, so the workload is down expiry − margin after that
// renewal by the holder's monotonic clock — before any other node can see
// the lease expired, even with its clock the margin ahead.
func (c OwnershipConfig) fenceAfter() time.Duration {
	return c.Expiry - c.ClockSkewMargin - c.stopDeadline()
}

// validate enforces the timing inequality
//
//	renew_interval + stop_deadline + clock_skew_margin < expiry
//
// (fenceAfter longer than one renewal interval: a holder gets at least one
// more renewal attempt before it must start stopping, and its workload is
// down before the lease expires for anyone).
func (c OwnershipConfig) validate() error {
	stop := c.stopDeadline()
	if c.RenewInterval <= 0 || c.Expiry <= 0 || c.ClockSkewMargin < 0 {
		return fmt.Errorf("renew_interval and expiry must be positive and clock_skew_margin not negative")
	}
	if stop <= 0 || c.RenewInterval+stop+c.ClockSkewMargin >= c.Expiry {
		return fmt.Errorf("renew_interval (%s) + stop_deadline (%s) + clock_skew_margin (%s) must be less than expiry (%s): a node that cannot renew its lease must have stopped its workload before the lease expires for other nodes; raise expiry, or lower stop_deadline, renew_interval or clock_skew_margin",
			c.RenewInterval, stop, c.ClockSkewMargin, c.Expiry)
	}
	return nil
}

func (o *Owners) notRenewedReason(since time.Duration, wall time.Time, err error) string {
	msg := fmt.Sprintf("the ownership lease could not be renewed for %s (last renewed %s by the wall clock); a holder stops its workload %s after its last renewal so that it is down within the stop deadline (%s), before the lease expires (%s)",
		since.Round(time.Millisecond), wall.Format(time.RFC3339Nano), o.cfg.fenceAfter(), o.cfg.stopDeadline(), o.cfg.Expiry)
	if err != nil {
		msg += fmt.Sprintf(" (%v)", err)
	}
	return msg
}

func (o *Owners) setValid(workload string, from time.Duration) {
	o.vmu.Lock()
	defer o.vmu.Unlock()
	if o.fenced[workload] {
		return // reported lost: the workload is being stopped
	}
	if o.validFrom == nil {
		o.validFrom = map[string]time.Duration{}
	}
	o.validFrom[workload] = from
}

// clearValid forgets workload's validity; it reports whether the lease was
// still counted valid (not yet reported lost by the self-fence timer).
func (o *Owners) clearValid(workload string) bool {
	o.vmu.Lock()
	defer o.vmu.Unlock()
	_, ok := o.validFrom[workload]
	delete(o.validFrom, workload)
	return ok
}

func (o *Owners) isFenced(workload string) bool {
	o.vmu.Lock()
	defer o.vmu.Unlock()
	return o.fenced[workload]
}

// dropFencedLocked removes the held entries the self-fence timer reported
// lost. o.mu is held.
func (o *Owners) dropFencedLocked() {
	o.vmu.Lock()
	defer o.vmu.Unlock()
	for name := range o.fenced {
		delete(o.held, name)
		delete(o.fenced, name)
	}
}

// checkFences reports every held lease whose last successful renewal began
// more than fenceAfter ago (monotonic clock) as lost. It takes only vmu:
// a renewal whose write hangs on the shared volume (holding o.mu) cannot
// delay it.
func (o *Owners) checkFences() {
	now := o.clock.Mono()
	var lost []string
	var ages []time.Duration
	o.vmu.Lock()
	for name, from := range o.validFrom {
		if now-from > o.cfg.fenceAfter() {
			delete(o.validFrom, name)
			if o.fenced == nil {
				o.fenced = map[string]bool{}
			}
			o.fenced[name] = true
			lost, ages = append(lost, name), append(ages, now-from)
		}
	}
	o.vmu.Unlock()
	for i, name := range lost {
		reason := fmt.Sprintf("the ownership lease was not renewed for %s (monotonic clock), longer than the %s after which this node must stop its workload to have it down within the stop deadline (%s), before the lease expires (%s)",
			ages[i].Round(time.Millisecond), o.cfg.fenceAfter(), o.cfg.stopDeadline(), o.cfg.Expiry)
		o.logger.Error("ownership lease lost: stopping the workload on this node", "workload", name, "reason", reason)
		if o.lost != nil {
			o.goLost(name, reason)
		}
	}
}

// fenceLoop runs checkFences often (a tenth of the renewal interval, at
// most every 100 ms) until ctx ends, apart from the renewals.
func (o *Owners) fenceLoop(ctx context.Context) {
	tick := min(o.cfg.RenewInterval/10, 100*time.Millisecond)
	if tick <= 0 {
		tick = 10 * time.Millisecond
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(tick):
		}
		o.checkFences()
	}
}
