package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"
)

// Options configure an Engine. Store and Dial are required; Now and Rand are
// injected so time- and chance-based policies are testable.
type Options struct {
	Store  Store
	Dial   Dialer
	Now    func() time.Time
	Rand   *rand.Rand
	Logger *slog.Logger
	// ProbeTimeout bounds one probe of one agent (facts + workloads).
	ProbeTimeout time.Duration
	// Owner names this engine instance in leases and agent markers;
	// default host name and process id.
	Owner string
	// Wait pauses between retries; tests inject one that returns at once.
	Wait func(ctx context.Context, d time.Duration) error
	// LeaseTTL is how long a coordinator lease lasts unrenewed; default
	// DefaultLeaseTTL.
	LeaseTTL time.Duration
	// HeartbeatInterval is how often a running backup or restore refreshes
	// its heartbeat in the catalog; default and at most HeartbeatInterval
	// (abandoned.go), which every engine's AbandonedAfter assumes.
	HeartbeatInterval time.Duration
}

// Engine is the orchestration engine. It is safe for concurrent use.
type Engine struct {
	store        Store
	dial         Dialer
	now          func() time.Time
	log          *slog.Logger
	probeTimeout time.Duration
	ownerName    string
	waitFn       func(ctx context.Context, d time.Duration) error
	leaseTTL     time.Duration

	heartbeatEvery time.Duration

	randMu sync.Mutex
	rand   *rand.Rand

	repoIDs sync.Map // repository name -> knownRepositoryID (repotrust.go)
}

// New returns an engine over the given store and agent dialer.
func New(o Options) (*Engine, error) {
	if o.Store == nil {
		return nil, errors.New("engine: a catalog store is required")
	}
	if o.Dial == nil {
		return nil, errors.New("engine: an agent dialer is required")
	}
	e := &Engine{store: o.Store, dial: o.Dial, now: o.Now, log: o.Logger, rand: o.Rand, probeTimeout: o.ProbeTimeout}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.rand == nil {
		e.rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x636c75737465))
	}
	e.ownerName, e.waitFn = o.Owner, o.Wait
	if e.ownerName == "" {
		host, _ := os.Hostname()
		e.ownerName = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	if e.waitFn == nil {
		e.waitFn = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
	}
	if e.leaseTTL = o.LeaseTTL; e.leaseTTL <= 0 {
		e.leaseTTL = DefaultLeaseTTL
	}
	if e.heartbeatEvery = o.HeartbeatInterval; e.heartbeatEvery <= 0 || e.heartbeatEvery > HeartbeatInterval {
		e.heartbeatEvery = HeartbeatInterval
	}
	if e.probeTimeout <= 0 {
		e.probeTimeout = 30 * time.Second
	}
	return e, nil
}

// Store returns the engine's catalog.
func (e *Engine) Store() Store { return e.store }

func (e *Engine) owner() string { return e.ownerName }

func (e *Engine) wait(ctx context.Context, d time.Duration) error { return e.waitFn(ctx, d) }

func (e *Engine) intN(n int) int {
	e.randMu.Lock()
	defer e.randMu.Unlock()
	return e.rand.IntN(n)
}
