package engine

import (
	"errors"
	"log/slog"
	"math/rand/v2"
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
}

// Engine is the orchestration engine. It is safe for concurrent use.
type Engine struct {
	store        Store
	dial         Dialer
	now          func() time.Time
	log          *slog.Logger
	probeTimeout time.Duration

	randMu sync.Mutex
	rand   *rand.Rand
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
	if e.probeTimeout <= 0 {
		e.probeTimeout = 30 * time.Second
	}
	return e, nil
}

// Store returns the engine's catalog.
func (e *Engine) Store() Store { return e.store }

func (e *Engine) intN(n int) int {
	e.randMu.Lock()
	defer e.randMu.Unlock()
	return e.rand.IntN(n)
}
