package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	pgtest "github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
)

// Two daemons on one PostgreSQL: while another daemon's takeover of the
// scheduler leadership is in flight (its transaction holds the leadership
// row), the old leader's ClaimSlot and UpdateSlot must wait for it and then
// be refused. A write that checked the fence without holding the row would
// read the old, committed token and record a slot under a leader that has
// been replaced.
func TestSlotWritesWaitForTakeover(t *testing.T) {
	for _, update := range []bool{false, true} {
		name := "ClaimSlot"
		if update {
			name = "UpdateSlot"
		}
		t.Run(name, func(t *testing.T) { testSlotWriteWaitsForTakeover(t, update) })
	}
}

func testSlotWriteWaitsForTakeover(t *testing.T, update bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := pgtest.Start(t).CreateDatabase(t)
	open := func() *Store {
		s, err := Open(ctx, url, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	t0 := time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)
	if err := a.PutSchedule(ctx, catalog.Schedule{Name: "nightly", Group: "pg", Interval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	la, err := a.AcquireLeadership(ctx, catalog.RoleScheduler, "daemon-a", time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	slot := catalog.ScheduleSlot{Schedule: "nightly", Slot: t0, State: catalog.SlotRunning,
		Daemon: "daemon-a", Token: la.Token, RunID: "run-a", ClaimedAt: t0}
	write, op := a.ClaimSlot, "ClaimSlot"
	if update {
		if err := a.ClaimSlot(ctx, slot, t0); err != nil {
			t.Fatal(err)
		}
		slot.State, slot.FinishedAt = catalog.SlotSucceeded, t0.Add(time.Second)
		write, op = a.UpdateSlot, "UpdateSlot"
	}

	// Daemon b's takeover, held open: it has locked the row and written the
	// next token, and has not committed yet.
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // committed below; a no-op then
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM leaderships WHERE role = $1 FOR UPDATE`, catalog.RoleScheduler); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE leaderships SET holder = 'daemon-b', token = $1, highest_token = $1, expires_at = $2 WHERE role = $3`,
		la.Token+1, t0.Add(2*time.Minute).UnixNano(), catalog.RoleScheduler); err != nil {
		t.Fatal(err)
	}

	// Daemon a, whose clock says it still leads, writes the slot meanwhile.
	written := make(chan error, 1)
	go func() { written <- write(ctx, slot, t0.Add(time.Second)) }()
	// Wait until the claim is blocked on the row lock (or returned early).
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-written:
			t.Fatalf("%s returned %v while a takeover of the leadership was in flight; it must wait for it and then be refused", op, err)
		default:
		}
		var waiting int
		if err := b.db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%leaderships%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s neither waited for the leadership row nor returned within 20s", op)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	err = <-written
	if !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("%s by the replaced leader after the takeover committed: %v, want ErrConflict", op, err)
	}
	got, err := a.GetSlot(ctx, "nightly", t0)
	switch {
	case !update && !errors.Is(err, catalog.ErrNotFound):
		t.Errorf("the replaced leader's claim was recorded: GetSlot = %+v, %v; want ErrNotFound", got, err)
	case update && (err != nil || got.State != catalog.SlotRunning):
		t.Errorf("the replaced leader's update was recorded: GetSlot = %+v, %v; want the slot still running", got, err)
	}
}
