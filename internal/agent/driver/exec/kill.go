package exec

import (
	"context"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
)

// WatchdogEnv is the environment entry every process of this workload carries
// (what its commands started, daemons included, unless they cleared their
// environment): the forced stop and the watchdog find them by it.
func (d *Driver) WatchdogEnv() string { return "CLUSTERGUARD_STATE_DIR=" + workDir(d.cfg) }

// Kill forces the workload down without its stop command: the whole
// process tree of every process carrying WatchdogEnv (a program that
// rewrote its environment with its process title is still found below its
// parent) is stopped with SIGSTOP, then SIGKILLed, repeated until none is
// left or ctx ends. It is safe beside a running command of the same
// workload (that command is killed too).
func (d *Driver) Kill(ctx context.Context) error {
	within := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		within = time.Until(dl)
	}
	if _, left := proc.KillTree(proc.Match{Env: d.WatchdogEnv()}, within); len(left) > 0 {
		err := ctx.Err()
		if err == nil {
			err = fmt.Errorf("not gone within %s", within.Round(time.Millisecond))
		}
		return fmt.Errorf("workload %q: processes %v still run after SIGKILL: %w", d.cfg.Workload, left, err)
	}
	return nil
}
