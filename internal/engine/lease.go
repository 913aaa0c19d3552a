package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// DefaultLeaseTTL is how long a coordinator lease lasts without renewal. A
// step renews its lease every third of it while it works, so a live engine
// never loses it, and the lease of an engine that died (provider killed)
// expires in well under a minute instead of blocking the cluster.
const DefaultLeaseTTL = 30 * time.Second

// LeaseStore is what the engine needs beyond acquire and release to keep
// leases short and to recover them (engine lease list|release, a new
// catalog learning the epoch).
type LeaseStore interface {
	// RenewLease moves the expiry of the lease on cluster to now+ttl if it
	// still carries epoch; ErrConflict if it carries another, ErrNotFound
	// if none is held.
	RenewLease(ctx context.Context, cluster string, epoch int64, ttl time.Duration, now time.Time) (catalog.Lease, error)
	// ListLeases returns every lease held, expired or not, by cluster.
	ListLeases(ctx context.Context) ([]catalog.Lease, error)
	// AdvanceEpoch raises cluster's epoch counter to at least atLeast
	// (never lowers it) and returns it.
	AdvanceEpoch(ctx context.Context, cluster string, atLeast int64) (int64, error)
}

// coordinatorReader is the part of the agent client that reads the
// coordinator state (GET /v1/coordinator); the real client has it.
type coordinatorReader interface {
	Coordinator(ctx context.Context) (api.CoordinatorState, error)
}

// heldLease is a coordinator lease held by a step: ctx is the step's
// context, cancelled (with the reason as its cause) when the lease is lost,
// so a step never goes on working without it. stop ends renewal and
// releases the lease.
type heldLease struct {
	catalog.Lease
	ctx  context.Context
	stop func()
}

// coordinate makes node the fenced coordinator of cluster for one step: it
// takes the catalog lease, keeps renewing it in the background, and has the
// node's agent claim the epoch. A catalog that is behind the epochs the
// agents have seen (a new or restored catalog) learns the highest one from
// the agent and the shared-volume marker and tries once more above it.
func (e *Engine) coordinate(ctx context.Context, cluster, node string, cl AgentClient, ttl time.Duration) (*heldLease, error) {
	if ttl <= 0 {
		ttl = e.leaseTTL
	}
	held, err := e.holdLease(ctx, cluster, node, ttl)
	if err != nil {
		return nil, fmt.Errorf("could not make %s the coordinating node: %w", node, err)
	}
	_, err = cl.ClaimCoordinator(held.ctx, api.CoordinatorClaim{Cluster: cluster, Epoch: held.Epoch, Owner: e.owner()})
	if err != nil && client.IsStaleEpoch(err) {
		if seen, ok := e.highestSeenEpoch(ctx, cl); ok && seen >= held.Epoch {
			held.stop()
			if _, aerr := e.store.AdvanceEpoch(ctx, cluster, seen); aerr != nil {
				return nil, fmt.Errorf("node %s has seen epoch %d, above the catalog's %d, and the catalog could not be advanced: %w", node, seen, held.Epoch, aerr)
			}
			e.log.WarnContext(ctx, "catalog behind the cluster's epochs; continuing above the highest the agents have seen",
				"cluster", cluster, "node", node, "catalog_epoch", held.Epoch, "seen_epoch", seen)
			if held, err = e.holdLease(ctx, cluster, node, ttl); err != nil {
				return nil, fmt.Errorf("could not make %s the coordinating node: %w", node, err)
			}
			_, err = cl.ClaimCoordinator(held.ctx, api.CoordinatorClaim{Cluster: cluster, Epoch: held.Epoch, Owner: e.owner()})
		}
	}
	if err != nil {
		held.stop()
		return nil, fmt.Errorf("node %s refused the coordinator role (epoch %d): %w", node, held.Epoch, err)
	}
	return held, nil
}

// highestSeenEpoch asks the agent for the highest epoch it has seen and the
// epoch in the shared volume's coordinator marker.
func (e *Engine) highestSeenEpoch(ctx context.Context, cl AgentClient) (int64, bool) {
	r, ok := cl.(coordinatorReader)
	if !ok {
		return 0, false
	}
	st, err := r.Coordinator(ctx)
	if err != nil {
		e.log.WarnContext(ctx, "reading the agent's coordinator state", "error", err.Error())
		return 0, false
	}
	return max(st.HighestSeen, st.MarkerEpoch), true
}

// holdLease acquires the catalog lease and renews it every ttl/3 until
// stop. A renewal refused (the lease was released or granted again) or
// failing for longer than the lease lasts cancels the returned context.
func (e *Engine) holdLease(ctx context.Context, cluster, node string, ttl time.Duration) (*heldLease, error) {
	lease, err := e.store.AcquireLease(ctx, cluster, node, e.owner(), ttl, e.now())
	if err != nil {
		return nil, err
	}
	stepCtx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		expires := lease.ExpiresAt
		for {
			select {
			case <-done:
				return
			case <-stepCtx.Done():
				return
			case <-t.C:
			}
			l, err := e.store.RenewLease(stepCtx, cluster, lease.Epoch, ttl, e.now())
			switch {
			case err == nil:
				expires = l.ExpiresAt
			case stepCtx.Err() != nil:
				return
			case errors.Is(err, catalog.ErrConflict), errors.Is(err, catalog.ErrNotFound), !e.now().Before(expires):
				cause := fmt.Errorf("lost the coordinator lease of cluster %q (node %s, epoch %d), so the step was stopped: %w", cluster, node, lease.Epoch, err)
				e.log.ErrorContext(ctx, "coordinator lease lost", "cluster", cluster, "node", node, "epoch", lease.Epoch, "error", err.Error())
				cancel(cause)
				return
			default:
				e.log.WarnContext(ctx, "renewing the coordinator lease failed; retrying", "cluster", cluster, "epoch", lease.Epoch, "error", err.Error())
			}
		}
	}()
	h := &heldLease{Lease: lease, ctx: stepCtx}
	h.stop = func() {
		close(done)
		<-finished
		cancel(nil)
		if err := e.store.ReleaseLease(context.WithoutCancel(ctx), cluster, lease.Epoch); err != nil && !errors.Is(err, catalog.ErrNotFound) {
			e.log.WarnContext(ctx, "releasing coordinator lease", "cluster", cluster, "epoch", lease.Epoch, "error", err.Error())
		}
	}
	return h, nil
}

// leaseLost returns the reason a step's lease was lost, if it was.
func leaseLost(h *heldLease) error {
	if h == nil {
		return nil
	}
	return lostCause(h.ctx)
}

// lostCause is why ctx was cancelled when it was for a lost lease (not a
// plain cancellation or deadline).
func lostCause(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	return nil
}

// Leases lists the coordinator leases in the catalog (engine lease list).
func (e *Engine) Leases(ctx context.Context) ([]catalog.Lease, error) {
	return e.store.ListLeases(ctx)
}

// ReleaseLeaseOf releases cluster's lease whatever its holder (engine lease
// release): the break-glass for a lease left by an engine that died. With
// epoch > 0 only that epoch is released. The agents' epoch fencing still
// refuses any late work of the old holder.
func (e *Engine) ReleaseLeaseOf(ctx context.Context, cluster string, epoch int64) (catalog.Lease, error) {
	leases, err := e.store.ListLeases(ctx)
	if err != nil {
		return catalog.Lease{}, err
	}
	for _, l := range leases {
		if l.Cluster != cluster {
			continue
		}
		if epoch > 0 && l.Epoch != epoch {
			return l, fmt.Errorf("cluster %q's lease carries epoch %d (node %s), not %d: %w", cluster, l.Epoch, l.Holder, epoch, catalog.ErrConflict)
		}
		return l, e.store.ReleaseLease(ctx, cluster, l.Epoch)
	}
	return catalog.Lease{}, fmt.Errorf("cluster %q holds no coordinator lease: %w", cluster, catalog.ErrNotFound)
}
