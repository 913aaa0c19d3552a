package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// ScheduleStore mirrors engine.ScheduleStore.
type ScheduleStore interface {
	PutSchedule(ctx context.Context, s catalog.Schedule) error
	GetSchedule(ctx context.Context, name string) (catalog.Schedule, error)
	ListSchedules(ctx context.Context, group string) ([]catalog.Schedule, error)
	DeleteSchedule(ctx context.Context, name string) error

	ClaimSlot(ctx context.Context, s catalog.ScheduleSlot, now time.Time) error
	UpdateSlot(ctx context.Context, s catalog.ScheduleSlot, now time.Time) error
	GetSlot(ctx context.Context, schedule string, slot time.Time) (catalog.ScheduleSlot, error)
	ListSlots(ctx context.Context, schedule string, limit int) ([]catalog.ScheduleSlot, error)
	RunningSlots(ctx context.Context) ([]catalog.ScheduleSlot, error)

	AcquireLeadership(ctx context.Context, role, holder string, ttl time.Duration, now time.Time) (catalog.Leadership, error)
	ReleaseLeadership(ctx context.Context, role string, token int64) error
	GetLeadership(ctx context.Context, role string) (catalog.Leadership, error)

	PutDaemon(ctx context.Context, d catalog.Daemon) error
	ListDaemons(ctx context.Context) ([]catalog.Daemon, error)
	DeleteDaemon(ctx context.Context, id string) error

	PutNodeRegistration(ctx context.Context, r catalog.NodeRegistration) error
	ListNodeRegistrations(ctx context.Context, cluster string) ([]catalog.NodeRegistration, error)
}

// scheduleCases are the schedule tests Run runs.
var scheduleCases = []struct {
	name string
	fn   func(t *testing.T, s Store)
}{
	{"ScheduleRoundTrip", testScheduleRoundTrip},
	{"ScheduleReplaceListAndDelete", testScheduleReplaceListAndDelete},
	{"ScheduleInvalidRejected", testScheduleInvalidRejected},
	{"LeadershipGrantRenewConflict", testLeadershipGrantRenewConflict},
	{"LeadershipTokenNeverReused", testLeadershipTokenNeverReused},
	{"LeadershipConcurrentAcquire", testLeadershipConcurrentAcquire},
	{"SlotClaimRoundTripAndUnique", testSlotClaimRoundTripAndUnique},
	{"SlotFencing", testSlotFencing},
	{"SlotNewLeaderUpdatesOldClaim", testSlotNewLeaderUpdatesOldClaim},
	{"SlotConcurrentClaim", testSlotConcurrentClaim},
	{"SlotListOrderAndLimit", testSlotListOrderAndLimit},
	{"SlotRunning", testSlotRunning},
	{"SlotDeletedWithSchedule", testSlotDeletedWithSchedule},
	{"SlotInvalidRejected", testSlotInvalidRejected},
	{"Daemons", testDaemons},
	{"NodeRegistrations", testNodeRegistrations},
	{"CanceledContextSchedules", testCanceledContextSchedules},
}

// schedT0 is a slot time with nanoseconds in a non-UTC zone: slots must
// compare by instant and keep every nanosecond.
var schedT0 = time.Date(2026, 3, 29, 2, 30, 0, 123456789, time.FixedZone("CET", 3600))

func sampleSchedule(name, group string) catalog.Schedule {
	return catalog.Schedule{
		Name: name, Group: group, Cron: "30 2 * * *", TimeZone: "Europe/Berlin",
		StartWindow: 15*time.Minute + 7, CompletionWindow: 3 * time.Hour, Jitter: 90 * time.Second,
		CatchUp: catalog.CatchUpLatest, Tags: []string{"daily", "offsite"},
		Retention:   catalog.Retention{KeepLast: 3, KeepHourly: 24, KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 12, KeepYearly: 2, KeepWithin: 36 * time.Hour},
		VerifyEvery: 7 * 24 * time.Hour,
		CreatedAt:   base, UpdatedAt: base.Add(time.Hour + 1),
	}
}

func mustPutSchedule(t *testing.T, s Store, sc catalog.Schedule) {
	t.Helper()
	if err := s.PutSchedule(context.Background(), sc); err != nil {
		t.Fatalf("PutSchedule(%s): %v", sc.Name, err)
	}
}

func mustLead(t *testing.T, s Store, holder string, ttl time.Duration, now time.Time) catalog.Leadership {
	t.Helper()
	l, err := s.AcquireLeadership(context.Background(), catalog.RoleScheduler, holder, ttl, now)
	if err != nil {
		t.Fatalf("AcquireLeadership(%s, %s): %v", catalog.RoleScheduler, holder, err)
	}
	return l
}

func runningSlot(schedule string, slot time.Time, l catalog.Leadership, runID string) catalog.ScheduleSlot {
	return catalog.ScheduleSlot{Schedule: schedule, Slot: slot, State: catalog.SlotRunning, Daemon: l.Holder, Token: l.Token,
		RunID: runID, ClaimedAt: slot.Add(time.Second), StartedAt: slot.Add(2 * time.Second)}
}

func mustClaim(t *testing.T, s Store, sl catalog.ScheduleSlot, now time.Time) {
	t.Helper()
	if err := s.ClaimSlot(context.Background(), sl, now); err != nil {
		t.Fatalf("ClaimSlot(%s @ %s, token %d): %v", sl.Schedule, sl.Slot, sl.Token, err)
	}
}

func mustGetSlot(t *testing.T, s Store, schedule string, slot time.Time) catalog.ScheduleSlot {
	t.Helper()
	got, err := s.GetSlot(context.Background(), schedule, slot)
	if err != nil {
		t.Fatalf("GetSlot(%s @ %s): %v", schedule, slot, err)
	}
	return got
}

func testScheduleRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	want := sampleSchedule("nightly", "pg")
	mustPutSchedule(t, s, want)
	got, err := s.GetSchedule(ctx, "nightly")
	if err != nil {
		t.Fatalf("GetSchedule(nightly): %v", err)
	}
	assertSame(t, "schedule nightly", got, want)

	iv := catalog.Schedule{Name: "every-5m", Group: "pg", Interval: 5*time.Minute + 3, Paused: true, CatchUp: catalog.CatchUpSkip}
	mustPutSchedule(t, s, iv)
	got, err = s.GetSchedule(ctx, "every-5m")
	if err != nil {
		t.Fatalf("GetSchedule(every-5m): %v", err)
	}
	assertSame(t, "schedule every-5m", got, iv)
	if !got.CreatedAt.IsZero() || len(got.Tags) != 0 {
		t.Errorf("a schedule without times or tags came back with CreatedAt=%v Tags=%q", got.CreatedAt, got.Tags)
	}

	// The caller's slice is copied in and out.
	want.Tags[0] = "changed"
	got.Tags = append(got.Tags, "x")
	again, err := s.GetSchedule(ctx, "nightly")
	if err != nil || len(again.Tags) != 2 || again.Tags[0] != "daily" {
		t.Errorf("stored tags changed with the caller's slice: %q, %v", again.Tags, err)
	}
	_, err = s.GetSchedule(ctx, "missing-schedule")
	assertErr(t, "GetSchedule(missing-schedule)", err, catalog.ErrNotFound, "missing-schedule")
}

func testScheduleReplaceListAndDelete(t *testing.T, s Store) {
	ctx := context.Background()
	for _, sc := range []catalog.Schedule{sampleSchedule("b", "g1"), sampleSchedule("a", "g2"), sampleSchedule("c", "g1"), sampleSchedule("B", "g1")} {
		mustPutSchedule(t, s, sc)
	}
	repl := sampleSchedule("c", "g2")
	repl.Cron, repl.Interval, repl.Tags, repl.Retention = "", time.Hour, nil, catalog.Retention{}
	mustPutSchedule(t, s, repl)
	got, err := s.GetSchedule(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, "replaced schedule c", got, repl)

	names := func(group string) string {
		t.Helper()
		l, err := s.ListSchedules(ctx, group)
		if err != nil {
			t.Fatalf("ListSchedules(%q): %v", group, err)
		}
		out := ""
		for _, sc := range l {
			out += sc.Name + " "
		}
		return out
	}
	// Names sort by bytes: upper case first.
	if got := names(""); got != "B a b c " {
		t.Errorf("ListSchedules(\"\") = %q, want \"B a b c \"", got)
	}
	if got := names("g1"); got != "B b " {
		t.Errorf("ListSchedules(g1) = %q, want \"B b \"", got)
	}
	if got := names("none"); got != "" {
		t.Errorf("ListSchedules(none) = %q, want none", got)
	}
	if err := s.DeleteSchedule(ctx, "b"); err != nil {
		t.Fatalf("DeleteSchedule(b): %v", err)
	}
	_, err = s.GetSchedule(ctx, "b")
	assertErr(t, "GetSchedule(b) after delete", err, catalog.ErrNotFound, "b")
	err = s.DeleteSchedule(ctx, "b")
	assertErr(t, "DeleteSchedule(b) twice", err, catalog.ErrNotFound, "b")
	if got := names(""); got != "B a c " {
		t.Errorf("ListSchedules after deleting b = %q", got)
	}
}

func testScheduleInvalidRejected(t *testing.T, s Store) {
	ctx := context.Background()
	ok := sampleSchedule("ok", "g")
	for _, c := range []struct {
		name    string
		mutate  func(*catalog.Schedule)
		mention string
	}{
		{"no name", func(x *catalog.Schedule) { x.Name = "" }, "name"},
		{"no group", func(x *catalog.Schedule) { x.Group = "" }, "group"},
		{"neither cron nor interval", func(x *catalog.Schedule) { x.Cron = "" }, "exactly one"},
		{"both cron and interval", func(x *catalog.Schedule) { x.Interval = time.Hour }, "exactly one"},
		{"unknown catch-up", func(x *catalog.Schedule) { x.CatchUp = "all" }, "all"},
		{"negative jitter", func(x *catalog.Schedule) { x.Jitter = -1 }, "Jitter"},
		{"negative interval", func(x *catalog.Schedule) { x.Cron, x.Interval = "", -time.Second }, "Interval"},
		{"negative retention", func(x *catalog.Schedule) { x.Retention.KeepDaily = -1 }, "KeepDaily"},
		{"empty tag", func(x *catalog.Schedule) { x.Tags = []string{"daily", ""} }, "tag"},
	} {
		bad := ok
		bad.Tags = append([]string(nil), ok.Tags...)
		c.mutate(&bad)
		err := s.PutSchedule(ctx, bad)
		if err == nil {
			t.Errorf("%s: PutSchedule accepted %+v", c.name, bad)
			continue
		}
		if !containsFold(err.Error(), c.mention) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.mention)
		}
	}
	if l, err := s.ListSchedules(ctx, ""); err != nil || len(l) != 0 {
		t.Errorf("after refused writes ListSchedules = %+v, %v; want none", l, err)
	}
	ok.CatchUp = ""
	mustPutSchedule(t, s, ok) // "" is the default policy
}

func testLeadershipGrantRenewConflict(t *testing.T, s Store) {
	ctx := context.Background()
	_, err := s.GetLeadership(ctx, catalog.RoleScheduler)
	assertErr(t, "GetLeadership before any grant", err, catalog.ErrNotFound, catalog.RoleScheduler)

	ttl := 30 * time.Second
	a := mustLead(t, s, "daemon-a", ttl, base)
	if a.Role != catalog.RoleScheduler || a.Holder != "daemon-a" || a.Token != 1 || !a.ExpiresAt.Equal(base.Add(ttl)) {
		t.Fatalf("first grant = %+v, want daemon-a with token 1 until %s", a, base.Add(ttl))
	}
	got, err := s.GetLeadership(ctx, catalog.RoleScheduler)
	if err != nil || got.Holder != "daemon-a" || got.Token != 1 || !got.ExpiresAt.Equal(a.ExpiresAt) {
		t.Errorf("GetLeadership = %+v, %v; want %+v", got, err, a)
	}
	// Another daemon is refused until the expiry (inclusive of the instant before).
	_, err = s.AcquireLeadership(ctx, catalog.RoleScheduler, "daemon-b", ttl, a.ExpiresAt.Add(-1))
	assertErr(t, "AcquireLeadership(daemon-b) before expiry", err, catalog.ErrConflict, "daemon-a")

	// Renewal keeps the token and moves the expiry.
	r := mustLead(t, s, "daemon-a", ttl, base.Add(20*time.Second))
	if r.Token != a.Token || !r.ExpiresAt.Equal(base.Add(50*time.Second)) {
		t.Errorf("renewal = %+v, want token %d until %s", r, a.Token, base.Add(50*time.Second))
	}
	_, err = s.AcquireLeadership(ctx, catalog.RoleScheduler, "daemon-b", ttl, base.Add(40*time.Second))
	assertErr(t, "AcquireLeadership(daemon-b) before the renewed expiry", err, catalog.ErrConflict, "daemon-a")

	// At the expiry another daemon takes over with the next token.
	b := mustLead(t, s, "daemon-b", ttl, r.ExpiresAt)
	if b.Holder != "daemon-b" || b.Token != 2 {
		t.Errorf("takeover = %+v, want daemon-b with token 2", b)
	}
	// The old holder is now refused.
	_, err = s.AcquireLeadership(ctx, catalog.RoleScheduler, "daemon-a", ttl, r.ExpiresAt.Add(time.Second))
	assertErr(t, "AcquireLeadership(daemon-a) after takeover", err, catalog.ErrConflict, "daemon-b")

	// Roles are independent.
	other, err := s.AcquireLeadership(ctx, "verifier", "daemon-a", ttl, base)
	if err != nil || other.Token != 1 {
		t.Errorf("another role's first grant = %+v, %v; want token 1", other, err)
	}
	for _, c := range []struct {
		role, holder string
		ttl          time.Duration
		now          time.Time
	}{{"", "d", ttl, base}, {"r", "", ttl, base}, {"r", "d", 0, base}, {"r", "d", ttl, time.Time{}}} {
		if _, err := s.AcquireLeadership(ctx, c.role, c.holder, c.ttl, c.now); err == nil {
			t.Errorf("AcquireLeadership(%q, %q, %s, %v) accepted an invalid request", c.role, c.holder, c.ttl, c.now)
		}
	}
}

// Tokens never go back and are never issued twice, across releases and
// expiries: a fenced write with an old token stays refused forever.
func testLeadershipTokenNeverReused(t *testing.T, s Store) {
	ctx := context.Background()
	ttl := time.Minute
	a := mustLead(t, s, "daemon-a", ttl, base)
	if err := s.ReleaseLeadership(ctx, catalog.RoleScheduler, a.Token); err != nil {
		t.Fatalf("ReleaseLeadership: %v", err)
	}
	got, err := s.GetLeadership(ctx, catalog.RoleScheduler)
	if err != nil || got.Holder != "" || got.Token != a.Token || !got.ExpiresAt.IsZero() {
		t.Errorf("GetLeadership after release = %+v, %v; want no holder, token %d, zero expiry", got, err, a.Token)
	}
	// Released: anyone may take it at once, with a new token, even the same daemon.
	a2 := mustLead(t, s, "daemon-a", ttl, base.Add(time.Second))
	if a2.Token != a.Token+1 {
		t.Errorf("re-acquire after release: token %d, want %d (a released token is never issued again)", a2.Token, a.Token+1)
	}
	// Releasing a stale token does nothing.
	if err := s.ReleaseLeadership(ctx, catalog.RoleScheduler, a.Token); err != nil {
		t.Errorf("ReleaseLeadership with a stale token: %v, want no error", err)
	}
	if got, err := s.GetLeadership(ctx, catalog.RoleScheduler); err != nil || got.Holder != "daemon-a" || got.Token != a2.Token {
		t.Errorf("a stale release changed the leadership: %+v, %v", got, err)
	}
	if err := s.ReleaseLeadership(ctx, "never-held", 1); err != nil {
		t.Errorf("ReleaseLeadership of a role never held: %v, want no error", err)
	}
	// Expiry, then another daemon: next token.
	b := mustLead(t, s, "daemon-b", ttl, a2.ExpiresAt)
	if b.Token != a2.Token+1 {
		t.Errorf("takeover after expiry: token %d, want %d", b.Token, a2.Token+1)
	}
	// Release, and the old holder of token a2 comes back: still a new token.
	if err := s.ReleaseLeadership(ctx, catalog.RoleScheduler, b.Token); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLeadership(ctx, catalog.RoleScheduler, b.Token); err != nil {
		t.Errorf("releasing twice: %v, want no error", err)
	}
	a3 := mustLead(t, s, "daemon-a", ttl, b.ExpiresAt)
	if a3.Token != b.Token+1 {
		t.Errorf("grant after two releases: token %d, want %d", a3.Token, b.Token+1)
	}
}

// testLeadershipConcurrentAcquire races daemons for the role, round after
// round: exactly one wins each round, with a token above the last.
func testLeadershipConcurrentAcquire(t *testing.T, s Store) {
	ctx := context.Background()
	const rounds, contenders = 5, 8
	var last int64
	for r := 0; r < rounds; r++ {
		now := base.Add(time.Duration(r) * time.Second)
		start := make(chan struct{})
		var mu sync.Mutex
		var winners []catalog.Leadership
		var wg sync.WaitGroup
		for i := 0; i < contenders; i++ {
			holder := fmt.Sprintf("daemon-%02d", i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				l, err := s.AcquireLeadership(ctx, catalog.RoleScheduler, holder, time.Hour, now)
				switch {
				case err == nil:
					mu.Lock()
					winners = append(winners, l)
					mu.Unlock()
				case !errors.Is(err, catalog.ErrConflict):
					t.Errorf("round %d: AcquireLeadership(%s): %v, want success or ErrConflict", r, holder, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: %d daemons won the leadership, want exactly 1: %+v", r, len(winners), winners)
		}
		if winners[0].Token != last+1 {
			t.Fatalf("round %d: winner got token %d, want %d (losers consume no token)", r, winners[0].Token, last+1)
		}
		last = winners[0].Token
		if err := s.ReleaseLeadership(ctx, catalog.RoleScheduler, last); err != nil {
			t.Fatal(err)
		}
	}
}

func testSlotClaimRoundTripAndUnique(t *testing.T, s Store) {
	ctx := context.Background()
	mustPutSchedule(t, s, sampleSchedule("nightly", "pg"))
	l := mustLead(t, s, "daemon-a", time.Hour, schedT0)
	want := runningSlot("nightly", schedT0, l, "run-1")
	mustClaim(t, s, want, schedT0)
	got := mustGetSlot(t, s, "nightly", schedT0)
	assertSame(t, "claimed slot", got, want)
	if got.Slot.Location() != time.UTC {
		t.Errorf("slot time comes back in %s, want UTC", got.Slot.Location())
	}
	// The same instant in another zone is the same slot.
	dup := want
	dup.Slot, dup.RunID = schedT0.UTC(), "run-2"
	err := s.ClaimSlot(ctx, dup, schedT0)
	assertErr(t, "ClaimSlot of a claimed slot", err, catalog.ErrConflict, "nightly")
	if got := mustGetSlot(t, s, "nightly", schedT0.In(time.FixedZone("X", -7*3600))); got.RunID != "run-1" {
		t.Errorf("a refused claim changed the slot: run %q, want run-1", got.RunID)
	}
	// One nanosecond later is another slot.
	next := want
	next.Slot, next.RunID = schedT0.Add(1), "run-3"
	mustClaim(t, s, next, schedT0)
	if got := mustGetSlot(t, s, "nightly", schedT0.Add(1)); got.RunID != "run-3" {
		t.Errorf("slot one nanosecond later: run %q, want run-3", got.RunID)
	}
	// A missed slot is claimed finished, with its reason.
	missed := catalog.ScheduleSlot{Schedule: "nightly", Slot: schedT0.Add(-24 * time.Hour), State: catalog.SlotMissed, Daemon: l.Holder, Token: l.Token,
		Reason: "not started within its start window", ClaimedAt: schedT0, FinishedAt: schedT0}
	mustClaim(t, s, missed, schedT0)
	assertSame(t, "missed slot", mustGetSlot(t, s, "nightly", missed.Slot), missed)

	_, err = s.GetSlot(ctx, "nightly", schedT0.Add(time.Hour))
	assertErr(t, "GetSlot of an unclaimed slot", err, catalog.ErrNotFound, "nightly")
	_, err = s.GetSlot(ctx, "other", schedT0)
	assertErr(t, "GetSlot of another schedule", err, catalog.ErrNotFound, "other")
	// A slot of a schedule that does not exist is refused.
	err = s.ClaimSlot(ctx, runningSlot("ghost", schedT0, l, "run-g"), schedT0)
	assertErr(t, "ClaimSlot of a schedule that does not exist", err, catalog.ErrNotFound, "ghost")

	// UpdateSlot replaces the mutable fields and keeps ClaimedAt.
	upd := want
	upd.State, upd.RunID, upd.Reason, upd.StartedAt, upd.FinishedAt = catalog.SlotPartial, "run-1b", "node-2 unreachable", schedT0.Add(3*time.Second), schedT0.Add(time.Hour+5)
	upd.ClaimedAt = schedT0.Add(time.Minute)
	if err := s.UpdateSlot(ctx, upd, schedT0.Add(time.Minute)); err != nil {
		t.Fatalf("UpdateSlot: %v", err)
	}
	upd.ClaimedAt = want.ClaimedAt
	assertSame(t, "updated slot", mustGetSlot(t, s, "nightly", schedT0), upd)
	err = s.UpdateSlot(ctx, runningSlot("nightly", schedT0.Add(time.Hour), l, "r"), schedT0)
	assertErr(t, "UpdateSlot of an unclaimed slot", err, catalog.ErrNotFound, "nightly")
}

// A daemon whose leadership expired, was released, or was taken over can
// neither claim nor update; the fence is judged at the now passed.
func testSlotFencing(t *testing.T, s Store) {
	ctx := context.Background()
	mustPutSchedule(t, s, sampleSchedule("nightly", "pg"))
	slot := func(i int) time.Time { return schedT0.Add(time.Duration(i) * time.Hour) }

	// No leadership at all.
	err := s.ClaimSlot(ctx, runningSlot("nightly", slot(0), catalog.Leadership{Holder: "daemon-a", Token: 1}, "r0"), schedT0)
	assertErr(t, "ClaimSlot before any leadership", err, catalog.ErrConflict, "scheduler")

	ttl := time.Minute
	a := mustLead(t, s, "daemon-a", ttl, schedT0)
	mustClaim(t, s, runningSlot("nightly", slot(0), a, "r0"), schedT0)
	// A token that was never granted.
	forged := a
	forged.Token = a.Token + 1
	err = s.ClaimSlot(ctx, runningSlot("nightly", slot(1), forged, "r1"), schedT0)
	assertErr(t, "ClaimSlot with a token never granted", err, catalog.ErrConflict, "token")
	// Expired (at ExpiresAt and after), nobody else leads yet.
	err = s.ClaimSlot(ctx, runningSlot("nightly", slot(1), a, "r1"), a.ExpiresAt)
	assertErr(t, "ClaimSlot at the leadership's expiry", err, catalog.ErrConflict, "expired")
	sl0 := mustGetSlot(t, s, "nightly", slot(0))
	sl0.State, sl0.FinishedAt = catalog.SlotSucceeded, a.ExpiresAt
	err = s.UpdateSlot(ctx, sl0, a.ExpiresAt.Add(time.Second))
	assertErr(t, "UpdateSlot after the leadership expired", err, catalog.ErrConflict, "expired")
	if got := mustGetSlot(t, s, "nightly", slot(0)); got.State != catalog.SlotRunning {
		t.Errorf("a refused update changed the slot state to %s", got.State)
	}
	// Just before the expiry the same writes succeed.
	if err := s.UpdateSlot(ctx, sl0, a.ExpiresAt.Add(-1)); err != nil {
		t.Errorf("UpdateSlot just before expiry: %v", err)
	}

	// Takeover: the old token is refused, the new one accepted.
	b := mustLead(t, s, "daemon-b", ttl, a.ExpiresAt)
	now := a.ExpiresAt.Add(time.Second)
	err = s.ClaimSlot(ctx, runningSlot("nightly", slot(2), a, "r2"), now)
	assertErr(t, "ClaimSlot with the token of a leader taken over", err, catalog.ErrConflict, "token")
	sl0.State = catalog.SlotFailed
	err = s.UpdateSlot(ctx, sl0, now)
	assertErr(t, "UpdateSlot with the token of a leader taken over", err, catalog.ErrConflict, "token")
	if got := mustGetSlot(t, s, "nightly", slot(0)); got.State != catalog.SlotSucceeded || got.Token != a.Token {
		t.Errorf("a stale update changed the slot: %+v", got)
	}
	// A daemon whose clock lags still believes it leads: the token decides.
	err = s.ClaimSlot(ctx, runningSlot("nightly", slot(2), a, "r2"), a.ExpiresAt.Add(-time.Second))
	assertErr(t, "ClaimSlot with a taken-over token and a lagging clock", err, catalog.ErrConflict, "token")
	mustClaim(t, s, runningSlot("nightly", slot(2), b, "r2"), now)

	// Released: even the token that was current is refused.
	if err := s.ReleaseLeadership(ctx, catalog.RoleScheduler, b.Token); err != nil {
		t.Fatal(err)
	}
	err = s.ClaimSlot(ctx, runningSlot("nightly", slot(3), b, "r3"), now)
	assertErr(t, "ClaimSlot after releasing the leadership", err, catalog.ErrConflict, "released")

	// Only the scheduler role fences slots.
	v, err := s.AcquireLeadership(ctx, "verifier", "daemon-c", ttl, now)
	if err != nil {
		t.Fatal(err)
	}
	err = s.ClaimSlot(ctx, runningSlot("nightly", slot(3), v, "r3"), now)
	assertErr(t, "ClaimSlot with another role's token", err, catalog.ErrConflict, "scheduler")
	if err := s.ClaimSlot(ctx, runningSlot("nightly", slot(3), b, "r3"), time.Time{}); err == nil {
		t.Error("ClaimSlot with a zero now was accepted")
	}
	got, err := s.ListSlots(ctx, "nightly", 0)
	if err != nil || len(got) != 2 {
		t.Errorf("slots after the refused claims = %+v, %v; want slot 0 and slot 2 only", got, err)
	}
}

// A new leader completes a slot the old leader claimed and left running.
func testSlotNewLeaderUpdatesOldClaim(t *testing.T, s Store) {
	ctx := context.Background()
	mustPutSchedule(t, s, sampleSchedule("nightly", "pg"))
	a := mustLead(t, s, "daemon-a", time.Minute, schedT0)
	claimed := runningSlot("nightly", schedT0, a, "run-a")
	mustClaim(t, s, claimed, schedT0)
	b := mustLead(t, s, "daemon-b", time.Minute, a.ExpiresAt)
	done := claimed
	done.State, done.Token, done.Reason, done.FinishedAt = catalog.SlotFailed, b.Token, "daemon-a stopped mid-run", a.ExpiresAt.Add(time.Second)
	if err := s.UpdateSlot(ctx, done, a.ExpiresAt.Add(time.Second)); err != nil {
		t.Fatalf("the new leader's UpdateSlot of the old leader's slot: %v", err)
	}
	got := mustGetSlot(t, s, "nightly", schedT0)
	assertSame(t, "slot completed by the new leader", got, done)
	if got.Daemon != "daemon-a" || got.Token != b.Token {
		t.Errorf("slot = daemon %q token %d, want daemon-a (as written) with token %d", got.Daemon, got.Token, b.Token)
	}
	// Only once: the slot cannot be claimed again by the new leader.
	err := s.ClaimSlot(ctx, runningSlot("nightly", schedT0, b, "run-b"), a.ExpiresAt.Add(time.Second))
	assertErr(t, "the new leader claiming the old leader's slot", err, catalog.ErrConflict, "nightly")
}

// testSlotConcurrentClaim claims one slot from many goroutines at once:
// exactly one succeeds, every other gets ErrConflict.
func testSlotConcurrentClaim(t *testing.T, s Store) {
	ctx := context.Background()
	mustPutSchedule(t, s, sampleSchedule("nightly", "pg"))
	l := mustLead(t, s, "daemon-a", time.Hour, schedT0)
	const contenders = 16
	for round := 0; round < 3; round++ {
		slot := schedT0.Add(time.Duration(round) * time.Minute)
		start := make(chan struct{})
		var mu sync.Mutex
		var won []string
		var wg sync.WaitGroup
		for i := 0; i < contenders; i++ {
			run := fmt.Sprintf("run-%d-%02d", round, i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := s.ClaimSlot(ctx, runningSlot("nightly", slot, l, run), schedT0)
				switch {
				case err == nil:
					mu.Lock()
					won = append(won, run)
					mu.Unlock()
				case !errors.Is(err, catalog.ErrConflict):
					t.Errorf("ClaimSlot(%s): %v, want success or ErrConflict", run, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("round %d: %d claims of one slot succeeded, want exactly 1: %v", round, len(won), won)
		}
		if got := mustGetSlot(t, s, "nightly", slot); got.RunID != won[0] {
			t.Errorf("round %d: stored run %q, want the winner %q", round, got.RunID, won[0])
		}
	}
}

func testSlotListOrderAndLimit(t *testing.T, s Store) {
	ctx := context.Background()
	mustPutSchedule(t, s, sampleSchedule("a", "pg"))
	mustPutSchedule(t, s, sampleSchedule("b", "pg"))
	l := mustLead(t, s, "daemon-a", time.Hour, schedT0)
	// Claimed out of order; listed newest slot first.
	for _, h := range []int{2, 0, 3, 1} {
		mustClaim(t, s, runningSlot("a", schedT0.Add(time.Duration(h)*time.Hour), l, fmt.Sprintf("a-%d", h)), schedT0)
	}
	mustClaim(t, s, runningSlot("b", schedT0.Add(10*time.Hour), l, "b-10"), schedT0)
	runs := func(limit int) string {
		t.Helper()
		got, err := s.ListSlots(ctx, "a", limit)
		if err != nil {
			t.Fatalf("ListSlots(a, %d): %v", limit, err)
		}
		out := ""
		for _, sl := range got {
			out += sl.RunID + " "
		}
		return out
	}
	if got := runs(0); got != "a-3 a-2 a-1 a-0 " {
		t.Errorf("ListSlots(a, 0) = %q, want newest first", got)
	}
	if got := runs(2); got != "a-3 a-2 " {
		t.Errorf("ListSlots(a, 2) = %q, want the two newest", got)
	}
	if got := runs(10); got != "a-3 a-2 a-1 a-0 " {
		t.Errorf("ListSlots(a, 10) = %q", got)
	}
	if got, err := s.ListSlots(ctx, "none", 0); err != nil || len(got) != 0 {
		t.Errorf("ListSlots(none) = %+v, %v; want none", got, err)
	}
	if _, err := s.ListSlots(ctx, "a", -1); err == nil {
		t.Error("ListSlots with a negative limit was accepted")
	}
}

func testSlotRunning(t *testing.T, s Store) {
	ctx := context.Background()
	mustPutSchedule(t, s, sampleSchedule("b", "pg"))
	mustPutSchedule(t, s, sampleSchedule("a", "pg"))
	l := mustLead(t, s, "daemon-a", time.Hour, schedT0)
	if got, err := s.RunningSlots(ctx); err != nil || len(got) != 0 {
		t.Fatalf("RunningSlots on an empty catalog = %+v, %v", got, err)
	}
	mustClaim(t, s, runningSlot("b", schedT0.Add(time.Hour), l, "b-1"), schedT0)
	mustClaim(t, s, runningSlot("a", schedT0.Add(2*time.Hour), l, "a-2"), schedT0)
	mustClaim(t, s, runningSlot("a", schedT0, l, "a-0"), schedT0)
	fin := runningSlot("a", schedT0.Add(time.Hour), l, "a-1")
	mustClaim(t, s, fin, schedT0)
	fin.State, fin.FinishedAt = catalog.SlotSucceeded, schedT0.Add(90*time.Minute)
	if err := s.UpdateSlot(ctx, fin, schedT0); err != nil {
		t.Fatal(err)
	}
	got, err := s.RunningSlots(ctx)
	if err != nil {
		t.Fatalf("RunningSlots: %v", err)
	}
	order := ""
	for _, sl := range got {
		order += sl.RunID + " "
		if sl.State != catalog.SlotRunning {
			t.Errorf("RunningSlots returned %s in state %s", sl.RunID, sl.State)
		}
	}
	if order != "a-0 a-2 b-1 " {
		t.Errorf("RunningSlots = %q, want \"a-0 a-2 b-1 \" (by schedule, oldest slot first)", order)
	}
	if len(got) > 0 {
		assertSame(t, "running slot", got[0], runningSlot("a", schedT0, l, "a-0"))
	}
}

func testSlotDeletedWithSchedule(t *testing.T, s Store) {
	ctx := context.Background()
	mustPutSchedule(t, s, sampleSchedule("gone", "pg"))
	mustPutSchedule(t, s, sampleSchedule("kept", "pg"))
	l := mustLead(t, s, "daemon-a", time.Hour, schedT0)
	mustClaim(t, s, runningSlot("gone", schedT0, l, "g"), schedT0)
	mustClaim(t, s, runningSlot("kept", schedT0, l, "k"), schedT0)
	if err := s.DeleteSchedule(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetSlot(ctx, "gone", schedT0)
	assertErr(t, "GetSlot of a deleted schedule's slot", err, catalog.ErrNotFound, "gone")
	if got, err := s.RunningSlots(ctx); err != nil || len(got) != 1 || got[0].Schedule != "kept" {
		t.Errorf("RunningSlots after deleting a schedule = %+v, %v; want kept's slot only", got, err)
	}
	// A schedule of the same name starts with no slots.
	mustPutSchedule(t, s, sampleSchedule("gone", "pg"))
	if got, err := s.ListSlots(ctx, "gone", 0); err != nil || len(got) != 0 {
		t.Errorf("slots of a re-created schedule = %+v, %v; want none", got, err)
	}
	mustClaim(t, s, runningSlot("gone", schedT0, l, "g2"), schedT0)
}

func testSlotInvalidRejected(t *testing.T, s Store) {
	ctx := context.Background()
	mustPutSchedule(t, s, sampleSchedule("nightly", "pg"))
	l := mustLead(t, s, "daemon-a", time.Hour, schedT0)
	for _, c := range []struct {
		name   string
		mutate func(*catalog.ScheduleSlot)
	}{
		{"no schedule", func(x *catalog.ScheduleSlot) { x.Schedule = "" }},
		{"zero slot", func(x *catalog.ScheduleSlot) { x.Slot = time.Time{} }},
		{"unknown state", func(x *catalog.ScheduleSlot) { x.State = "queued" }},
	} {
		bad := runningSlot("nightly", schedT0, l, "r")
		c.mutate(&bad)
		if err := s.ClaimSlot(ctx, bad, schedT0); err == nil {
			t.Errorf("%s: ClaimSlot accepted %+v", c.name, bad)
		}
	}
	good := runningSlot("nightly", schedT0, l, "r")
	mustClaim(t, s, good, schedT0)
	good.State = "queued"
	if err := s.UpdateSlot(ctx, good, schedT0); err == nil {
		t.Error("UpdateSlot accepted an unknown state")
	}
}

func testDaemons(t *testing.T, s Store) {
	ctx := context.Background()
	if got, err := s.ListDaemons(ctx); err != nil || len(got) != 0 {
		t.Fatalf("ListDaemons on an empty catalog = %+v, %v", got, err)
	}
	d := func(id string, seen time.Duration) catalog.Daemon {
		return catalog.Daemon{ID: id, Host: "host-" + id, Version: "v1.2.3", Listen: "127.0.0.1:9464", StartedAt: base, SeenAt: base.Add(seen)}
	}
	for _, x := range []catalog.Daemon{d("a", time.Second), d("b", 3*time.Second), d("c", 2*time.Second), d("d", 2*time.Second)} {
		if err := s.PutDaemon(ctx, x); err != nil {
			t.Fatalf("PutDaemon(%s): %v", x.ID, err)
		}
	}
	// A heartbeat replaces the record.
	hb := d("a", 5*time.Second)
	hb.Version = "v1.2.4"
	if err := s.PutDaemon(ctx, hb); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListDaemons(ctx)
	if err != nil {
		t.Fatalf("ListDaemons: %v", err)
	}
	order := ""
	for _, x := range got {
		order += x.ID + " "
	}
	if order != "a b c d " {
		t.Errorf("ListDaemons = %q, want \"a b c d \" (most recently seen first, ties by id)", order)
	}
	if len(got) == 4 {
		assertSame(t, "daemon a", got[0], hb)
	}
	if err := s.DeleteDaemon(ctx, "b"); err != nil {
		t.Fatalf("DeleteDaemon(b): %v", err)
	}
	err = s.DeleteDaemon(ctx, "b")
	assertErr(t, "DeleteDaemon(b) twice", err, catalog.ErrNotFound, "b")
	if got, err := s.ListDaemons(ctx); err != nil || len(got) != 3 {
		t.Errorf("ListDaemons after a delete = %+v, %v", got, err)
	}
	if err := s.PutDaemon(ctx, catalog.Daemon{Host: "h"}); err == nil {
		t.Error("PutDaemon accepted an empty id")
	}
}

func testNodeRegistrations(t *testing.T, s Store) {
	ctx := context.Background()
	reg := func(cluster, node, version string) catalog.NodeRegistration {
		return catalog.NodeRegistration{Cluster: cluster, Node: node, Endpoint: "https://" + node + ":7420", VolumeID: "vol-" + cluster,
			Version: version, Workloads: []string{"web", "db"}, SeenAt: base}
	}
	for _, r := range []catalog.NodeRegistration{reg("prod", "n2", "v1"), reg("prod", "n1", "v1"), reg("dev", "n1", "v1"), reg("", "stray", "v1")} {
		if err := s.PutNodeRegistration(ctx, r); err != nil {
			t.Fatalf("PutNodeRegistration(%s/%s): %v", r.Cluster, r.Node, err)
		}
	}
	// Keyed by (cluster, node): n1 of prod is replaced, n1 of dev kept.
	upd := reg("prod", "n1", "v2")
	upd.Workloads, upd.SeenAt = nil, base.Add(time.Minute)
	if err := s.PutNodeRegistration(ctx, upd); err != nil {
		t.Fatal(err)
	}
	list := func(cluster string) []catalog.NodeRegistration {
		t.Helper()
		got, err := s.ListNodeRegistrations(ctx, cluster)
		if err != nil {
			t.Fatalf("ListNodeRegistrations(%q): %v", cluster, err)
		}
		return got
	}
	all := list("")
	keys := ""
	for _, r := range all {
		keys += r.Cluster + "/" + r.Node + " "
	}
	if keys != "/stray dev/n1 prod/n1 prod/n2 " {
		t.Errorf("ListNodeRegistrations(\"\") = %q, want by cluster then node", keys)
	}
	prod := list("prod")
	if len(prod) != 2 {
		t.Fatalf("ListNodeRegistrations(prod) = %+v, want two", prod)
	}
	assertSame(t, "prod/n1", prod[0], upd)
	assertSame(t, "prod/n2", prod[1], reg("prod", "n2", "v1"))
	if dev := list("dev"); len(dev) != 1 || dev[0].Version != "v1" {
		t.Errorf("dev/n1 = %+v, want version v1 (not replaced by prod/n1)", dev)
	}
	if err := s.PutNodeRegistration(ctx, catalog.NodeRegistration{Cluster: "prod"}); err == nil {
		t.Error("PutNodeRegistration accepted an empty node")
	}
}

func testCanceledContextSchedules(t *testing.T, s Store) {
	mustPutSchedule(t, s, sampleSchedule("nightly", "pg"))
	l := mustLead(t, s, "daemon-a", time.Hour, schedT0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, err := range map[string]error{
		"PutSchedule": s.PutSchedule(ctx, sampleSchedule("x", "pg")),
		"ClaimSlot":   s.ClaimSlot(ctx, runningSlot("nightly", schedT0, l, "r"), schedT0),
		"AcquireLeadership": func() error {
			_, err := s.AcquireLeadership(ctx, catalog.RoleScheduler, "daemon-b", time.Hour, schedT0)
			return err
		}(),
		"PutDaemon": s.PutDaemon(ctx, catalog.Daemon{ID: "d"}),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", name, err)
		}
	}
	if got, err := s.ListSlots(context.Background(), "nightly", 0); err != nil || len(got) != 0 {
		t.Errorf("a canceled ClaimSlot left slots: %+v, %v", got, err)
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
