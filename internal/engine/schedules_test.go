package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
)

type scheduleFixture struct {
	eng   *Engine
	store *memstore.Store
	now   time.Time
	token int64
}

func newScheduleFixture(t *testing.T, rpo time.Duration) *scheduleFixture {
	t.Helper()
	ctx := context.Background()
	store := memstore.New()
	fx := &scheduleFixture{store: store, now: time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)}
	eng, err := New(Options{Store: store, Now: func() time.Time { return fx.now },
		Dial: func(node, endpoint string) (AgentClient, error) { return nil, errors.New("no agents in this test") }})
	if err != nil {
		t.Fatal(err)
	}
	fx.eng = eng
	if err := store.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "r", Workloads: []string{"web"}, RPO: rpo,
		CreatedAt: fx.now, UpdatedAt: fx.now}); err != nil {
		t.Fatal(err)
	}
	l, err := store.AcquireLeadership(ctx, catalog.RoleScheduler, "daemon-1", time.Hour, fx.now)
	if err != nil {
		t.Fatal(err)
	}
	fx.token = l.Token
	return fx
}

// slot records a slot as the leading daemon would.
func (fx *scheduleFixture) slot(t *testing.T, s catalog.ScheduleSlot) {
	t.Helper()
	ctx := context.Background()
	s.Schedule, s.Daemon, s.Token, s.ClaimedAt = "nightly", "daemon-1", fx.token, s.Slot
	final := s.State
	s.State = catalog.SlotRunning
	if final == catalog.SlotMissed {
		s.State = catalog.SlotMissed
	}
	if err := fx.store.ClaimSlot(ctx, s, fx.now); err != nil {
		t.Fatalf("claim slot %s: %v", s.Slot, err)
	}
	s.State = final
	if err := fx.store.UpdateSlot(ctx, s, fx.now); err != nil {
		t.Fatalf("update slot %s: %v", s.Slot, err)
	}
}

func TestPutScheduleValidates(t *testing.T) {
	t.Parallel()
	fx := newScheduleFixture(t, 0)
	ctx := context.Background()
	err := fx.eng.PutSchedule(ctx, catalog.Schedule{Name: "bad", Group: "g", Cron: "61 * * * *", TimeZone: "Mars/Olympus"})
	verrs, rest := ValidationErrors(err)
	if len(rest) != 0 || len(verrs) == 0 {
		t.Fatalf("want validation errors only, got %v / %v", verrs, rest)
	}
	fields := map[string]bool{}
	for _, v := range verrs {
		fields[v.Field] = true
	}
	if !fields["time_zone"] {
		t.Errorf("no time_zone error in %v", err)
	}
	err = fx.eng.PutSchedule(ctx, catalog.Schedule{Name: "orphan", Group: "nope", Interval: time.Hour})
	if v, ok := AsValidation(err); !ok || v.Field != FieldScheduleGroup {
		t.Fatalf("unknown group: want a protection_group validation error, got %v", err)
	}
	if err := fx.eng.PutSchedule(ctx, catalog.Schedule{Name: "ok", Group: "g", Interval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s, err := fx.eng.GetSchedule(ctx, "ok")
	if err != nil || s.CatchUp != catalog.CatchUpLatest || !s.CreatedAt.Equal(fx.now) {
		t.Fatalf("stored %+v, %v: want catch-up latest and created now", s, err)
	}
	// An update keeps the creation time: the planner counts slots from it.
	created := fx.now
	fx.now = fx.now.Add(time.Hour)
	if err := fx.eng.PutSchedule(ctx, catalog.Schedule{Name: "ok", Group: "g", Interval: 2 * time.Hour, Paused: true}); err != nil {
		t.Fatal(err)
	}
	if s, _ := fx.eng.GetSchedule(ctx, "ok"); !s.CreatedAt.Equal(created) || !s.UpdatedAt.Equal(fx.now) || !s.Paused {
		t.Fatalf("after update: %+v", s)
	}
}

func TestScheduleStatus(t *testing.T) {
	t.Parallel()
	fx := newScheduleFixture(t, time.Hour)
	ctx := context.Background()
	if err := fx.eng.PutSchedule(ctx, catalog.Schedule{Name: "nightly", Group: "g", Cron: "0 2 * * *", TimeZone: "Europe/Berlin"}); err != nil {
		t.Fatal(err)
	}

	// Nothing has happened yet, and no daemon ever heartbeat.
	st, err := fx.eng.ScheduleStatus(ctx, "nightly", fx.now)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 3, 1, 0, 0, 0, time.UTC); !st.NextRunAt.Equal(want) { // 02:00 CET
		t.Errorf("next run %s, want %s", st.NextRunAt, want)
	}
	if st.LastRun != nil || st.MissedSlots != 0 || st.ConsecutiveFailures != 0 || st.DaemonSeen {
		t.Errorf("fresh schedule: %+v", st)
	}
	if !st.RPOUnmet || st.GroupRPO != time.Hour || st.MaxGap < 24*time.Hour {
		t.Errorf("rpo 1h vs daily cron: unmet %v, rpo %s, max gap %s", st.RPOUnmet, st.GroupRPO, st.MaxGap)
	}

	// History, oldest first: success, missed, failed run with a failed
	// workload, partial, missed (newest).
	day := func(d int) time.Time { return time.Date(2026, 2, d, 1, 0, 0, 0, time.UTC) }
	fx.slot(t, catalog.ScheduleSlot{Slot: day(24), State: catalog.SlotSucceeded, RunID: "r24", StartedAt: day(24), FinishedAt: day(24).Add(time.Minute)})
	fx.slot(t, catalog.ScheduleSlot{Slot: day(25), State: catalog.SlotMissed, Reason: "no daemon ran between 01:00 and 02:00"})
	if err := fx.store.CreateRun(ctx, catalog.Run{ID: "r26", Group: "g", Cluster: "c", Status: catalog.RunRunning, StartedAt: day(26)}); err != nil {
		t.Fatal(err)
	}
	if err := fx.store.AddStep(ctx, catalog.Step{RunID: "r26", Seq: 1, Phase: "node", Node: "n1", Workload: "web", Outcome: catalog.StepFailed,
		Error: "quiesce timed out", StartedAt: day(26), FinishedAt: day(26)}); err != nil {
		t.Fatal(err)
	}
	fx.slot(t, catalog.ScheduleSlot{Slot: day(26), State: catalog.SlotFailed, RunID: "r26", StartedAt: day(26), FinishedAt: day(26).Add(time.Minute)})
	fx.slot(t, catalog.ScheduleSlot{Slot: day(27), State: catalog.SlotPartial, RunID: "r27-deleted", StartedAt: day(27), FinishedAt: day(27).Add(time.Minute)})
	fx.slot(t, catalog.ScheduleSlot{Slot: day(28), State: catalog.SlotMissed, Reason: "start window of 1h passed"})
	// Also a daemon heartbeat 90 s ago: within DaemonSeenWithin.
	if err := fx.store.PutDaemon(ctx, catalog.Daemon{ID: "daemon-1", Host: "h", StartedAt: fx.now.Add(-time.Hour), SeenAt: fx.now.Add(-90 * time.Second)}); err != nil {
		t.Fatal(err)
	}

	st, err = fx.eng.ScheduleStatus(ctx, "nightly", fx.now)
	if err != nil {
		t.Fatal(err)
	}
	if st.MissedSlots != 2 || st.LastMissedReason != "start window of 1h passed" || !st.LastMissedSlot.Equal(day(28)) {
		t.Errorf("missed: %d, %q at %s", st.MissedSlots, st.LastMissedReason, st.LastMissedSlot)
	}
	if st.ConsecutiveFailures != 2 {
		t.Errorf("consecutive failures %d, want 2 (partial and failed since the success)", st.ConsecutiveFailures)
	}
	if st.LastRun == nil || st.LastRun.RunID != "r27-deleted" || st.LastRun.Status != catalog.SlotPartial || !st.LastRun.Slot.Equal(day(27)) {
		t.Fatalf("last run: %+v", st.LastRun)
	}
	if !st.DaemonSeen || !st.DaemonSeenAt.Equal(fx.now.Add(-90*time.Second)) {
		t.Errorf("daemon seen %v at %s", st.DaemonSeen, st.DaemonSeenAt)
	}

	// Per-workload errors come from the run's steps; the daemon goes quiet.
	fx.slot(t, catalog.ScheduleSlot{Slot: day(28).Add(time.Hour), State: catalog.SlotMissed, Reason: "x"})
	st, err = fx.eng.ScheduleStatus(ctx, "nightly", fx.now.Add(31*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.DaemonSeen {
		t.Errorf("a heartbeat %s old counts as seen (bound %s)", 121*time.Second, DaemonSeenWithin)
	}
	if err := fx.store.DeleteSchedule(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	if err := fx.eng.PutSchedule(ctx, catalog.Schedule{Name: "nightly", Group: "g", Cron: "0 2 * * *", Paused: true}); err != nil {
		t.Fatal(err)
	}
	fx.slot(t, catalog.ScheduleSlot{Slot: day(26), State: catalog.SlotFailed, RunID: "r26", Reason: "1 of 1 workloads failed"})
	st, err = fx.eng.ScheduleStatus(ctx, "nightly", fx.now)
	if err != nil {
		t.Fatal(err)
	}
	if !st.NextRunAt.IsZero() {
		t.Errorf("paused schedule has next run %s", st.NextRunAt)
	}
	if st.LastRun == nil || strings.Join(st.LastRun.Errors, "|") != "1 of 1 workloads failed|web on n1: quiesce timed out" {
		t.Fatalf("last run errors: %+v", st.LastRun)
	}
}

func TestDeleteScheduleKeepsRecoveryPoints(t *testing.T) {
	t.Parallel()
	fx := newScheduleFixture(t, 0)
	ctx := context.Background()
	if err := fx.eng.PutSchedule(ctx, catalog.Schedule{Name: "nightly", Group: "g", Interval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	fx.slot(t, catalog.ScheduleSlot{Slot: fx.now.Truncate(time.Hour), State: catalog.SlotSucceeded})
	if err := fx.store.PutRecoveryPoint(ctx, catalog.RecoveryPoint{ID: "p1", Repository: "r", Group: "g", Workload: "web", Node: "n1", Cluster: "c", CreatedAt: fx.now}); err != nil {
		t.Fatal(err)
	}
	if err := fx.eng.DeleteSchedule(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.store.GetSlot(ctx, "nightly", fx.now.Truncate(time.Hour)); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("slot after delete: %v, want not found", err)
	}
	if pts, err := fx.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Repository: "r"}); err != nil || len(pts) != 1 {
		t.Errorf("recovery points after delete: %d, %v", len(pts), err)
	}
}

func TestRegisteredNodesStaleAndDrift(t *testing.T) {
	t.Parallel()
	fx := newScheduleFixture(t, 0)
	ctx := context.Background()
	for _, r := range []catalog.NodeRegistration{
		{Cluster: "c", Node: "n2", Endpoint: "http://127.0.0.1:2", SeenAt: fx.now.Add(-StaleRegistrationAfter - time.Second)},
		{Cluster: "c", Node: "n1", Endpoint: "http://127.0.0.1:1", SeenAt: fx.now.Add(-StaleRegistrationAfter)},
		{Cluster: "c", Node: "n9", Endpoint: "http://127.0.0.1:9", SeenAt: fx.now},
		{Cluster: "other", Node: "n1", Endpoint: "http://127.0.0.1:3", SeenAt: fx.now},
	} {
		if err := fx.store.PutNodeRegistration(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	all, err := fx.eng.RegisteredNodes(ctx, "")
	if err != nil || len(all) != 4 {
		t.Fatalf("all registrations: %d, %v", len(all), err)
	}
	nodes, err := fx.eng.RegisteredNodes(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, n := range nodes {
		got = append(got, n.Node+map[bool]string{true: "(stale)", false: ""}[n.Stale])
	}
	if strings.Join(got, ",") != "n1,n2(stale),n9" {
		t.Errorf("registrations of c: %v", got)
	}
	undeclared, stale, err := fx.eng.RegistrationDrift(ctx, "c", []string{"n1", "n2", "n3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(undeclared) != 1 || undeclared[0].Node != "n9" || len(stale) != 1 || stale[0].Node != "n2" {
		t.Errorf("drift: undeclared %v, stale %v", undeclared, stale)
	}
}

// A stored schedule the planner refuses (written by another tool) still has
// a status, so Terraform can refresh it and apply a fix.
func TestScheduleStatusOfUnplannableSchedule(t *testing.T) {
	t.Parallel()
	fx := newScheduleFixture(t, 0)
	ctx := context.Background()
	if err := fx.store.PutSchedule(ctx, catalog.Schedule{Name: "nightly", Group: "g", Cron: "0 2 * * *", TimeZone: "Mars/Olympus",
		CatchUp: catalog.CatchUpLatest, CreatedAt: fx.now, UpdatedAt: fx.now}); err != nil {
		t.Fatal(err)
	}
	fx.slot(t, catalog.ScheduleSlot{Slot: fx.now.Add(-time.Hour), State: catalog.SlotSucceeded})
	st, err := fx.eng.ScheduleStatus(ctx, "nightly", fx.now)
	if err != nil {
		t.Fatalf("status of an unplannable schedule: %v", err)
	}
	if st.PlanErr == nil || !strings.Contains(st.PlanErr.Error(), "Mars/Olympus") || !st.NextRunAt.IsZero() {
		t.Errorf("plan error %v, next run %s", st.PlanErr, st.NextRunAt)
	}
	if st.LastRun == nil || st.LastRun.Status != catalog.SlotSucceeded {
		t.Errorf("history not reported: %+v", st.LastRun)
	}
}
