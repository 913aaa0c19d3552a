package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
)

// A heartbeat refused because another engine marked the run failed without
// changing its owner is a take-over (the run must stop), not this engine's
// own end: only what this engine recorded itself (finished) makes it one.
func TestBeatRunFinishedByOwnerIsLocal(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	e, err := New(Options{Store: st, Owner: "e1", Dial: HTTPDialer(HTTPDialerOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	r := catalog.Run{ID: "run-1", Group: "g", Status: catalog.RunRunning, StartedAt: now, Owner: "e1", HeartbeatAt: now, NodeOrder: []string{}}
	if err := st.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	var finished atomic.Bool
	beat := e.beatRun(r.ID, &finished)
	if err := beat(ctx); err != nil {
		t.Fatalf("heartbeat of a running run: %v", err)
	}
	// Another engine marks it failed, owner unchanged.
	r.Status, r.Error, r.FinishedAt = catalog.RunFailed, "marked failed by another engine", now
	if err := st.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := beat(ctx); errors.Is(err, errFinishedByOwner) || !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("heartbeat after another engine ended the run: %v, want a conflict (stop), not finished by its owner", err)
	}
	finished.Store(true)
	if err := beat(ctx); !errors.Is(err, errFinishedByOwner) {
		t.Fatalf("heartbeat after this engine recorded the end: %v, want finished by its owner", err)
	}
}
