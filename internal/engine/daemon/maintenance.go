package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// applyRetention applies, after a run, the schedule's own retention tier
// (forget among its tagged points; prune at most every PruneEvery per
// repository) and then the group's retention, as the provider does after a
// clusterguard_backup_run. Failures are logged: the next run tries again.
func (d *Daemon) applyRetention(ctx context.Context, s catalog.Schedule) {
	if why := d.leadsInCatalog(ctx); why != "" {
		d.log.WarnContext(ctx, "retention skipped: "+why+"; the leader applies it after its next run", "schedule", s.Name)
		return
	}
	g, err := d.store.GetGroup(ctx, s.Group)
	if err != nil {
		d.log.WarnContext(ctx, "retention not applied: reading the group", "schedule", s.Name, "group", s.Group, "error", err.Error())
		return
	}
	if s.Retention != (catalog.Retention{}) {
		removed, err := d.eng.ApplyScheduleRetention(ctx, s.Group, runTags(s), s.Retention)
		if err != nil {
			d.log.WarnContext(ctx, "schedule retention not applied; it is applied again after the next run", "schedule", s.Name, "error", err.Error())
		} else if removed > 0 {
			d.log.InfoContext(ctx, "schedule retention forgot recovery points", "schedule", s.Name, "removed", removed)
			d.maybePrune(ctx, g.Repository)
		}
	}
	if _, err := d.eng.ApplyRetention(ctx, s.Group); err != nil {
		d.log.WarnContext(ctx, "group retention not applied; it is applied again after the next run", "group", s.Group, "error", err.Error())
	}
}

func (d *Daemon) maybePrune(ctx context.Context, repo string) {
	now := d.now()
	d.mu.Lock()
	last, stopping := d.lastPrune[repo], d.stopping
	due := !stopping && (last.IsZero() || now.Sub(last) >= PruneEvery)
	if due {
		d.lastPrune[repo] = now
	}
	d.mu.Unlock()
	if !due {
		return // a stopping daemon starts no prune (it holds an exclusive lock)
	}
	if why := d.leadsInCatalog(ctx); why != "" {
		d.log.WarnContext(ctx, "prune skipped: "+why, "repository", repo)
		return
	}
	st, err := d.eng.PruneRepository(ctx, repo)
	if err != nil {
		d.log.WarnContext(ctx, "prune failed; space is reclaimed by the next prune", "repository", repo, "error", err.Error())
		return
	}
	d.log.InfoContext(ctx, "repository pruned", "repository", repo, "stats", fmt.Sprintf("%+v", st))
}

// maybeVerify starts the schedule's verification of its group's repository
// when VerifyEvery has passed since the last one this daemon made (a new
// leader verifies at once: the result is kept in memory, see doc.go).
func (d *Daemon) maybeVerify(ctx context.Context, s catalog.Schedule, now time.Time) {
	if s.VerifyEvery <= 0 {
		return
	}
	d.mu.Lock()
	last, stopping := d.lastVerify[s.Name], d.stopping
	d.mu.Unlock()
	if stopping || (!last.IsZero() && now.Sub(last) < s.VerifyEvery) {
		return
	}
	g, err := d.store.GetGroup(ctx, s.Group)
	if err != nil {
		d.log.WarnContext(ctx, "scheduled verification: reading the group", "schedule", s.Name, "error", err.Error())
		return
	}
	d.mu.Lock()
	if d.verifying[g.Repository] {
		d.mu.Unlock()
		return
	}
	d.verifying[g.Repository] = true
	d.lastVerify[s.Name] = now
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		res := d.verify(d.runCtx, g.Repository)
		d.mu.Lock()
		delete(d.verifying, g.Repository)
		d.verifications[s.Name] = res
		d.mu.Unlock()
		d.metrics.observeVerify(res)
		if !res.OK {
			d.metrics.failure(s.Group, causeVerify)
			d.log.Error("scheduled verification found problems", "schedule", s.Name, "repository", g.Repository, "summary", res.Summary)
		} else {
			d.log.Info("scheduled verification passed", "schedule", s.Name, "repository", g.Repository)
		}
	}()
}

// verify reads every pack of the repository (like a PBS verify job).
func (d *Daemon) verify(ctx context.Context, name string) VerifyResult {
	res := VerifyResult{Repository: name, At: d.now().UTC()}
	repo, closeRepo, err := d.eng.OpenRepository(ctx, name)
	if err != nil {
		res.Summary = fmt.Sprintf("opening repository %q to verify it: %v", name, err)
		return res
	}
	defer closeRepo()
	rep, err := repo.Verify(ctx, repository.VerifyOptions{ReadData: true})
	if err != nil {
		res.Summary = fmt.Sprintf("verifying repository %q: %v", name, err)
		return res
	}
	res.OK, res.Summary = rep.OK(), rep.String()
	return res
}

// seedLastSuccess loads, on taking leadership, the newest recovery point
// per workload so the RPO metrics are right before the first run.
func (d *Daemon) seedLastSuccess(ctx context.Context) {
	groups, err := d.store.ListGroups(ctx, "")
	if err != nil {
		d.log.WarnContext(ctx, "reading groups for the RPO metrics", "error", err.Error())
		return
	}
	for _, g := range groups {
		d.metrics.setRPO(g.Name, g.RPO)
		points, err := d.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Group: g.Name})
		if err != nil {
			d.log.WarnContext(ctx, "reading recovery points for the RPO metrics", "group", g.Name, "error", err.Error())
			continue
		}
		for _, p := range points {
			d.noteSuccess(g.Name, p.Workload, p.CreatedAt)
		}
	}
}

// recordSuccesses notes each workload a run captured.
func (d *Daemon) recordSuccesses(group string, rep engine.RunReport) {
	for _, st := range rep.Steps {
		if st.Outcome == catalog.StepSucceeded {
			d.noteSuccess(group, st.Workload, st.FinishedAt)
		}
	}
	if rep.Run.Status == catalog.RunSucceeded {
		d.metrics.groupLastSuccess.WithLabelValues(group).Set(float64(rep.Run.FinishedAt.UnixNano()) / 1e9)
	}
	if g, err := d.store.GetGroup(context.Background(), group); err == nil {
		d.metrics.setRPO(group, g.RPO)
	}
}

func (d *Daemon) noteSuccess(group, workload string, at time.Time) {
	k := [2]string{group, workload}
	d.mu.Lock()
	if at.After(d.lastSuccess[k]) {
		d.lastSuccess[k] = at
		d.metrics.lastSuccess.WithLabelValues(group, workload).Set(float64(at.UnixNano()) / 1e9)
	}
	d.mu.Unlock()
}

// updateRPO sets "RPO met" per workload whose group has an RPO.
func (d *Daemon) updateRPO(_ context.Context, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, at := range d.lastSuccess {
		d.metrics.updateRPOMet(k[0], k[1], now.Sub(at))
	}
}

// leadsInCatalog says why this daemon must not change recovery points
// ("" if it may): it must hold the scheduler leadership with its current
// token, unexpired, as recorded in the catalog (not only in its memory: a
// daemon whose renewals stopped may not know it was deposed).
func (d *Daemon) leadsInCatalog(ctx context.Context) string {
	token, leader := d.currentToken()
	if !leader {
		return "this daemon no longer leads"
	}
	l, err := d.store.GetLeadership(ctx, RoleScheduler)
	if err != nil {
		return "reading the scheduler leadership failed: " + err.Error()
	}
	if l.Holder != d.o.ID || l.Token != token || !d.now().Before(l.ExpiresAt) {
		return fmt.Sprintf("the catalog shows the scheduler leadership held by %q (token %d, until %s), not by this daemon (token %d)",
			l.Holder, l.Token, l.ExpiresAt.UTC().Format(time.RFC3339), token)
	}
	return ""
}
