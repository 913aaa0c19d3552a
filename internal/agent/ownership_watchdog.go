package agent

import (
	"os"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/watchdog"
)

// WatchdogTarget is a driver whose workload's processes the watchdog
// process can find and kill: they all carry WatchdogEnv ("KEY=value") in
// their environment (exec: the workload's CLUSTERGUARD_STATE_DIR; qemu:
// its pid record; postgresql: its data directory). Workloads of other
// drivers are stopped by the agent's self-fence only.
type WatchdogTarget interface {
	WatchdogEnv() string
}

// watchdogFeed is the watchdog as Owners sees it (watchdog.Feeder).
type watchdogFeed interface {
	Arm(workload, env string, validFor time.Duration)
	Disarm(workload string)
}

type watchdogState struct {
	feed watchdogFeed
	env  map[string]string // workload -> WatchdogEnv
}

// EnableWatchdog makes RunOwnership run the watchdog process from bin (the
// agent's own binary, subcommand `agent watchdog`); see package watchdog.
func (s *Server) EnableWatchdog(bin string) { s.owners.watchdogBin = bin }

// startWatchdog starts the watchdog process when enabled and returns what
// stops it (closing its pipe: it disarms everything and exits, so the
// workloads of a stopping agent keep running).
func (s *Server) startWatchdog() (stop func()) {
	if s.owners.watchdogBin == "" {
		return func() {}
	}
	env := map[string]string{}
	for name, wl := range s.workloads {
		if t, ok := wl.driver.(WatchdogTarget); ok {
			env[name] = t.WatchdogEnv()
		}
	}
	if len(env) == 0 {
		return func() {}
	}
	f, err := watchdog.Start(s.owners.watchdogBin, os.Stderr, s.logger)
	if err != nil {
		s.logger.Error("the watchdog could not be started: workloads are stopped only by this agent if it stalls", "error", err)
		return func() {}
	}
	s.owners.wd.Store(&watchdogState{feed: f, env: env})
	return func() {
		s.owners.wd.Store(nil)
		if err := f.Close(); err != nil {
			s.logger.Warn("watchdog exit", "error", err)
		}
	}
}

// feedWatchdog arms workload's watchdog deadline after a renewal that
// began at began (monotonic): the lease is valid here until expiry −
// clock_skew_margin after that, by which the workload must be down.
func (o *Owners) feedWatchdog(workload string, began time.Duration) {
	wd := o.wd.Load()
	if wd == nil || wd.env[workload] == "" || o.isFenced(workload) {
		return // a fenced lease is being stopped: its deadline stays as it was
	}
	wd.feed.Arm(workload, wd.env[workload], o.cfg.Expiry-o.cfg.ClockSkewMargin-(o.clock.Mono()-began))
}

// disarmWatchdog removes workload's deadline: it stopped here, or its
// lease was released.
func (o *Owners) disarmWatchdog(workload string) {
	if wd := o.wd.Load(); wd != nil {
		wd.feed.Disarm(workload)
	}
}
