package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

func restoreSpec(target, node string) RestoreSpec {
	return RestoreSpec{Cluster: "c", Repository: "r", Verify: "metadata", ActivateAfter: true,
		Workloads: []RestoreWorkload{{Name: "a", RecoveryPoint: "latest", Target: target, Node: node, OnConflict: ConflictDeactivate}}}
}

func addPoint(t *testing.T, fx *runFixture, id, workload string, at time.Time) {
	t.Helper()
	if err := fx.store.PutRecoveryPoint(context.Background(), catalog.RecoveryPoint{ID: id, Repository: "r", Cluster: "c", Group: "g", Workload: workload, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
}

func TestPlanRestorePlacement(t *testing.T) {
	t.Parallel()
	fx := newRunFixture(t, map[string]string{"a": "n2", "b": ""}, catalog.ProtectionGroup{Workloads: []string{"a"}})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	addPoint(t, fx, "p-old", "a", t0)
	addPoint(t, fx, "p-new", "a", t0.Add(time.Hour))
	addPoint(t, fx, "p-b", "b", t0)
	ctx := context.Background()

	plan, err := fx.eng.PlanRestore(ctx, restoreSpec(TargetActiveNode, ""))
	if err != nil {
		t.Fatal(err)
	}
	if s := plan.Steps[0]; s.Node != "n2" || s.DeactivateOn != "n2" || s.RecoveryPoint != "p-new" || !s.Activate {
		t.Fatalf("active node restore = %+v", s)
	}
	spec := restoreSpec(TargetNode, "n3")
	spec.Workloads[0].OnConflict = ConflictMigrate
	spec.Workloads[0].RecoveryPoint, spec.Workloads[0].Before = "", t0.Add(time.Minute)
	plan, err = fx.eng.PlanRestore(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if s := plan.Steps[0]; s.Node != "n3" || s.DeactivateOn != "n2" || !s.Migrate || s.RecoveryPoint != "p-old" {
		t.Fatalf("specified node with migrate, before = t0+1m: %+v", s)
	}
	// An inactive workload goes to a node by policy; colocate keeps the
	// second workload with the first.
	spec = RestoreSpec{Cluster: "c", Repository: "r", Verify: "none", Colocate: true, Workloads: []RestoreWorkload{
		{Name: "b", RecoveryPoint: "latest", Target: TargetFewestWorkloads, OnConflict: ConflictDeactivate},
		{Name: "a", RecoveryPoint: "latest", Target: TargetActiveNode, OnConflict: ConflictDeactivate},
	}}
	plan, err = fx.eng.PlanRestore(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Steps[0].DeactivateOn != "" || plan.Steps[1].Node != plan.Steps[0].Node || plan.Steps[1].DeactivateOn != "n2" {
		t.Fatalf("colocated plan = %+v", plan.Steps)
	}
}

// A recovery point deleted between plan and apply: apply says so and
// does nothing.
func TestRunRestoreRecoveryPointGoneSincePlan(t *testing.T) {
	t.Parallel()
	fx := newRunFixture(t, map[string]string{"a": "n1"}, catalog.ProtectionGroup{Workloads: []string{"a"}})
	addPoint(t, fx, "p1", "a", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	spec := restoreSpec(TargetActiveNode, "")
	plan, err := fx.eng.PlanRestore(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.store.DeleteRecoveryPoint(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	_, err = fx.eng.RunRestore(ctx, spec, &plan, RestoreHooks{})
	var changed *PlanChangedError
	if !errors.As(err, &changed) || !strings.Contains(err.Error(), "recovery point p1 of a no longer exists") {
		t.Fatalf("err = %v, want a PlanChangedError naming p1", err)
	}
	if _, err := fx.store.FindRestoreByKey(ctx, RestoreKey(spec)); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("an operation was recorded although nothing may run: %v", err)
	}
}

func TestValidateRestoreSpec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mutate func(*RestoreSpec)
		want   string
	}{
		{func(s *RestoreSpec) { s.Workloads[0].Files = []string{"../x"} }, "contains '..'"},
		{func(s *RestoreSpec) { s.Workloads[0].Files = []string{"/etc/passwd"} }, "is absolute"},
		{func(s *RestoreSpec) { s.Workloads[0].DestinationPath = "out" }, "needs files"},
		{func(s *RestoreSpec) { s.Workloads[0].Files = []string{".clusterguard/coordinator.json"} }, "not a workload path"},
		{func(s *RestoreSpec) { s.Workloads = append(s.Workloads, s.Workloads[0]) }, "listed twice"},
		{func(s *RestoreSpec) { s.Verify = "some" }, "use none, metadata or full"},
	} {
		s := restoreSpec(TargetActiveNode, "")
		tc.mutate(&s)
		if err := ValidateRestoreSpec(s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
}

// E14: the digest carries each workload's last backup and can list those
// without a recent one.
func TestDigestLastBackupFilter(t *testing.T) {
	t.Parallel()
	fx := newRunFixture(t, map[string]string{"a": "n1", "b": "n2", "c": "n3"}, catalog.ProtectionGroup{Workloads: []string{"a"}})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // the fixture's clock
	addPoint(t, fx, "fresh", "a", now.Add(-10*time.Minute))
	addPoint(t, fx, "old", "b", now.Add(-48*time.Hour))
	d, err := fx.eng.Digest(context.Background(), "c", DigestFilter{BackupOlderThan: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range d.Workloads {
		names = append(names, w.Name)
	}
	if strings.Join(names, ",") != "b,c" {
		t.Fatalf("workloads without a backup in 24h = %v, want b (48h old) and c (never)", names)
	}
	if d.Workloads[0].LastRecoveryPoint != "old" || !d.Workloads[1].LastBackupAt.IsZero() {
		t.Fatalf("last backups: %+v", d.Workloads)
	}
}

// E14: the digest carries each workload's last restore and backup failure
// rate from the catalog, and filters on them.
func TestDigestRestoreAndFailureHistory(t *testing.T) {
	t.Parallel()
	fx := newRunFixture(t, map[string]string{"a": "n1", "b": "n2"}, catalog.ProtectionGroup{Workloads: []string{"a", "b"}})
	ctx := context.Background()
	if _, err := fx.eng.RunBackup(ctx, RunOptions{Group: "g"}); err != nil {
		t.Fatal(err)
	}
	fx.f.mu.Lock()
	fx.f.down["n2"] = true
	fx.f.mu.Unlock()
	rep, err := fx.eng.RunBackup(ctx, RunOptions{Group: "g"})
	if err == nil && rep.Run.Status == catalog.RunSucceeded {
		t.Fatalf("a run with n2 down succeeded: %+v", rep.Run)
	}
	fx.f.mu.Lock()
	fx.f.down["n2"] = false
	fx.f.mu.Unlock()

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // the fixture's clock
	op := catalog.RestoreOperation{ID: "op1", Key: "k", Cluster: "c", Repository: "r", Spec: "{}", Status: catalog.RestoreFailed,
		StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-50 * time.Minute)}
	if err := fx.store.CreateRestore(ctx, op); err != nil {
		t.Fatal(err)
	}
	for i, st := range []catalog.RestoreStep{
		{Workload: "a", Outcome: catalog.StepSucceeded, FinishedAt: now.Add(-55 * time.Minute)},
		{Workload: "b", Outcome: catalog.StepFailed, Error: "node down", FinishedAt: now.Add(-50 * time.Minute)},
	} {
		st.OperationID, st.Seq, st.Node, st.StartedAt = "op1", i+1, "n1", now.Add(-time.Hour)
		if err := fx.store.PutRestoreStep(ctx, st); err != nil {
			t.Fatal(err)
		}
	}

	d, err := fx.eng.Digest(ctx, "c", DigestFilter{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]DigestEntry{}
	for _, w := range d.Workloads {
		byName[w.Name] = w
	}
	if a := byName["a"]; a.BackupAttempts != 2 || a.BackupFailures != 0 || !a.LastRestoreAt.Equal(now.Add(-55*time.Minute)) {
		t.Errorf("a: attempts %d failures %d last restore %v; want 2, 0, 55 minutes ago", a.BackupAttempts, a.BackupFailures, a.LastRestoreAt)
	}
	if b := byName["b"]; b.BackupAttempts != 2 || b.BackupFailures != 1 || b.BackupFailureRate() != 0.5 || !b.LastRestoreAt.IsZero() {
		t.Errorf("b: attempts %d failures %d rate %v last restore %v; want 2, 1, 0.5 and never (its restore step failed)",
			b.BackupAttempts, b.BackupFailures, b.BackupFailureRate(), b.LastRestoreAt)
	}
	names := func(f DigestFilter) string {
		d, err := fx.eng.Digest(ctx, "c", f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, w := range d.Workloads {
			out = append(out, w.Name)
		}
		return strings.Join(out, ",")
	}
	if got := names(DigestFilter{MinBackupFailureRate: 0.5}); got != "b" {
		t.Errorf("failure rate >= 0.5: %q, want b", got)
	}
	if got := names(DigestFilter{RestoreOlderThan: 2 * time.Hour}); got != "b" {
		t.Errorf("not restored within 2h: %q, want b (never restored)", got)
	}
	if got := names(DigestFilter{RestoreOlderThan: 30 * time.Minute}); got != "a,b" {
		t.Errorf("not restored within 30m: %q, want a (55m ago) and b", got)
	}
}

func TestActiveNodes(t *testing.T) {
	t.Parallel()
	fx := newRunFixture(t, map[string]string{"a": "n2", "idle": ""}, catalog.ProtectionGroup{Workloads: []string{"a"}})
	where, err := fx.eng.ActiveNodes(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := where["a"]; !ok || got != "n2" {
		t.Errorf("a is active on %q (%v), want n2", got, ok)
	}
	if got, ok := where["idle"]; !ok || got != "" {
		t.Errorf("idle: %q (%v), want listed with no node", got, ok)
	}
	if _, err := fx.eng.ActiveNodes(context.Background(), "nope"); err == nil {
		t.Error("an unknown cluster gave no error")
	}
}
