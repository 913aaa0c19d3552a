package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/daemon"
)

const scheduleAddr = "clusterguard_backup_schedule.test"

// diagRecorder wraps the provider server and keeps the warnings it returns
// while planning and refreshing: terraform-plugin-testing does not expose
// warnings, and they are what tells a user that protection is not running.
type diagRecorder struct {
	mu    sync.Mutex
	diags []*tfprotov6.Diagnostic
}

func (r *diagRecorder) add(d []*tfprotov6.Diagnostic) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.diags = append(r.diags, d...)
}

func (r *diagRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.diags = nil
}

// warning returns the first recorded warning with summary, or nil.
func (r *diagRecorder) warning(summary string) *tfprotov6.Diagnostic {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.diags {
		if d.Severity == tfprotov6.DiagnosticSeverityWarning && d.Summary == summary {
			return d
		}
	}
	return nil
}

type recordingServer struct {
	tfprotov6.ProviderServer
	rec *diagRecorder
}

func (s recordingServer) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	resp, err := s.ProviderServer.PlanResourceChange(ctx, req)
	if resp != nil {
		s.rec.add(resp.Diagnostics)
	}
	return resp, err
}

func (s recordingServer) ReadResource(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	resp, err := s.ProviderServer.ReadResource(ctx, req)
	if resp != nil {
		s.rec.add(resp.Diagnostics)
	}
	return resp, err
}

// recordingFactories are factories() whose warnings go to rec.
func recordingFactories(rec *diagRecorder, opts ...Option) map[string]func() (tfprotov6.ProviderServer, error) {
	opts = append([]Option{WithWait(func(context.Context, time.Duration) error { return nil })}, opts...)
	return map[string]func() (tfprotov6.ProviderServer, error){
		"clusterguard": func() (tfprotov6.ProviderServer, error) {
			s, err := providerserver.NewProtocol6WithError(New("test", opts...)())()
			return recordingServer{ProviderServer: s, rec: rec}, err
		},
	}
}

// expectWarning is a plan check: the plan (or the refresh before it) warned
// with summary, and its detail matches detail.
func expectWarning(rec *diagRecorder, summary string, detail *regexp.Regexp) plancheck.PlanCheck {
	return planCheckFunc(func(resp *plancheck.CheckPlanResponse) {
		d := rec.warning(summary)
		switch {
		case d == nil:
			resp.Error = fmt.Errorf("no %q warning; got %s", summary, rec.summaries())
		case detail != nil && !detail.MatchString(d.Detail):
			resp.Error = fmt.Errorf("%q warning detail does not match %s:\n%s", summary, detail, d.Detail)
		}
	})
}

func expectNoWarning(rec *diagRecorder, summary string) plancheck.PlanCheck {
	return planCheckFunc(func(resp *plancheck.CheckPlanResponse) {
		if d := rec.warning(summary); d != nil {
			resp.Error = fmt.Errorf("unexpected %q warning: %s", summary, d.Detail)
		}
	})
}

func (r *diagRecorder) summaries() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, d := range r.diags {
		s = append(s, d.Summary)
	}
	return fmt.Sprintf("%q", s)
}

type planCheckFunc func(resp *plancheck.CheckPlanResponse)

func (f planCheckFunc) CheckPlan(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	f(resp)
}

// testAccScheduleConfig: cluster, repository, group (workload web) and a
// schedule "nightly" with the given body.
func testAccScheduleConfig(e *testEnv, groupExtra, schedule string) string {
	return testAccBackupConfig(e, e.repoDir, "  workloads = [\"web\"]\n"+groupExtra, "") + fmt.Sprintf(`
resource "clusterguard_backup_schedule" "test" {
  name             = "nightly"
  protection_group = clusterguard_protection_group.test.name
%s
}
`, schedule)
}

// withCatalog runs fn on the test's catalog, opened as a daemon would.
func (e *testEnv) withCatalog(t *testing.T, fn func(ctx context.Context, store engine.Store)) {
	t.Helper()
	ctx := context.Background()
	store, err := openCatalog(ctx, e.catalog)
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	defer store.Close()
	fn(ctx, store)
}

// recordSlots writes slots as the leading daemon does: under a scheduler
// leadership token (slot writes are fenced by it).
func (e *testEnv) recordSlots(t *testing.T, now time.Time, slots ...catalog.ScheduleSlot) {
	t.Helper()
	e.withCatalog(t, func(ctx context.Context, store engine.Store) {
		l, err := store.AcquireLeadership(ctx, catalog.RoleScheduler, "test-daemon", time.Hour, now)
		if err != nil {
			t.Fatalf("scheduler leadership: %v", err)
		}
		defer store.ReleaseLeadership(ctx, catalog.RoleScheduler, l.Token)
		for _, s := range slots {
			s.Daemon, s.Token, s.ClaimedAt = "test-daemon", l.Token, s.Slot
			final := s.State
			if s.State != catalog.SlotMissed {
				s.State = catalog.SlotRunning
			}
			if err := store.ClaimSlot(ctx, s, now); err != nil {
				t.Fatalf("claim slot %s: %v", s.Slot, err)
			}
			s.State = final
			if err := store.UpdateSlot(ctx, s, now); err != nil {
				t.Fatalf("update slot %s: %v", s.Slot, err)
			}
		}
	})
}

// TestAccBackupSchedule_lifecycle: create with the plan's warnings (no
// daemon, RPO longer than the slots' gap), no diff on re-plan, import, a
// failed and a missed slot recorded by "a daemon" show in the refreshed
// state and warn, pause, destroy removes the slots.
func TestAccBackupSchedule_lifecycle(t *testing.T) {
	e := newTestEnv(t, 1, "web")
	e.cluster.StartWorkload(t, "node-1", "web")
	clock := newTestClock()
	rec := &diagRecorder{}
	body := `  cron         = "0 2 * * *"
  time_zone    = "Europe/Berlin"
  start_window = "30m"
  jitter       = "5m"
  tags         = ["daily"]
  retention    = { keep_daily = 7 }
  verify_every = "24h"%s`
	cfg := testAccScheduleConfig(e, `  rpo = "1h"`, fmt.Sprintf(body, ""))
	paused := testAccScheduleConfig(e, `  rpo = "1h"`, fmt.Sprintf(body, "\n  paused       = true"))
	rfc3339 := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: recordingFactories(rec, WithClock(clock.Now)),
		Steps: []resource.TestStep{
			{
				PreConfig: rec.reset,
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(scheduleAddr, plancheck.ResourceActionCreate),
					expectWarning(rec, "Schedules Are Not Running", regexp.MustCompile("No engine daemon is running on this catalog[\\s\\S]*start `terraform-provider-clusterguard engine serve")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("id"), knownvalue.StringExact("nightly")),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("next_run_at"), knownvalue.StringRegexp(rfc3339)),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("last_run"), knownvalue.Null()),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("consecutive_failures"), knownvalue.Int64Exact(0)),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("missed_slots"), knownvalue.Int64Exact(0)),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("catch_up"), knownvalue.StringExact("latest")),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("paused"), knownvalue.Bool(false)),
				},
			},
			{
				// Re-planning changes nothing; now that the group is in the
				// catalog, its RPO is compared with the slots' longest gap.
				PreConfig: rec.reset,
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
					expectWarning(rec, "Schedule Cannot Meet RPO", regexp.MustCompile(`(?i)the group's rpo of 1h cannot be met by a schedule whose slots are up to 2[45]h apart`)),
				}},
			},
			{Config: cfg, PlanOnly: true},
			{ResourceName: scheduleAddr, ImportState: true, ImportStateId: "nightly", ImportStateVerify: true, ImportStateVerifyIgnore: []string{"timeouts"}},
			{
				// A daemon heartbeats and records a missed slot, then a run
				// that failed for web: refreshed, not a diff, with a warning.
				PreConfig: func() {
					rec.reset()
					now := clock.Now()
					e.withCatalog(t, func(ctx context.Context, store engine.Store) {
						if err := store.PutDaemon(ctx, catalog.Daemon{ID: "test-daemon", Host: "h", StartedAt: now.Add(-time.Hour), SeenAt: now}); err != nil {
							t.Fatal(err)
						}
						if err := store.CreateRun(ctx, catalog.Run{ID: "run-1", Group: "group", Cluster: "acc", Status: catalog.RunFailed, Error: "1 of 1 workloads failed",
							StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-59 * time.Minute)}); err != nil {
							t.Fatal(err)
						}
						if err := store.AddStep(ctx, catalog.Step{RunID: "run-1", Seq: 1, Phase: "node", Node: "node-1", Workload: "web", Outcome: catalog.StepFailed,
							Error: "quiesce timed out", StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-59 * time.Minute)}); err != nil {
							t.Fatal(err)
						}
					})
					day := now.Truncate(24 * time.Hour)
					e.recordSlots(t, now,
						catalog.ScheduleSlot{Schedule: "nightly", Slot: day.Add(-47 * time.Hour), State: catalog.SlotMissed, Reason: "no daemon ran within the start window"},
						catalog.ScheduleSlot{Schedule: "nightly", Slot: day.Add(-23 * time.Hour), State: catalog.SlotFailed, RunID: "run-1",
							StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-59 * time.Minute)})
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
					expectWarning(rec, "Last Scheduled Backup Failed", regexp.MustCompile(`ended failed \(1 in a row\): 1 of 1 workloads failed; web on node-1: quiesce timed out`)),
					expectNoWarning(rec, "Schedules Are Not Running"),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("last_run").AtMapKey("id"), knownvalue.StringExact("run-1")),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("last_run").AtMapKey("status"), knownvalue.StringExact("failed")),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("last_run").AtMapKey("started_at"), knownvalue.StringRegexp(rfc3339)),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("last_run").AtMapKey("errors"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact("1 of 1 workloads failed"), knownvalue.StringExact("web on node-1: quiesce timed out"),
					})),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("consecutive_failures"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("missed_slots"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("last_missed_reason"), knownvalue.StringExact("no daemon ran within the start window")),
				},
			},
			{
				// Pausing is an in-place update; a paused schedule has no next run.
				Config: paused,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(scheduleAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("paused"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("next_run_at"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("last_run").AtMapKey("id"), knownvalue.StringExact("run-1")),
				},
			},
			{Config: paused, PlanOnly: true},
		},
		CheckDestroy: func(*terraform.State) error {
			var err error
			e.withCatalog(t, func(ctx context.Context, store engine.Store) {
				if _, gerr := store.GetSchedule(ctx, "nightly"); !errors.Is(gerr, catalog.ErrNotFound) {
					err = fmt.Errorf("schedule still in the catalog after destroy: %v", gerr)
					return
				}
				if slots, lerr := store.ListSlots(ctx, "nightly", 0); lerr != nil || len(slots) != 0 {
					err = fmt.Errorf("slots after destroy: %d, %v", len(slots), lerr)
				}
			})
			return err
		},
	})
}

// TestAccBackupSchedule_planErrors: the planner's checks fail the plan with
// the attribute and what to write instead.
func TestAccBackupSchedule_planErrors(t *testing.T) {
	testAccPreCheck(t)
	provider := fmt.Sprintf(`
provider "clusterguard" {
  catalog     = %q
  agent_token = "unused"
}
`, t.TempDir()+"/catalog.db")
	sched := func(body string) string {
		return provider + fmt.Sprintf(`
resource "clusterguard_backup_schedule" "test" {
  name             = "s"
  protection_group = "g"
%s
}
`, body)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{Config: sched(`  cron = "61 * * * *"`), PlanOnly: true, ExpectError: regexp.MustCompile(`Invalid Cron[\s\S]*"61 \* \* \* \*" is not a valid cron[\s\S]*expression`)},
			{Config: sched("  cron      = \"@daily\"\n  time_zone = \"Mars/Olympus\""), PlanOnly: true, ExpectError: regexp.MustCompile(`Invalid Time Zone[\s\S]*"Mars/Olympus" is not a known IANA time[\s\S]*zone`)},
			{Config: sched("  cron     = \"@daily\"\n  interval = \"1h\""), PlanOnly: true, ExpectError: regexp.MustCompile(`Invalid Attribute Combination`)},
			{Config: sched("  interval     = \"1h\"\n  start_window = \"10m\"\n  jitter       = \"10m\""), PlanOnly: true, ExpectError: regexp.MustCompile(`Invalid Jitter`)},
			{Config: sched("  interval     = \"1h\"\n  start_window = \"2h\""), PlanOnly: true, ExpectError: regexp.MustCompile(`Invalid Start Window[\s\S]*longer than the shortest gap`)},
		},
	})
}

// TestAccRegisteredNodes: the data source lists what agents announced; the
// cluster's refresh warns about an undeclared node and a declared node that
// stopped announcing.
func TestAccRegisteredNodes(t *testing.T) {
	e := newTestEnv(t, 1, "web")
	clock := newTestClock()
	rec := &diagRecorder{}
	cfg := testAccClusterConfig(e, e.cluster.Token, "") + `
data "clusterguard_registered_nodes" "acc" {
  cluster = clusterguard_cluster.test.name
}

data "clusterguard_registered_nodes" "all" {}
`
	register := func() {
		now := clock.Now()
		e.withCatalog(t, func(ctx context.Context, store engine.Store) {
			for _, r := range []catalog.NodeRegistration{
				{Cluster: "acc", Node: "node-1", Endpoint: e.cluster.Endpoints()["node-1"], VolumeID: "vol", Version: "test", Workloads: []string{"web"}, SeenAt: now.Add(-10 * time.Minute)},
				{Cluster: "acc", Node: "node-9", Endpoint: "http://127.0.0.1:9", VolumeID: "vol", Version: "test", SeenAt: now},
				{Cluster: "other", Node: "x", Endpoint: "http://127.0.0.1:8", SeenAt: now},
			} {
				if err := store.PutNodeRegistration(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	ds := "data.clusterguard_registered_nodes.acc"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: recordingFactories(rec, WithClock(clock.Now)),
		Steps: []resource.TestStep{
			{Config: testAccClusterConfig(e, e.cluster.Token, "")},
			{
				PreConfig: func() { rec.reset(); register() },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectWarning(rec, "Registered Node Not Declared", regexp.MustCompile(`Node "node-9" \(http://127.0.0.1:9, agent test\) announced itself for cluster "acc"`)),
					expectWarning(rec, "Node Stopped Announcing", regexp.MustCompile(`Node "node-1" of cluster "acc" last announced itself at`)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("nodes"), knownvalue.ListSizeExact(2)),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("nodes").AtSliceIndex(0).AtMapKey("node"), knownvalue.StringExact("node-1")),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("nodes").AtSliceIndex(0).AtMapKey("stale"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("nodes").AtSliceIndex(0).AtMapKey("workloads"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("web")})),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("nodes").AtSliceIndex(1).AtMapKey("node"), knownvalue.StringExact("node-9")),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("nodes").AtSliceIndex(1).AtMapKey("stale"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("nodes").AtSliceIndex(1).AtMapKey("seen_at"), knownvalue.StringRegexp(regexp.MustCompile(`^\d{4}-`))),
					statecheck.ExpectKnownValue("data.clusterguard_registered_nodes.all", tfjsonpath.New("nodes"), knownvalue.ListSizeExact(3)),
				},
			},
		},
	})
}

// TestAccBackupSchedule_daemonRuns: a schedule declared with Terraform is
// run by a real engine daemon on real agents; the next plan shows the run
// as last_run without a diff, and warns again once the daemon stopped.
func TestAccBackupSchedule_daemonRuns(t *testing.T) {
	e := newTestEnv(t, 1, "web")
	e.cluster.StartWorkload(t, "node-1", "web")
	// The provider's clock is 90 s behind, so the schedule was created
	// before the latest minute slot, which the daemon (on real time, like
	// the agents) then runs at once: no waiting for a minute to turn.
	clock := &testClock{now: time.Now().UTC().Add(-90 * time.Second)}
	rec := &diagRecorder{}
	cfg := testAccScheduleConfig(e, "", `  interval  = "1m"
  tags      = ["minutely"]
  retention = { keep_last = 5 }`)

	var stopDaemon func()
	startDaemon := func() {
		ctx, cancel := context.WithCancel(context.Background())
		store, err := openCatalog(ctx, e.catalog)
		if err != nil {
			t.Fatalf("open catalog: %v", err)
		}
		eng, err := engine.New(engine.Options{Store: store, Owner: "test-daemon",
			Dial: engine.HTTPDialer(engine.HTTPDialerOptions{Token: e.cluster.Token, RequestTimeout: time.Minute})})
		if err != nil {
			t.Fatal(err)
		}
		d, err := daemon.New(daemon.Options{Engine: eng, ID: "test-daemon", Tick: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		stopDaemon = func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon stop: %v", err)
			}
			store.Close()
			stopDaemon = nil
		}
		// Poll the catalog until the daemon recorded the slot's outcome.
		deadline := time.Now().Add(90 * time.Second)
		for {
			slots, err := store.ListSlots(ctx, "nightly", 0)
			if err == nil && len(slots) > 0 && slots[0].State != catalog.SlotRunning {
				if slots[0].State != catalog.SlotSucceeded {
					t.Fatalf("scheduled slot ended %s: %s", slots[0].State, slots[0].Reason)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the daemon recorded no finished slot within 90s (slots %+v, %v)", slots, err)
			}
			time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
		}
	}
	t.Cleanup(func() {
		if stopDaemon != nil {
			stopDaemon()
		}
	})

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: recordingFactories(rec, WithClock(clock.Now)),
		Steps: []resource.TestStep{
			{
				PreConfig: rec.reset,
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectWarning(rec, "Schedules Are Not Running", nil),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("last_run"), knownvalue.Null()),
				},
			},
			{
				PreConfig: func() { rec.reset(); startDaemon() },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
					expectNoWarning(rec, "Schedules Are Not Running"),
					expectNoWarning(rec, "Last Scheduled Backup Failed"),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("last_run").AtMapKey("status"), knownvalue.StringExact("succeeded")),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("last_run").AtMapKey("id"), knownvalue.StringRegexp(regexp.MustCompile(`.+`))),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("last_run").AtMapKey("errors"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue(scheduleAddr, tfjsonpath.New("consecutive_failures"), knownvalue.Int64Exact(0)),
				},
				Check: func(*terraform.State) error {
					var err error
					e.withCatalog(t, func(ctx context.Context, store engine.Store) {
						pts, lerr := store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Group: "group", Workload: "web"})
						if lerr != nil || len(pts) != 1 {
							err = fmt.Errorf("recovery points of web after the scheduled run: %d, %v", len(pts), lerr)
						}
					})
					return err
				},
			},
			{
				PreConfig: func() { rec.reset(); stopDaemon() },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
					expectWarning(rec, "Schedules Are Not Running", regexp.MustCompile(`No engine daemon is running on this catalog`)),
				}},
			},
		},
	})
}
