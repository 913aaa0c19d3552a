package exec

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
)

// WatchdogEnv is the environment entry every process of this workload carries
// (what its commands started, daemons included, unless they cleared their
// environment): the forced stop and the watchdog find them by it.
func (d *Driver) WatchdogEnv() string { return "CLUSTERGUARD_STATE_DIR=" + workDir(d.cfg) }

// Kill forces the workload down without its stop command: SIGKILL to every
// process carrying WatchdogEnv, repeated until none is left (a process may fork
// while it is being killed) or ctx ends. It is safe beside a running
// command of the same workload (that command is killed too).
func (d *Driver) Kill(ctx context.Context) error {
	kv := d.WatchdogEnv()
	for {
		pids := proc.WithEnv(kv)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			if left := proc.WithEnv(kv); len(left) > 0 {
				return fmt.Errorf("workload %q: processes %v still run after SIGKILL: %w", d.cfg.Workload, left, ctx.Err())
			}
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
}
