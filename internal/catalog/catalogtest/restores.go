package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

var restoreT0 = time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)

func restoreOp(id, key string, started time.Time) catalog.RestoreOperation {
	return catalog.RestoreOperation{ID: id, Key: key, Cluster: "prod", Repository: "nfs", Spec: `{"steps":[]}`,
		Status: catalog.RestoreRunning, StartedAt: started}
}

func testRestoreRoundTripAndKey(t *testing.T, s Store) {
	ctx := context.Background()
	a := restoreOp("op-a", "k1", restoreT0)
	b := restoreOp("op-b", "k1", restoreT0.Add(time.Minute))
	c := restoreOp("op-c", "k2", restoreT0)
	for _, op := range []catalog.RestoreOperation{a, b, c} {
		if err := s.CreateRestore(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRestore(ctx, a); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("duplicate id: %v, want ErrConflict", err)
	}
	got, err := s.GetRestore(ctx, "op-a")
	if err != nil || got.Key != "k1" || got.Spec != a.Spec || !got.StartedAt.Equal(a.StartedAt) || !got.FinishedAt.IsZero() {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	newest, err := s.FindRestoreByKey(ctx, "k1")
	if err != nil || newest.ID != "op-b" {
		t.Fatalf("FindRestoreByKey = %+v, %v; want the newest, op-b", newest, err)
	}
	if _, err := s.FindRestoreByKey(ctx, "nope"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := s.GetRestore(ctx, "nope"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if err := s.CreateRestore(ctx, catalog.RestoreOperation{ID: "x", Key: "k", Cluster: "c", Status: "paused", StartedAt: restoreT0}); err == nil {
		t.Fatal("an unknown status was accepted")
	}
}

func testRestoreTransitions(t *testing.T, s Store) {
	ctx := context.Background()
	op := restoreOp("op", "k", restoreT0)
	if err := s.CreateRestore(ctx, op); err != nil {
		t.Fatal(err)
	}
	op.Status, op.Error, op.FinishedAt = catalog.RestoreFailed, "node-2 unreachable", restoreT0.Add(time.Second)
	if err := s.UpdateRestore(ctx, op); err != nil {
		t.Fatal(err)
	}
	op.Status, op.Error, op.FinishedAt = catalog.RestoreRunning, "", time.Time{}
	if err := s.UpdateRestore(ctx, op); err != nil {
		t.Fatalf("failed -> running (resume) must be allowed: %v", err)
	}
	op.Status, op.FinishedAt = catalog.RestoreSucceeded, restoreT0.Add(time.Minute)
	if err := s.UpdateRestore(ctx, op); err != nil {
		t.Fatal(err)
	}
	op.Status = catalog.RestoreRunning
	if err := s.UpdateRestore(ctx, op); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("succeeded -> running: %v, want ErrConflict", err)
	}
	got, _ := s.GetRestore(ctx, "op")
	if got.Status != catalog.RestoreSucceeded || !got.FinishedAt.Equal(restoreT0.Add(time.Minute)) {
		t.Fatalf("stored %+v", got)
	}
	if err := s.UpdateRestore(ctx, restoreOp("missing", "k", restoreT0)); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("update of a missing operation: %v", err)
	}
}

func testRestoreSteps(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.CreateRestore(ctx, restoreOp("op", "k", restoreT0)); err != nil {
		t.Fatal(err)
	}
	step := func(seq int, outcome string) catalog.RestoreStep {
		return catalog.RestoreStep{OperationID: "op", Seq: seq, Workload: "web", SnapshotID: "abc", Node: "node-1", Epoch: 7,
			DeactivatedOn: "node-2", Migrated: true, Activated: outcome == catalog.StepSucceeded, BytesWritten: 42,
			Outcome: outcome, StartedAt: restoreT0, FinishedAt: restoreT0.Add(time.Second)}
	}
	if err := s.PutRestoreStep(ctx, step(2, "running")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRestoreStep(ctx, step(1, catalog.StepSucceeded)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := s.PutRestoreStep(ctx, step(2, catalog.StepFailed)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	steps, err := s.RestoreSteps(ctx, "op")
	if err != nil || len(steps) != 2 || steps[0].Seq != 1 || steps[1].Outcome != catalog.StepFailed {
		t.Fatalf("steps = %+v, %v", steps, err)
	}
	if want := step(1, catalog.StepSucceeded); steps[0].DeactivatedOn != want.DeactivatedOn || !steps[0].Migrated || steps[0].Epoch != 7 || !steps[0].StartedAt.Equal(want.StartedAt) {
		t.Fatalf("round trip lost fields: %+v", steps[0])
	}
	if err := s.PutRestoreStep(ctx, catalog.RestoreStep{OperationID: "missing", Seq: 1, Workload: "w", Outcome: catalog.StepSucceeded}); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("step of a missing operation: %v", err)
	}
	if err := s.PutRestoreStep(ctx, catalog.RestoreStep{OperationID: "op", Seq: 0, Workload: "w", Outcome: catalog.StepSucceeded}); err == nil {
		t.Fatal("seq 0 accepted")
	}
	if err := s.DeleteRestore(ctx, "op"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RestoreSteps(ctx, "op"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("steps of a deleted operation: %v", err)
	}
	if err := s.DeleteRestore(ctx, "op"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func testListRestores(t *testing.T, s Store) {
	ctx := context.Background()
	other := restoreOp("op-other", "k9", restoreT0.Add(time.Hour))
	other.Cluster = "staging"
	for _, op := range []catalog.RestoreOperation{
		restoreOp("op-1", "k1", restoreT0), restoreOp("op-3", "k3", restoreT0.Add(2*time.Minute)),
		restoreOp("op-2a", "k2", restoreT0.Add(time.Minute)), restoreOp("op-2b", "k2", restoreT0.Add(time.Minute)), other,
	} {
		if err := s.CreateRestore(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(ops []catalog.RestoreOperation) (out []string) {
		for _, op := range ops {
			out = append(out, op.ID)
		}
		return out
	}
	got, err := s.ListRestores(ctx, "prod", 0)
	if err != nil || fmt.Sprint(ids(got)) != "[op-3 op-2b op-2a op-1]" {
		t.Fatalf("ListRestores(prod) = %v, %v; want newest first, ties by id descending", ids(got), err)
	}
	got, err = s.ListRestores(ctx, "prod", 2)
	if err != nil || fmt.Sprint(ids(got)) != "[op-3 op-2b]" {
		t.Fatalf("ListRestores(prod, 2) = %v, %v", ids(got), err)
	}
	got, err = s.ListRestores(ctx, "", 0)
	if err != nil || len(got) != 5 || got[0].ID != "op-other" || got[0].Cluster != "staging" {
		t.Fatalf("ListRestores(all) = %v, %v", ids(got), err)
	}
	if got, err := s.ListRestores(ctx, "nowhere", 0); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("ListRestores(unknown cluster) = %v, %v; want an empty list", got, err)
	}
	if _, err := s.ListRestores(ctx, "prod", -1); err == nil {
		t.Fatal("a negative limit was accepted")
	}
}
