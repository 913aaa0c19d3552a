package catalogtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// OwnerStore mirrors engine.OwnerStore: owners and heartbeats of runs and
// restore operations. Every catalog implements it; the cases below fail a
// store that does not.
type OwnerStore interface {
	ClaimRun(ctx context.Context, id, from, to string, staleBefore, now time.Time) (catalog.Run, error)
	ClaimRestore(ctx context.Context, id, from, to string, staleBefore, now time.Time) (catalog.RestoreOperation, error)
	RunningRuns(ctx context.Context) ([]catalog.Run, error)
	RunningRestores(ctx context.Context) ([]catalog.RestoreOperation, error)
}

var ownerT0 = time.Date(2026, 12, 3, 9, 0, 0, 987654321, time.UTC)

func ownerStore(t *testing.T, s Store) OwnerStore {
	t.Helper()
	o, ok := s.(OwnerStore)
	if !ok {
		t.Fatalf("%T does not implement the owner methods (ClaimRun, ClaimRestore, RunningRuns, RunningRestores)", s)
	}
	return o
}

// testRunOwnerHeartbeatAndTakeOver: the owner round-trips, the owner's
// heartbeat always succeeds, another engine takes over only a stale run,
// and a finished run cannot be claimed.
func testRunOwnerHeartbeatAndTakeOver(t *testing.T, s Store) {
	ctx := context.Background()
	o := ownerStore(t, s)
	r := sampleRun("run-o", "daily", ownerT0)
	r.Owner, r.HeartbeatAt = "engine-a", ownerT0
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun(ctx, r.ID)
	if err != nil || got.Owner != "engine-a" || !got.HeartbeatAt.Equal(ownerT0) {
		t.Fatalf("round trip: owner %q heartbeat %v, %v; want engine-a at %v", got.Owner, got.HeartbeatAt, err, ownerT0)
	}
	beat := ownerT0.Add(10 * time.Second)
	if got, err := o.ClaimRun(ctx, r.ID, "engine-a", "engine-a", time.Time{}, beat); err != nil || !got.HeartbeatAt.Equal(beat) {
		t.Fatalf("heartbeat by the owner: %+v, %v", got, err)
	}
	// Not stale before beat: another engine may not take it.
	if _, err := o.ClaimRun(ctx, r.ID, "engine-a", "engine-b", beat, beat.Add(time.Minute)); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("take-over of a live run: %v, want ErrConflict", err)
	}
	// A heartbeat by someone who is not the owner is refused.
	if _, err := o.ClaimRun(ctx, r.ID, "engine-b", "engine-b", time.Time{}, beat); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("heartbeat by a non-owner: %v, want ErrConflict", err)
	}
	took, err := o.ClaimRun(ctx, r.ID, "engine-a", "engine-b", beat.Add(time.Nanosecond), beat.Add(time.Minute))
	if err != nil || took.Owner != "engine-b" || took.Group != "daily" || took.Status != catalog.RunRunning {
		t.Fatalf("take-over of a stale run: %+v, %v", took, err)
	}
	// The old owner's next heartbeat now fails: it must stop.
	if _, err := o.ClaimRun(ctx, r.ID, "engine-a", "engine-a", time.Time{}, beat.Add(time.Minute)); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("heartbeat of the old owner after a take-over: %v, want ErrConflict", err)
	}
	running, err := o.RunningRuns(ctx)
	if err != nil || len(running) != 1 || running[0].ID != r.ID || running[0].Owner != "engine-b" {
		t.Fatalf("RunningRuns = %+v, %v", running, err)
	}
	took.Status, took.Error, took.FinishedAt = catalog.RunFailed, "abandoned", beat.Add(2*time.Minute)
	if err := s.UpdateRun(ctx, took); err != nil {
		t.Fatal(err)
	}
	if _, err := o.ClaimRun(ctx, r.ID, "engine-b", "engine-b", time.Time{}, beat); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("claim of a finished run: %v, want ErrConflict", err)
	}
	if running, err := o.RunningRuns(ctx); err != nil || len(running) != 0 {
		t.Fatalf("RunningRuns after it failed = %+v, %v", running, err)
	}
	if _, err := o.ClaimRun(ctx, "nope", "a", "a", time.Time{}, beat); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("claim of an unknown run: %v, want ErrNotFound", err)
	}
}

// testRestoreOwnerHeartbeatAndTakeOver is the same for restore operations,
// plus an operation recorded without owner or heartbeat (before owners were
// kept), which any engine may take over.
func testRestoreOwnerHeartbeatAndTakeOver(t *testing.T, s Store) {
	ctx := context.Background()
	o := ownerStore(t, s)
	op := restoreOp("op-o", "k", ownerT0)
	op.Owner, op.HeartbeatAt = "engine-a", ownerT0
	legacy := restoreOp("op-legacy", "k2", ownerT0.Add(-time.Hour))
	for _, x := range []catalog.RestoreOperation{op, legacy} {
		if err := s.CreateRestore(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetRestore(ctx, op.ID)
	if err != nil || got.Owner != "engine-a" || !got.HeartbeatAt.Equal(ownerT0) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := o.ClaimRestore(ctx, op.ID, "engine-a", "engine-b", ownerT0, ownerT0.Add(time.Minute)); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("take-over of a live operation: %v, want ErrConflict", err)
	}
	running, err := o.RunningRestores(ctx)
	if err != nil || len(running) != 2 || running[0].ID != "op-legacy" || running[1].ID != op.ID {
		t.Fatalf("RunningRestores = %+v, %v; want op-legacy then op-o", running, err)
	}
	took, err := o.ClaimRestore(ctx, legacy.ID, "", "engine-b", ownerT0, ownerT0)
	if err != nil || took.Owner != "engine-b" || !took.HeartbeatAt.Equal(ownerT0) || took.Key != "k2" {
		t.Fatalf("take-over of an operation without owner: %+v, %v", took, err)
	}
	// Handing back: the owner sets the old owner and heartbeat again.
	back, err := o.ClaimRestore(ctx, legacy.ID, "engine-b", "", ownerT0.Add(time.Hour), time.Time{})
	if err != nil || back.Owner != "" || !back.HeartbeatAt.IsZero() {
		t.Fatalf("hand back: %+v, %v", back, err)
	}
	// UpdateRestore with an owner moves it (a resume by another engine).
	op.Status, op.Error, op.FinishedAt = catalog.RestoreFailed, "x", ownerT0.Add(time.Second)
	if err := s.UpdateRestore(ctx, op); err != nil {
		t.Fatal(err)
	}
	op.Status, op.Error, op.FinishedAt, op.Owner, op.HeartbeatAt = catalog.RestoreRunning, "", time.Time{}, "engine-c", ownerT0.Add(time.Minute)
	if err := s.UpdateRestore(ctx, op); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetRestore(ctx, op.ID); err != nil || got.Owner != "engine-c" || !got.HeartbeatAt.Equal(op.HeartbeatAt) {
		t.Fatalf("after a resume by engine-c: %+v, %v", got, err)
	}
	if _, err := o.ClaimRestore(ctx, "nope", "a", "a", time.Time{}, ownerT0); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("claim of an unknown operation: %v, want ErrNotFound", err)
	}
}

// testConcurrentTakeOver: of many engines taking over one stale run at
// once, exactly one wins.
func testConcurrentTakeOver(t *testing.T, s Store) {
	ctx := context.Background()
	o := ownerStore(t, s)
	r := sampleRun("run-c", "daily", ownerT0)
	r.Owner, r.HeartbeatAt = "dead", ownerT0
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	wins := make(chan string, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := string(rune('a' + i))
			if _, err := o.ClaimRun(ctx, r.ID, "dead", me, ownerT0.Add(time.Second), ownerT0.Add(time.Minute)); err == nil {
				wins <- me
			} else if !errors.Is(err, catalog.ErrConflict) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(wins)
	close(errs)
	for err := range errs {
		t.Errorf("concurrent take-over: %v", err)
	}
	var winners []string
	for w := range wins {
		winners = append(winners, w)
	}
	if len(winners) != 1 {
		t.Fatalf("winners of one take-over: %v, want exactly one", winners)
	}
	if got, err := s.GetRun(ctx, r.ID); err != nil || got.Owner != winners[0] {
		t.Fatalf("owner after the take-over: %q, %v; want %q", got.Owner, err, winners[0])
	}
}
