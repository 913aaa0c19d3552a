package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/schedule"
)

// RoleScheduler is the leadership role whose holder evaluates schedules.
const RoleScheduler = catalog.RoleScheduler

// Defaults of Options.
const (
	DefaultTick              = time.Second
	DefaultLeaderTTL         = 15 * time.Second
	DefaultMaxConcurrentRuns = 4
	DefaultStopGrace         = 30 * time.Second
	// HeartbeatEvery bounds the time between two heartbeats (PutDaemon),
	// give or take a tick.
	HeartbeatEvery = 5 * time.Second
	// RecoverEvery is how often the leader calls Options.Recover.
	RecoverEvery = time.Minute
	// PruneEvery bounds how often one repository is pruned after its
	// retention tiers forgot recovery points: pruning rewrites packs and
	// takes an exclusive lock, forgetting does not.
	PruneEvery = 6 * time.Hour
)

// Options configure a Daemon.
type Options struct {
	Engine    *engine.Engine   // runs backups (RunBackup), retention, verification
	Store     engine.Store     // the catalog the engine uses (schedules, slots, leadership, daemons)
	ID        string           // instance id; default "<host>/<pid>/<start unix nanos>"
	Version   string           // reported in heartbeats
	Listen    string           // reported in heartbeats
	Now       func() time.Time // injected clock; default time.Now
	Tick      time.Duration    // how often due schedules are evaluated; default 1s
	LeaderTTL time.Duration    // leadership lease; default 15s, renewed every TTL/3
	// MaxConcurrentRuns bounds the runs in progress; default 4. Schedules
	// of one group never run at the same time: a slot waits (queued) until
	// its group is free.
	MaxConcurrentRuns int
	// Recover is called by the leader once on taking leadership and then
	// every RecoverEvery: it recovers work a dead provider or daemon left.
	// nil: none.
	Recover func(ctx context.Context) error
	Logger  *slog.Logger
	// Registerer receives the daemon's metrics; nil: not registered.
	Registerer prometheus.Registerer
	// StopGrace is how long Run waits, once its context is cancelled, for
	// runs in progress before it cancels them; default 30s.
	StopGrace time.Duration
}

// Health is a snapshot of the daemon's state for /health.
type Health struct {
	ID        string
	Leader    bool
	Token     int64
	Running   int
	LastTick  time.Time
	LastError string
	// Verifications is the last scheduled verification per schedule
	// (made by this process while it led).
	Verifications map[string]VerifyResult
}

// VerifyResult is the outcome of one scheduled verification.
type VerifyResult struct {
	Repository string
	At         time.Time
	OK         bool
	Summary    string // the report's text, or the error
}

// runFunc runs one backup; the engine's RunBackup, replaced in benchmarks.
type runFunc func(ctx context.Context, o engine.RunOptions) (engine.RunReport, error)

// Daemon runs backup schedules. It is safe for concurrent use.
type Daemon struct {
	o       Options
	log     *slog.Logger
	store   engine.Store
	eng     *engine.Engine
	now     func() time.Time
	runFn   runFunc
	metrics *metrics
	started time.Time
	host    string

	// wake asks the loop for an evaluation before the next tick (a run
	// ended, so a queued slot may start).
	wake chan struct{}
	// runCtx is the parent of every run; cancelled after StopGrace.
	runCtx    context.Context
	runCancel context.CancelFunc
	wg        sync.WaitGroup

	// keepMu serialises heartbeat and leadership renewal (the keeper
	// goroutine and, without Run, tick).
	keepMu sync.Mutex

	mu            sync.Mutex
	keeper        bool   // Run's keeper goroutine heartbeats and renews
	keepErr       string // its last error
	recovering    bool   // a Recover call is in progress
	recoverErr    error  // the last Recover's error
	stopping      bool
	leader        bool
	token         int64
	leaseExpires  time.Time
	lastRenew     time.Time
	lastHeartbeat time.Time
	lastRecover   time.Time
	lastTick      time.Time
	nextDue       time.Time // earliest time a schedule becomes runnable (leader only)
	lastErr       string
	running       map[string]*activeRun // by run id
	busyGroups    map[string]string     // group -> schedule running it
	plans         map[string]*cachedPlan
	deferReason   map[string]string    // deferKey(schedule, slot) -> why the due slot waits
	lastVerify    map[string]time.Time // schedule -> last verification start
	verifying     map[string]bool      // repository -> verification in progress
	verifications map[string]VerifyResult
	lastPrune     map[string]time.Time // repository -> last prune
	inactive      map[string]string    // schedule -> why this leader did not run it (paused, did not parse)
	lastSuccess   map[[2]string]time.Time
}

type activeRun struct {
	slot   catalog.ScheduleSlot
	sched  catalog.Schedule
	cancel context.CancelFunc
}

// cachedPlan avoids reading a schedule's slots on every tick: while this
// daemon leads, it is the only writer of slots, so what it last decided
// stays true until nextEval.
type cachedPlan struct {
	updatedAt   time.Time
	plan        *schedule.Plan
	lastHandled time.Time
	known       bool      // lastHandled was read from the catalog
	firstSeen   time.Time // the schedule's CreatedAt, or when this leader first saw it
	nextEval    time.Time // nothing is due before it
}

// New validates o and returns a daemon; Run starts it.
func New(o Options) (*Daemon, error) {
	if o.Engine == nil {
		return nil, errors.New("engine daemon: an engine is required")
	}
	if o.Store == nil {
		o.Store = o.Engine.Store()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	if o.LeaderTTL <= 0 {
		o.LeaderTTL = max(DefaultLeaderTTL, 3*o.Tick)
	}
	if o.LeaderTTL < 3*o.Tick {
		return nil, fmt.Errorf("engine daemon: leader TTL %s must be at least three ticks (%s) so the lease is renewed in time; raise the TTL or lower the tick", o.LeaderTTL, 3*o.Tick)
	}
	if o.MaxConcurrentRuns <= 0 {
		o.MaxConcurrentRuns = DefaultMaxConcurrentRuns
	}
	if o.StopGrace <= 0 {
		o.StopGrace = DefaultStopGrace
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	started := o.Now()
	if o.ID == "" {
		o.ID = fmt.Sprintf("%s/%d/%d", host, os.Getpid(), started.UnixNano())
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("engine daemon: registering metrics: %w", err)
	}
	d := &Daemon{
		o: o, log: o.Logger.With("daemon", o.ID), store: o.Store, eng: o.Engine, now: o.Now,
		runFn: o.Engine.RunBackup, metrics: m, started: started, host: host,
		wake:          make(chan struct{}, 1),
		running:       map[string]*activeRun{},
		busyGroups:    map[string]string{},
		plans:         map[string]*cachedPlan{},
		deferReason:   map[string]string{},
		lastVerify:    map[string]time.Time{},
		verifying:     map[string]bool{},
		verifications: map[string]VerifyResult{},
		lastPrune:     map[string]time.Time{},
		inactive:      map[string]string{},
		lastSuccess:   map[[2]string]time.Time{},
	}
	d.runCtx, d.runCancel = context.WithCancel(context.Background())
	return d, nil
}

// ID is the daemon's instance id.
func (d *Daemon) ID() string { return d.o.ID }

// Health returns the daemon's current state.
func (d *Daemon) Health() Health {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := Health{ID: d.o.ID, Leader: d.leader, Token: d.token, Running: len(d.running),
		LastTick: d.lastTick, LastError: d.lastErr, Verifications: map[string]VerifyResult{}}
	for k, v := range d.verifications {
		h.Verifications[k] = v
	}
	return h
}

// Run evaluates schedules every Tick until ctx is cancelled. Then it starts
// no new run, waits up to StopGrace for runs in progress and cancels the
// rest (their slots stay "running" with their run ids, for the next leader
// to complete or retry), releases leadership and deletes its daemon record.
func (d *Daemon) Run(ctx context.Context) error {
	d.log.InfoContext(ctx, "engine daemon started", "tick", d.o.Tick, "leader_ttl", d.o.LeaderTTL, "max_concurrent_runs", d.o.MaxConcurrentRuns)
	// Heartbeat and leadership renewal have their own goroutine: a slow
	// tick (a catalog query, a failover) or a graceful stop must not let
	// the lease or the heartbeat lapse while runs are still going.
	keepCtx, stopKeep := context.WithCancel(context.WithoutCancel(ctx))
	keeperDone := make(chan struct{})
	d.mu.Lock()
	d.keeper = true
	d.mu.Unlock()
	go func() { defer close(keeperDone); d.keepLoop(keepCtx) }()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return d.stop(func() { stopKeep(); <-keeperDone })
		case <-t.C:
		case <-d.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		d.tick(ctx)
		t.Reset(d.sleep())
	}
}

// sleep is the time to the next tick: Tick, or less when a slot becomes
// runnable sooner, so lag from due to start does not depend on Tick.
func (d *Daemon) sleep() time.Duration {
	d.mu.Lock()
	next, leader := d.nextDue, d.leader
	d.mu.Unlock()
	if !leader || next.IsZero() {
		return d.o.Tick
	}
	return max(0, min(d.o.Tick, next.Sub(d.now())))
}

// stop ends the daemon after Run's context was cancelled. The keeper
// (heartbeat, lease renewal) goes on until every run ended; stopKeeper
// ends it.
func (d *Daemon) stop(stopKeeper func()) error {
	d.mu.Lock()
	d.stopping = true
	n := len(d.running)
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	if n > 0 {
		d.log.Info("stopping: waiting for runs in progress", "runs", n, "grace", d.o.StopGrace)
	}
	select {
	case <-done:
	case <-time.After(d.o.StopGrace):
		d.log.Warn("stopping: grace period over, cancelling runs in progress; their slots stay running for the next leader")
		d.runCancel()
		<-done
	}
	d.runCancel()
	stopKeeper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	d.mu.Lock()
	leader, token := d.leader, d.token
	d.leader = false
	d.mu.Unlock()
	if leader {
		if err := d.store.ReleaseLeadership(ctx, RoleScheduler, token); err != nil {
			errs = append(errs, fmt.Errorf("releasing scheduler leadership (token %d): %w", token, err))
		}
	}
	d.metrics.setLeader(false, 0)
	d.dropLeaderMetrics()
	if err := d.store.DeleteDaemon(ctx, d.o.ID); err != nil && !errors.Is(err, catalog.ErrNotFound) {
		errs = append(errs, fmt.Errorf("deleting daemon record %s: %w", d.o.ID, err))
	}
	d.log.Info("engine daemon stopped")
	return errors.Join(errs...)
}

// tick is one step of the loop: heartbeat, leadership, recovery, failover,
// due schedules, verifications.
func (d *Daemon) tick(ctx context.Context) {
	now := d.now()
	d.mu.Lock()
	d.lastTick = now
	stopping := d.stopping
	d.mu.Unlock()
	errs := d.keepErrors(ctx, now)
	if !stopping {
		if d.isLeader() {
			// Failover first: it retries the slots of runs a dead daemon
			// left, which Recover would otherwise only mark failed (both
			// wait for the same abandoned bound, engine.AbandonedAfter).
			if err := d.failover(ctx, now); err != nil {
				errs = append(errs, err)
			}
			if err := d.recover(now); err != nil {
				errs = append(errs, err)
			}
			if err := d.evaluate(ctx, now); err != nil {
				errs = append(errs, err)
			}
			d.updateRPO(ctx, now)
		}
	}
	d.mu.Lock()
	d.lastErr = ""
	if err := errors.Join(errs...); err != nil {
		d.lastErr = err.Error()
		d.log.WarnContext(ctx, "scheduler tick", "error", err.Error())
	}
	d.mu.Unlock()
}

func (d *Daemon) heartbeat(ctx context.Context, now time.Time) error {
	d.mu.Lock()
	// At least three heartbeats per LeaderTTL: failover takes a daemon
	// whose heartbeat is LeaderTTL old for dead.
	due := d.lastHeartbeat.IsZero() || now.Sub(d.lastHeartbeat) >= min(HeartbeatEvery, d.o.LeaderTTL/3)
	d.mu.Unlock()
	if !due {
		return nil
	}
	if err := d.store.PutDaemon(ctx, catalog.Daemon{ID: d.o.ID, Host: d.host, Version: d.o.Version,
		Listen: d.o.Listen, StartedAt: d.started.UTC(), SeenAt: now.UTC()}); err != nil {
		return fmt.Errorf("heartbeat of daemon %s: %w", d.o.ID, err)
	}
	d.mu.Lock()
	d.lastHeartbeat = now
	d.mu.Unlock()
	return nil
}

func (d *Daemon) isLeader() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.leader
}

func (d *Daemon) currentToken() (int64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.token, d.leader
}

// lead acquires or renews leadership. gained reports a new term (a new
// token): the caller then recovers and fails over.
func (d *Daemon) lead(ctx context.Context, now time.Time) (gained bool, err error) {
	d.mu.Lock()
	leader, token, renewed, expires := d.leader, d.token, d.lastRenew, d.leaseExpires
	d.mu.Unlock()
	if leader && !now.Before(expires) {
		d.loseLeadership(ctx, token, "the lease expired before it was renewed")
		leader = false
	}
	if leader && now.Sub(renewed) < d.o.LeaderTTL/3 {
		return false, nil
	}
	l, err := d.store.AcquireLeadership(ctx, RoleScheduler, d.o.ID, d.o.LeaderTTL, now)
	if err != nil {
		if leader {
			d.loseLeadership(ctx, token, "renewal failed: "+err.Error())
		}
		if errors.Is(err, catalog.ErrConflict) {
			return false, nil // another daemon leads: follow
		}
		return false, fmt.Errorf("acquiring scheduler leadership: %w", err)
	}
	d.mu.Lock()
	gained = !d.leader || d.token != l.Token
	d.leader, d.token, d.lastRenew, d.leaseExpires = true, l.Token, now, l.ExpiresAt
	if gained {
		// A new term: what this daemon cached as a follower or in an
		// earlier term may be stale.
		d.plans = map[string]*cachedPlan{}
		d.lastRecover = time.Time{}
	}
	d.mu.Unlock()
	if gained {
		d.log.InfoContext(ctx, "took scheduler leadership", "token", l.Token, "expires", l.ExpiresAt)
		d.metrics.setLeader(true, l.Token)
		d.seedLastSuccess(ctx)
	}
	return gained, nil
}

// loseLeadership stops claiming at once. Runs in progress go on: each
// holds its own fenced coordinator leases on the agents, and its slot write
// is refused by the catalog unless this daemon leads again.
func (d *Daemon) loseLeadership(ctx context.Context, token int64, why string) {
	d.mu.Lock()
	was := d.leader && d.token == token
	d.leader = false
	d.mu.Unlock()
	if was {
		d.log.WarnContext(ctx, "lost scheduler leadership; no new slots are claimed", "token", token, "reason", why)
		d.metrics.setLeader(false, token)
		d.dropLeaderMetrics()
	}
}

// wakeUp asks the loop for an evaluation now.
func (d *Daemon) wakeUp() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}
