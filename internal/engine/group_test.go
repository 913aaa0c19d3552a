package engine

import (
	"strings"
	"testing"
	"time"
)

func TestReconcileStatus(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	recorded := GroupStatus{
		Workloads: []ProtectedWorkload{
			{Name: "web", Node: "n1", State: "active", LastBackupAt: t0, LastRecoveryPoint: "p1", RPOMet: true},
			{Name: "db", Node: "n2", State: "active", RPOMet: false},
			{Name: "app", Node: "n3", State: "active", LastBackupAt: t0, RPOMet: true},
		},
		Unprotected: []string{"db"},
	}
	// A routine backup: db now protected, web has a newer point. No drift.
	fresh := GroupStatus{
		Workloads: []ProtectedWorkload{
			{Name: "web", Node: "n1", State: "active", LastBackupAt: t0.Add(time.Hour), LastRecoveryPoint: "p2", RPOMet: true},
			{Name: "db", Node: "n2", State: "active", LastBackupAt: t0.Add(time.Hour), LastRecoveryPoint: "p3", RPOMet: true},
			{Name: "app", Node: "n3", State: "active", LastBackupAt: t0, RPOMet: true},
		},
	}
	accepted, drift := ReconcileStatus(recorded, fresh)
	if len(drift) != 0 {
		t.Fatalf("routine backup reported drift: %v", drift)
	}
	if accepted.Workloads[0].LastRecoveryPoint != "p2" || len(accepted.Unprotected) != 0 {
		t.Fatalf("improvements not accepted: %+v", accepted)
	}
	// Degradations: web moved, app breached its RPO, new unprotected "new".
	fresh2 := GroupStatus{
		Workloads: []ProtectedWorkload{
			{Name: "web", Node: "n2", State: "active", RPOMet: true},
			{Name: "db", Node: "n2", State: "active", RPOMet: true},
			{Name: "app", Node: "n3", State: "active", LastBackupAt: t0, RPOMet: false},
			{Name: "new", Node: "n1", State: "active"},
		},
		Unprotected: []string{"new"},
	}
	accepted2, drift2 := ReconcileStatus(accepted, fresh2)
	text := strings.Join(drift2, "\n")
	for _, want := range []string{`web moved`, `app breached its RPO`, `new is newly selected`, `newly unprotected (selected, no recovery point): new`} {
		if !strings.Contains(text, want) {
			t.Errorf("drift does not mention %q:\n%s", want, text)
		}
	}
	if accepted2.Workloads[0].Node != "n1" || !accepted2.Workloads[2].RPOMet {
		t.Fatalf("degradations must stay as recorded until applied: %+v", accepted2.Workloads)
	}
}
