package daemon

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// resetLeaderGauges drops what only the leader keeps up to date (last
// success and RPO met per workload and group): a follower would otherwise
// export its last values forever, and a scrape of both daemons would show
// two differing answers.
func (m *metrics) resetLeaderGauges() {
	m.lastSuccess.Reset()
	m.groupLastSuccess.Reset()
	m.rpoMet.Reset()
	m.mu.Lock()
	clear(m.rpo)
	m.mu.Unlock()
}

// forgetGroup deletes the series of a group that no longer exists.
func (m *metrics) forgetGroup(group string) {
	l := prometheus.Labels{"group": group}
	m.lastSuccess.DeletePartialMatch(l)
	m.groupLastSuccess.DeletePartialMatch(l)
	m.rpoMet.DeletePartialMatch(l)
	m.mu.Lock()
	delete(m.rpo, group)
	m.mu.Unlock()
}

// dropLeaderMetrics forgets what this daemon knew as leader; called when it
// loses or gives up leadership.
func (d *Daemon) dropLeaderMetrics() {
	d.mu.Lock()
	clear(d.lastSuccess)
	d.mu.Unlock()
	d.metrics.resetLeaderGauges()
}

// sweepDeletedGroups deletes the metrics of groups no longer in the
// catalog (and of their workloads); the leader calls it every RecoverEvery.
func (d *Daemon) sweepDeletedGroups(ctx context.Context) error {
	groups, err := d.store.ListGroups(ctx, "")
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, g := range groups {
		exists[g.Name] = true
	}
	gone := map[string]bool{}
	d.mu.Lock()
	for k := range d.lastSuccess {
		if !exists[k[0]] {
			gone[k[0]] = true
			delete(d.lastSuccess, k)
		}
	}
	d.mu.Unlock()
	for g := range gone {
		d.metrics.forgetGroup(g)
	}
	return nil
}
