package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

// Tick runs one step of the loop (heartbeat, leadership, failover, due
// schedules) so tests drive the daemon without timers.
func (d *Daemon) Tick(ctx context.Context) { d.tick(ctx) }

// WaitIdle waits until every run and verification this daemon started ended.
func (d *Daemon) WaitIdle() { d.wg.Wait() }

// SetRunner replaces the engine's RunBackup.
func (d *Daemon) SetRunner(f func(ctx context.Context, o engine.RunOptions) (engine.RunReport, error)) {
	d.runFn = f
}

// Kill simulates the process dying: its runs are cancelled and record
// nothing on their slots; leadership and the daemon record stay as they were.
func (d *Daemon) Kill() {
	d.mu.Lock()
	d.stopping = true
	d.mu.Unlock()
	d.runCancel()
	d.wg.Wait()
}

// fakeClock is an injected clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
