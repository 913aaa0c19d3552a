package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// keepLoop heartbeats and renews leadership every Tick until ctx ends. Run
// starts it and stop ends it only after every run ended, so a daemon
// finishing its runs during StopGrace still looks alive (its runs are not
// retried by another daemon) and still leads (their slot writes are
// accepted).
func (d *Daemon) keepLoop(ctx context.Context) {
	t := time.NewTicker(d.o.Tick)
	defer t.Stop()
	for {
		errs := d.keep(ctx, d.now())
		d.mu.Lock()
		d.keepErr = ""
		if err := errors.Join(errs...); err != nil {
			d.keepErr = err.Error()
		}
		d.mu.Unlock()
		if len(errs) > 0 {
			d.log.WarnContext(ctx, "heartbeat or leadership renewal", "error", errors.Join(errs...).Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// keep heartbeats and acquires or renews leadership when due. A stopping
// daemon renews the leadership it holds but acquires none.
func (d *Daemon) keep(ctx context.Context, now time.Time) []error {
	d.keepMu.Lock()
	defer d.keepMu.Unlock()
	var errs []error
	if err := d.heartbeat(ctx, now); err != nil {
		errs = append(errs, err)
	}
	d.mu.Lock()
	stopping, leader := d.stopping, d.leader
	d.mu.Unlock()
	if !stopping || leader {
		if _, err := d.lead(ctx, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// keepErrors is what tick reports of heartbeat and leadership: done here
// when no keeper runs (tests drive tick alone), else the keeper's last error.
func (d *Daemon) keepErrors(ctx context.Context, now time.Time) []error {
	d.mu.Lock()
	keeper, keepErr := d.keeper, d.keepErr
	d.mu.Unlock()
	if !keeper {
		return d.keep(ctx, now)
	}
	if keepErr != "" {
		return []error{errors.New(keepErr)}
	}
	return nil
}

// recoverTimeout bounds one Recover call (it probes clusters, and a node
// that does not answer can hold it for a probe timeout per operation).
const recoverTimeout = RecoverEvery

// recover starts Options.Recover in the background when due (on taking
// leadership, then every RecoverEvery) and none is in progress, and sweeps
// the metrics of deleted groups. It never
// holds up a tick: failover, claims and, above all, heartbeat and renewal
// go on meanwhile. It returns the previous call's error.
func (d *Daemon) recover(now time.Time) error {
	d.mu.Lock()
	due := !d.recovering && (d.lastRecover.IsZero() || now.Sub(d.lastRecover) >= RecoverEvery)
	if due {
		d.lastRecover, d.recovering = now, d.o.Recover != nil
	}
	prev := d.recoverErr
	d.mu.Unlock()
	if due {
		if err := d.sweepDeletedGroups(d.runCtx); err != nil {
			d.log.Warn("metrics of deleted groups not swept", "error", err.Error())
		}
	}
	if due && d.o.Recover != nil {
		ctx, cancel := context.WithTimeout(d.runCtx, recoverTimeout)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer cancel()
			err := d.o.Recover(ctx)
			if err != nil {
				err = fmt.Errorf("recovering work left by a dead provider or daemon: %w", err)
				d.log.WarnContext(ctx, "recovery", "error", err.Error())
			}
			d.mu.Lock()
			d.recovering, d.recoverErr = false, err
			d.mu.Unlock()
		}()
	}
	return prev
}
