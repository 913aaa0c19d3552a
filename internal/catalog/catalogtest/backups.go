package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// Cases for repositories, protection groups, runs with their steps, and
// recovery points. Records are compared field by field through reflection,
// so a field added to a record type later is covered without touching these
// cases; times are compared with time.Equal, and an empty list equals nil.

// --- repositories -----------------------------------------------------------

func sampleRepository(name string) catalog.Repository {
	return catalog.Repository{
		Name:            name,
		URL:             "s3://backups/clusterguard/" + name,
		Endpoint:        "https://minio.example:9000",
		Region:          "eu-west-1",
		AccessKeyID:     "AKIA-" + name,
		SecretAccessKey: "sk/" + name + "+Zq9=",
		SessionToken:    "session-" + name + "-FwoGZXIvYXdzEJr",
		PathStyle:       true,
		Insecure:        true,
		Password:        "pw of " + name + ": ünïcode & 'quotes'",
		CreatedAt:       base,
		UpdatedAt:       base.Add(time.Hour + 3),
	}
}

func testRepositoryRoundTrip(t *testing.T, s Store) {
	want := sampleRepository("offsite")
	want.UpdatedAt = time.Now() // a monotonic reading must not confuse the store
	mustPutRepository(t, s, want)
	got, err := s.GetRepository(context.Background(), "offsite")
	if err != nil {
		t.Fatalf("GetRepository(offsite): %v", err)
	}
	assertSame(t, "repository offsite", got, want)

	bare := catalog.Repository{Name: "bare", URL: "/srv/backups"}
	mustPutRepository(t, s, bare)
	got, err = s.GetRepository(context.Background(), "bare")
	if err != nil {
		t.Fatalf("GetRepository(bare): %v", err)
	}
	assertSame(t, "repository bare", got, bare)
}

func testRepositoryReplaceByName(t *testing.T, s Store) {
	mustPutRepository(t, s, sampleRepository("offsite"))
	repl := catalog.Repository{
		Name:      "offsite",
		URL:       "/mnt/nas/backups",
		Password:  "rotated",
		CreatedAt: base,
		UpdatedAt: base.Add(48 * time.Hour),
		// Secrets and flags cleared: a replace does not keep old values.
	}
	mustPutRepository(t, s, repl)
	got, err := s.GetRepository(context.Background(), "offsite")
	if err != nil {
		t.Fatalf("GetRepository(offsite): %v", err)
	}
	assertSame(t, "repository offsite after replace", got, repl)
}

func testRepositoryNotFoundAndDelete(t *testing.T, s Store) {
	ctx := context.Background()
	_, err := s.GetRepository(ctx, "missing-repo")
	assertErr(t, "GetRepository(missing-repo)", err, catalog.ErrNotFound, "missing-repo")
	err = s.DeleteRepository(ctx, "missing-repo")
	assertErr(t, "DeleteRepository(missing-repo)", err, catalog.ErrNotFound, "missing-repo")

	mustPutRepository(t, s, sampleRepository("keep"))
	mustPutRepository(t, s, sampleRepository("drop"))
	if err := s.DeleteRepository(ctx, "drop"); err != nil {
		t.Fatalf("DeleteRepository(drop): %v", err)
	}
	_, err = s.GetRepository(ctx, "drop")
	assertErr(t, "GetRepository(drop) after delete", err, catalog.ErrNotFound, "drop")
	err = s.DeleteRepository(ctx, "drop")
	assertErr(t, "DeleteRepository(drop) twice", err, catalog.ErrNotFound, "drop")
	got, err := s.GetRepository(ctx, "keep")
	if err != nil {
		t.Fatalf("GetRepository(keep): %v", err)
	}
	assertSame(t, "repository keep", got, sampleRepository("keep"))
}

// testRepositorySecretsNotInErrors drives PutRepository into its error paths
// with secrets set and checks no message quotes them.
func testRepositorySecretsNotInErrors(t *testing.T, s Store) {
	r := sampleRepository("offsite")
	secrets := []string{r.Password, r.SecretAccessKey, r.SessionToken}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	noName := r
	noName.Name = ""
	farFuture := r
	farFuture.UpdatedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) // beyond int64 nanoseconds
	farPast := r
	farPast.CreatedAt = time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		desc string
		ctx  context.Context
		r    catalog.Repository
	}{
		{"an empty name", context.Background(), noName},
		{"an UpdatedAt beyond the storable range", context.Background(), farFuture},
		{"a CreatedAt before the storable range", context.Background(), farPast},
		{"a canceled context", canceled, r},
	}
	for _, c := range cases {
		err := s.PutRepository(c.ctx, c.r)
		if err == nil {
			t.Errorf("PutRepository with %s succeeded, want an error", c.desc)
			continue
		}
		for _, secret := range secrets {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("PutRepository with %s: error %q contains the secret %q", c.desc, err, secret)
			}
		}
		if c.r.Name != "" && !strings.Contains(err.Error(), c.r.Name) {
			t.Errorf("PutRepository with %s: error %q does not name the repository", c.desc, err)
		}
	}
	if _, err := s.GetRepository(context.Background(), "offsite"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("GetRepository(offsite) after refused puts: err = %v, want ErrNotFound", err)
	}
	mustPutRepository(t, s, r)
	if _, err := s.GetRepository(canceled, "offsite"); err == nil {
		t.Error("GetRepository with a canceled context succeeded")
	} else {
		for _, secret := range secrets {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("GetRepository with a canceled context: error %q contains the secret %q", err, secret)
			}
		}
	}
}

// --- protection groups ------------------------------------------------------

func sampleGroup(name, cluster string) catalog.ProtectionGroup {
	return catalog.ProtectionGroup{
		Name:              name,
		Cluster:           cluster,
		Repository:        "offsite",
		Workloads:         []string{"vm-b", "db-a", "svc-c"}, // not sorted: kept as given
		Selector:          &catalog.Selector{NameRegex: `^web-[0-9]+$`, Driver: "qemu", Node: "node-b"},
		Exclude:           []string{"web-9"},
		Consistency:       "application",
		NodeOrder:         "critical_first",
		CriticalWorkloads: []string{"db-a", "vm-b"},
		ExtractAt:         "restore",
		Retention: catalog.Retention{
			KeepLast: 1, KeepHourly: 2, KeepDaily: 3, KeepWeekly: 4, KeepMonthly: 5, KeepYearly: 6,
			KeepWithin: 240*time.Hour + 1,
		},
		RPO:       6*time.Hour + 7,
		CreatedAt: base,
		UpdatedAt: base.Add(time.Minute),
	}
}

func testGroupRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	full := sampleGroup("full", "prod")
	full.UpdatedAt = time.Now()
	// No selector, zero retention, no lists, zero times.
	bare := catalog.ProtectionGroup{Name: "bare", Cluster: "prod"}
	// A selector with every field empty is still a selector.
	emptySel := sampleGroup("empty-selector", "prod")
	emptySel.Selector = &catalog.Selector{}
	for _, want := range []catalog.ProtectionGroup{full, bare, emptySel} {
		mustPutGroup(t, s, want)
		got, err := s.GetGroup(ctx, want.Name)
		if err != nil {
			t.Fatalf("GetGroup(%s): %v", want.Name, err)
		}
		assertSame(t, "group "+want.Name, got, want)
	}
	got, err := s.GetGroup(ctx, "bare")
	if err != nil {
		t.Fatalf("GetGroup(bare): %v", err)
	}
	if got.Selector != nil {
		t.Errorf("group without a selector came back with Selector %+v, want nil", *got.Selector)
	}
	if got.Retention != (catalog.Retention{}) || got.RPO != 0 {
		t.Errorf("group with zero retention came back with %+v, RPO %s", got.Retention, got.RPO)
	}
	got, err = s.GetGroup(ctx, "empty-selector")
	if err != nil {
		t.Fatalf("GetGroup(empty-selector): %v", err)
	}
	if got.Selector == nil {
		t.Error("group with an empty, non-nil Selector came back with a nil Selector")
	}
}

func testGroupReplaceByName(t *testing.T, s Store) {
	mustPutGroup(t, s, sampleGroup("daily", "prod"))
	repl := catalog.ProtectionGroup{
		Name:        "daily",
		Cluster:     "staging",
		Repository:  "local",
		Workloads:   []string{"only-one"},
		Consistency: "crash",
		ExtractAt:   "backup",
		Retention:   catalog.Retention{KeepDaily: 10},
		CreatedAt:   base,
		UpdatedAt:   base.Add(time.Hour),
	}
	mustPutGroup(t, s, repl)
	got, err := s.GetGroup(context.Background(), "daily")
	if err != nil {
		t.Fatalf("GetGroup(daily): %v", err)
	}
	assertSame(t, "group daily after replace", got, repl)
	for cluster, want := range map[string]int{"prod": 0, "staging": 1} {
		gs, err := s.ListGroups(context.Background(), cluster)
		if err != nil {
			t.Fatalf("ListGroups(%s): %v", cluster, err)
		}
		if len(gs) != want {
			t.Errorf("ListGroups(%s) after moving daily to staging: %d groups, want %d", cluster, len(gs), want)
		}
	}
}

func testGroupNotFoundAndDelete(t *testing.T, s Store) {
	ctx := context.Background()
	_, err := s.GetGroup(ctx, "missing-group")
	assertErr(t, "GetGroup(missing-group)", err, catalog.ErrNotFound, "missing-group")
	err = s.DeleteGroup(ctx, "missing-group")
	assertErr(t, "DeleteGroup(missing-group)", err, catalog.ErrNotFound, "missing-group")

	mustPutGroup(t, s, sampleGroup("keep", "prod"))
	mustPutGroup(t, s, sampleGroup("drop", "prod"))
	if err := s.DeleteGroup(ctx, "drop"); err != nil {
		t.Fatalf("DeleteGroup(drop): %v", err)
	}
	_, err = s.GetGroup(ctx, "drop")
	assertErr(t, "GetGroup(drop) after delete", err, catalog.ErrNotFound, "drop")
	err = s.DeleteGroup(ctx, "drop")
	assertErr(t, "DeleteGroup(drop) twice", err, catalog.ErrNotFound, "drop")
	gs, err := s.ListGroups(ctx, "")
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if names := groupNames(gs); names != "keep" {
		t.Errorf("ListGroups after deleting drop = [%s], want [keep]", names)
	}
}

func testListGroupsByCluster(t *testing.T, s Store) {
	ctx := context.Background()
	gs, err := s.ListGroups(ctx, "")
	if err != nil || len(gs) != 0 {
		t.Fatalf("ListGroups on an empty store = %d groups, %v; want 0", len(gs), err)
	}
	for _, g := range []struct{ name, cluster string }{
		{"zeta", "prod"}, {"alpha", "staging"}, {"Mid", "prod"}, {"beta-2", "prod"}, {"beta-10", "staging"},
	} {
		want := sampleGroup(g.name, g.cluster)
		want.Workloads = []string{"w-" + g.name} // catches lists attached to the wrong group
		mustPutGroup(t, s, want)
	}
	for cluster, want := range map[string]string{
		"":        "Mid,alpha,beta-10,beta-2,zeta", // byte order
		"prod":    "Mid,beta-2,zeta",
		"staging": "alpha,beta-10",
		"unknown": "",
	} {
		gs, err := s.ListGroups(ctx, cluster)
		if err != nil {
			t.Fatalf("ListGroups(%q): %v", cluster, err)
		}
		if got := groupNames(gs); got != want {
			t.Errorf("ListGroups(%q) = [%s], want [%s]", cluster, got, want)
		}
		for _, g := range gs {
			w := sampleGroup(g.Name, g.Cluster)
			w.Workloads = []string{"w-" + g.Name}
			assertSame(t, "listed group "+g.Name, g, w)
		}
	}
}

// Groups refer to clusters and repositories by name only: the engine, not
// the catalog, decides what a group whose cluster is gone means.
func testGroupOutlivesClusterAndRepository(t *testing.T, s Store) {
	ctx := context.Background()
	mustPut(t, s, sampleCluster("prod"))
	mustPutRepository(t, s, sampleRepository("offsite"))
	mustPutGroup(t, s, sampleGroup("daily", "prod"))
	if err := s.DeleteCluster(ctx, "prod"); err != nil {
		t.Fatalf("DeleteCluster(prod): %v", err)
	}
	if err := s.DeleteRepository(ctx, "offsite"); err != nil {
		t.Fatalf("DeleteRepository(offsite): %v", err)
	}
	got, err := s.GetGroup(ctx, "daily")
	if err != nil {
		t.Fatalf("GetGroup(daily) after deleting its cluster and repository: %v", err)
	}
	assertSame(t, "group daily", got, sampleGroup("daily", "prod"))
	// And a group may be stored before its cluster and repository exist.
	mustPutGroup(t, s, sampleGroup("early", "not-yet-registered"))
}

func testGroupCopiesAreIsolated(t *testing.T, s Store) {
	ctx := context.Background()
	in := sampleGroup("daily", "prod")
	mustPutGroup(t, s, in)
	in.Workloads[0] = "mutated-after-put"
	in.Selector.Driver = "mutated-after-put"
	in.Exclude[0] = "mutated-after-put"
	in.CriticalWorkloads[0] = "mutated-after-put"

	got, err := s.GetGroup(ctx, "daily")
	if err != nil {
		t.Fatalf("GetGroup: %v", err)
	}
	got.Workloads[1] = "mutated-after-get"
	got.Selector.NameRegex = "mutated-after-get"
	got.Exclude[0] = "mutated-after-get"
	got.CriticalWorkloads[1] = "mutated-after-get"

	all, err := s.ListGroups(ctx, "prod")
	if err != nil || len(all) != 1 {
		t.Fatalf("ListGroups(prod) = %d groups, %v", len(all), err)
	}
	all[0].Workloads[2] = "mutated-after-list"
	all[0].Selector.Node = "mutated-after-list"

	again, err := s.GetGroup(ctx, "daily")
	if err != nil {
		t.Fatalf("GetGroup: %v", err)
	}
	assertSame(t, "group daily after mutating copies", again, sampleGroup("daily", "prod"))
}

func testGroupInvalidRejected(t *testing.T, s Store) {
	ctx := context.Background()
	mustPutGroup(t, s, sampleGroup("daily", "prod"))
	bad := map[string]func(g *catalog.ProtectionGroup){
		"an empty name":            func(g *catalog.ProtectionGroup) { g.Name = "" },
		"an empty cluster":         func(g *catalog.ProtectionGroup) { g.Cluster = "" },
		"a negative KeepLast":      func(g *catalog.ProtectionGroup) { g.Retention.KeepLast = -1 },
		"a negative KeepYearly":    func(g *catalog.ProtectionGroup) { g.Retention.KeepYearly = -1 },
		"a negative KeepWithin":    func(g *catalog.ProtectionGroup) { g.Retention.KeepWithin = -time.Second },
		"a negative RPO":           func(g *catalog.ProtectionGroup) { g.RPO = -time.Minute },
		"an unstorable UpdatedAt":  func(g *catalog.ProtectionGroup) { g.UpdatedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
		"an unstorable CreatedAtt": func(g *catalog.ProtectionGroup) { g.CreatedAt = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for desc, mutate := range bad {
		g := sampleGroup("daily", "prod")
		g.Consistency = "crash" // would show if the refused write landed
		mutate(&g)
		if err := s.PutGroup(ctx, g); err == nil {
			t.Errorf("PutGroup with %s succeeded, want an error", desc)
		} else if errors.Is(err, catalog.ErrNotFound) || errors.Is(err, catalog.ErrConflict) {
			t.Errorf("PutGroup with %s: err = %v, want a validation error wrapping neither ErrNotFound nor ErrConflict", desc, err)
		}
	}
	got, err := s.GetGroup(ctx, "daily")
	if err != nil {
		t.Fatalf("GetGroup(daily): %v", err)
	}
	assertSame(t, "group daily after refused writes", got, sampleGroup("daily", "prod"))
	all, err := s.ListGroups(ctx, "")
	if err != nil || len(all) != 1 {
		t.Errorf("ListGroups after refused writes = %d groups, %v; want 1", len(all), err)
	}
}

// --- runs and steps ---------------------------------------------------------

func sampleRun(id, group string, started time.Time) catalog.Run {
	return catalog.Run{
		ID:        id,
		Group:     group,
		Cluster:   "prod",
		Master:    "node-b",
		NodeOrder: []string{"node-b", "node-a", "node-c"},
		Expected:  []string{"vm-b", "db-a"},
		Status:    catalog.RunRunning,
		StartedAt: started,
	}
}

func sampleStep(runID string, seq int) catalog.Step {
	return catalog.Step{
		RunID:      runID,
		Seq:        seq,
		Phase:      "node",
		Node:       fmt.Sprintf("node-%d", seq),
		Epoch:      1<<40 + int64(seq),
		Workload:   fmt.Sprintf("wl-%d", seq),
		SnapshotID: fmt.Sprintf("%064x", seq),
		Bytes:      1<<50 + int64(seq),
		BytesAdded: 4096 * int64(seq),
		StunMS:     17,
		// Odd steps are incremental block backups.
		Incremental: seq%2 == 1,
		BytesRead:   65536 * int64(seq),
		Checkpoint:  fmt.Sprintf("clusterguard-%d", 1<<60+seq),
		Outcome:     catalog.StepSucceeded,
		StartedAt:   base.Add(time.Duration(seq) * time.Second),
		FinishedAt:  base.Add(time.Duration(seq)*time.Second + 500*time.Millisecond + 3),
	}
}

func testRunRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	running := sampleRun("run-1", "daily", time.Now())
	// A run may be recorded already finished (it failed before any step).
	failed := catalog.Run{
		ID: "run-2", Group: "daily", Cluster: "prod", Master: "engine",
		Status: catalog.RunFailed, Error: "no node of cluster \"prod\" answered",
		StartedAt: base, FinishedAt: base.Add(2*time.Second + 1),
	}
	for _, want := range []catalog.Run{running, failed} {
		if err := s.CreateRun(ctx, want); err != nil {
			t.Fatalf("CreateRun(%s): %v", want.ID, err)
		}
		got, err := s.GetRun(ctx, want.ID)
		if err != nil {
			t.Fatalf("GetRun(%s): %v", want.ID, err)
		}
		assertSame(t, "run "+want.ID, got, want)
	}
	got, err := s.GetRun(ctx, "run-1")
	if err != nil {
		t.Fatalf("GetRun(run-1): %v", err)
	}
	if !got.FinishedAt.IsZero() {
		t.Errorf("running run came back with FinishedAt %v, want the zero time", got.FinishedAt)
	}
	_, err = s.GetRun(ctx, "missing-run")
	assertErr(t, "GetRun(missing-run)", err, catalog.ErrNotFound, "missing-run")
}

func testCreateRunDuplicateID(t *testing.T, s Store) {
	ctx := context.Background()
	first := sampleRun("run-1", "daily", base)
	mustCreateRun(t, s, first)
	dup := sampleRun("run-1", "weekly", base.Add(time.Hour))
	dup.Status = catalog.RunFailed
	err := s.CreateRun(ctx, dup)
	assertErr(t, "CreateRun(run-1) twice", err, catalog.ErrConflict, "run-1")
	got, err := s.GetRun(ctx, "run-1")
	if err != nil {
		t.Fatalf("GetRun(run-1): %v", err)
	}
	assertSame(t, "run-1 after a refused duplicate", got, first)
}

func testUpdateRunReplacesMutableFields(t *testing.T, s Store) {
	ctx := context.Background()
	created := sampleRun("run-1", "daily", base)
	mustCreateRun(t, s, created)

	// While running: a new master and node order, one more expected workload.
	upd := created
	upd.Master = "node-c"
	upd.NodeOrder = []string{"node-c", "node-b"}
	upd.Expected = []string{"vm-b", "db-a", "svc-late"}
	mustUpdateRun(t, s, upd)
	got, err := s.GetRun(ctx, "run-1")
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	assertSame(t, "run-1 after a running update", got, upd)

	// Finishing, with the immutable fields changed in the argument: the
	// store keeps the values CreateRun recorded.
	fin := upd
	fin.Status = catalog.RunPartial
	fin.Error = "workload \"svc-late\" could not be located"
	fin.FinishedAt = base.Add(5*time.Minute + 9)
	fin.NodeOrder = nil
	fin.Group, fin.Cluster, fin.StartedAt = "other-group", "other-cluster", base.Add(time.Hour)
	mustUpdateRun(t, s, fin)
	want := fin
	want.Group, want.Cluster, want.StartedAt = created.Group, created.Cluster, created.StartedAt
	got, err = s.GetRun(ctx, "run-1")
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	assertSame(t, "run-1 after finishing", got, want)
	runs, err := s.ListRuns(ctx, "daily", 0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("ListRuns(daily) = %d runs, %v; want run-1 still in its group", len(runs), err)
	}
}

func testUpdateRunFinishedIsFinal(t *testing.T, s Store) {
	ctx := context.Background()
	for _, status := range []string{catalog.RunSucceeded, catalog.RunPartial, catalog.RunFailed} {
		id := "run-" + status
		mustCreateRun(t, s, sampleRun(id, "daily", base))
		fin := sampleRun(id, "daily", base)
		fin.Status, fin.FinishedAt = status, base.Add(time.Minute)
		mustUpdateRun(t, s, fin)
		for _, next := range []string{catalog.RunRunning, catalog.RunSucceeded, catalog.RunFailed} {
			again := fin
			again.Status, again.Error = next, "late update"
			err := s.UpdateRun(ctx, again)
			assertErr(t, fmt.Sprintf("UpdateRun(%s) from %s to %s", id, status, next), err, catalog.ErrConflict, id)
		}
		got, err := s.GetRun(ctx, id)
		if err != nil {
			t.Fatalf("GetRun(%s): %v", id, err)
		}
		assertSame(t, id+" after refused updates", got, fin)
	}
}

func testUpdateRunNotFound(t *testing.T, s Store) {
	err := s.UpdateRun(context.Background(), sampleRun("missing-run", "daily", base))
	assertErr(t, "UpdateRun(missing-run)", err, catalog.ErrNotFound, "missing-run")
	if _, err := s.GetRun(context.Background(), "missing-run"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("UpdateRun of an absent run created it: GetRun err = %v", err)
	}
}

// testUpdateRunConcurrentFinish: several engines finish one run at once;
// exactly one of them wins and the others see ErrConflict.
func testUpdateRunConcurrentFinish(t *testing.T, s Store) {
	ctx := context.Background()
	const rounds, finishers = 4, 8
	statuses := []string{catalog.RunSucceeded, catalog.RunPartial, catalog.RunFailed}
	for r := range rounds {
		id := fmt.Sprintf("run-%d", r)
		mustCreateRun(t, s, sampleRun(id, "daily", base))
		start := make(chan struct{})
		errs := make([]error, finishers)
		var wg sync.WaitGroup
		for i := range finishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fin := sampleRun(id, "daily", base)
				fin.Status, fin.Error, fin.FinishedAt = statuses[i%len(statuses)], fmt.Sprintf("finisher %d", i), base.Add(time.Minute)
				<-start
				errs[i] = s.UpdateRun(ctx, fin)
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: finishers %d and %d both updated the finished run", r, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, catalog.ErrConflict):
				t.Errorf("round %d: finisher %d: %v, want success or ErrConflict", r, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no finisher succeeded", r)
		}
		got, err := s.GetRun(ctx, id)
		if err != nil {
			t.Fatalf("GetRun(%s): %v", id, err)
		}
		if got.Error != fmt.Sprintf("finisher %d", winner) || got.Status != statuses[winner%len(statuses)] {
			t.Errorf("round %d: stored run has status %q error %q, want the winner's (finisher %d)", r, got.Status, got.Error, winner)
		}
	}
}

func testListRuns(t *testing.T, s Store) {
	ctx := context.Background()
	runs, err := s.ListRuns(ctx, "", 0)
	if err != nil || len(runs) != 0 {
		t.Fatalf("ListRuns on an empty store = %d runs, %v; want 0", len(runs), err)
	}
	// Created out of order; r-c and r-b start at the same instant.
	for _, r := range []struct {
		id, group string
		started   time.Time
	}{
		{"r-a", "daily", base.Add(time.Hour)},
		{"r-d", "daily", base},
		{"r-c", "daily", base.Add(2 * time.Hour)},
		{"r-b", "daily", base.Add(2 * time.Hour)},
		{"r-e", "daily", base.Add(2*time.Hour + 1)},
		{"w-1", "weekly", base.Add(30 * time.Minute)},
	} {
		mustCreateRun(t, s, sampleRun(r.id, r.group, r.started))
	}
	for _, c := range []struct {
		group string
		limit int
		want  string
	}{
		{"daily", 0, "r-e,r-c,r-b,r-a,r-d"}, // newest first; equal starts by id, descending
		{"daily", 2, "r-e,r-c"},
		{"daily", 5, "r-e,r-c,r-b,r-a,r-d"},
		{"daily", 100, "r-e,r-c,r-b,r-a,r-d"},
		{"weekly", 0, "w-1"},
		{"", 0, "r-e,r-c,r-b,r-a,w-1,r-d"},
		{"", 3, "r-e,r-c,r-b"},
		{"no-such-group", 0, ""},
	} {
		runs, err := s.ListRuns(ctx, c.group, c.limit)
		if err != nil {
			t.Fatalf("ListRuns(%q, %d): %v", c.group, c.limit, err)
		}
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.ID)
			if r.Group == "daily" || r.Group == "weekly" {
				w := sampleRun(r.ID, r.Group, r.StartedAt)
				assertSame(t, "listed run "+r.ID, r, w)
			}
		}
		if got := strings.Join(ids, ","); got != c.want {
			t.Errorf("ListRuns(%q, %d) = [%s], want [%s]", c.group, c.limit, got, c.want)
		}
	}
	if _, err := s.ListRuns(ctx, "daily", -1); err == nil {
		t.Error("ListRuns with a negative limit succeeded, want an error")
	}
}

func testDeleteRunRemovesSteps(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreateRun(t, s, sampleRun("drop", "daily", base))
	mustCreateRun(t, s, sampleRun("keep", "daily", base))
	for seq := 1; seq <= 3; seq++ {
		mustAddStep(t, s, sampleStep("drop", seq))
		mustAddStep(t, s, sampleStep("keep", seq))
	}
	if err := s.DeleteRun(ctx, "drop"); err != nil {
		t.Fatalf("DeleteRun(drop): %v", err)
	}
	_, err := s.GetRun(ctx, "drop")
	assertErr(t, "GetRun(drop) after delete", err, catalog.ErrNotFound, "drop")
	_, err = s.Steps(ctx, "drop")
	assertErr(t, "Steps(drop) after delete", err, catalog.ErrNotFound, "drop")
	err = s.DeleteRun(ctx, "drop")
	assertErr(t, "DeleteRun(drop) twice", err, catalog.ErrNotFound, "drop")

	// A new run with the old id starts without steps: they went with the run.
	mustCreateRun(t, s, sampleRun("drop", "daily", base.Add(time.Hour)))
	steps, err := s.Steps(ctx, "drop")
	if err != nil || len(steps) != 0 {
		t.Errorf("Steps of a re-created run = %d steps, %v; want none", len(steps), err)
	}
	mustAddStep(t, s, sampleStep("drop", 1)) // seq 1 is free again

	steps, err = s.Steps(ctx, "keep")
	if err != nil || len(steps) != 3 {
		t.Errorf("Steps(keep) after deleting another run = %d steps, %v; want 3", len(steps), err)
	}
}

func testRunInvalidRejected(t *testing.T, s Store) {
	ctx := context.Background()
	bad := map[string]func(r *catalog.Run){
		"an empty id":             func(r *catalog.Run) { r.ID = "" },
		"an empty group":          func(r *catalog.Run) { r.Group = "" },
		"an empty status":         func(r *catalog.Run) { r.Status = "" },
		"an unknown status":       func(r *catalog.Run) { r.Status = "done" },
		"a zero StartedAt":        func(r *catalog.Run) { r.StartedAt = time.Time{} },
		"an unstorable StartedAt": func(r *catalog.Run) { r.StartedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for desc, mutate := range bad {
		r := sampleRun("run-1", "daily", base)
		mutate(&r)
		if err := s.CreateRun(ctx, r); err == nil || errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("CreateRun with %s: err = %v, want a validation error", desc, err)
		}
	}
	runs, err := s.ListRuns(ctx, "", 0)
	if err != nil || len(runs) != 0 {
		t.Fatalf("ListRuns after refused creates = %d runs, %v; want 0", len(runs), err)
	}
	mustCreateRun(t, s, sampleRun("run-1", "daily", base))
	for desc, mutate := range bad {
		r := sampleRun("run-1", "daily", base)
		r.Status = catalog.RunFailed
		mutate(&r)
		if r.ID == "" {
			continue // nothing to update
		}
		if err := s.UpdateRun(ctx, r); err == nil || errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("UpdateRun with %s: err = %v, want a validation error", desc, err)
		}
	}
	got, err := s.GetRun(ctx, "run-1")
	if err != nil {
		t.Fatalf("GetRun(run-1): %v", err)
	}
	assertSame(t, "run-1 after refused updates", got, sampleRun("run-1", "daily", base))
}

func testRunCopiesAreIsolated(t *testing.T, s Store) {
	ctx := context.Background()
	in := sampleRun("run-1", "daily", base)
	mustCreateRun(t, s, in)
	in.NodeOrder[0] = "mutated-after-create"
	in.Expected[0] = "mutated-after-create"
	got, err := s.GetRun(ctx, "run-1")
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	got.NodeOrder[1] = "mutated-after-get"
	got.Expected[1] = "mutated-after-get"
	runs, err := s.ListRuns(ctx, "daily", 0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("ListRuns = %d runs, %v", len(runs), err)
	}
	runs[0].NodeOrder[2] = "mutated-after-list"

	upd := sampleRun("run-1", "daily", base)
	upd.Expected = []string{"x", "y"}
	mustUpdateRun(t, s, upd)
	upd.Expected[0] = "mutated-after-update"

	mustAddStep(t, s, sampleStep("run-1", 1))
	steps, err := s.Steps(ctx, "run-1")
	if err != nil || len(steps) != 1 {
		t.Fatalf("Steps = %d steps, %v", len(steps), err)
	}
	steps[0].Workload = "mutated-after-steps"

	want := sampleRun("run-1", "daily", base)
	want.Expected = []string{"x", "y"}
	again, err := s.GetRun(ctx, "run-1")
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	assertSame(t, "run-1 after mutating copies", again, want)
	steps, err = s.Steps(ctx, "run-1")
	if err != nil || len(steps) != 1 {
		t.Fatalf("Steps = %d steps, %v", len(steps), err)
	}
	assertSame(t, "step 1 after mutating a copy", steps[0], sampleStep("run-1", 1))
}

func testStepsRoundTripBySeq(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreateRun(t, s, sampleRun("run-1", "daily", base))
	mustCreateRun(t, s, sampleRun("run-2", "daily", base))
	steps, err := s.Steps(ctx, "run-1")
	if err != nil || len(steps) != 0 {
		t.Fatalf("Steps of a run without steps = %d steps, %v; want 0", len(steps), err)
	}
	// Added out of order, with gaps, interleaved with another run's steps.
	verify := sampleStep("run-1", 10)
	verify.Phase, verify.Outcome, verify.Error = "verify", catalog.StepFailed, "workload \"wl-10\" not found on any node"
	verify.SnapshotID, verify.Bytes, verify.BytesAdded = "", 0, 0
	skipped := catalog.Step{RunID: "run-1", Seq: 2, Phase: "node", Workload: "db-a", Outcome: catalog.StepSkipped}
	want := []catalog.Step{sampleStep("run-1", 1), skipped, sampleStep("run-1", 3), verify}
	for _, i := range []int{3, 0, 2, 1} {
		mustAddStep(t, s, want[i])
		mustAddStep(t, s, sampleStep("run-2", 100+i))
	}
	steps, err = s.Steps(ctx, "run-1")
	if err != nil {
		t.Fatalf("Steps(run-1): %v", err)
	}
	if len(steps) != len(want) {
		t.Fatalf("Steps(run-1) returned %d steps, want %d: %+v", len(steps), len(want), steps)
	}
	for i := range want {
		assertSame(t, fmt.Sprintf("run-1 step %d", i), steps[i], want[i])
	}
	_, err = s.Steps(ctx, "missing-run")
	assertErr(t, "Steps(missing-run)", err, catalog.ErrNotFound, "missing-run")
}

func testAddStepErrors(t *testing.T, s Store) {
	ctx := context.Background()
	err := s.AddStep(ctx, sampleStep("missing-run", 1))
	assertErr(t, "AddStep to a run that does not exist", err, catalog.ErrNotFound, "missing-run")
	if _, err := s.GetRun(ctx, "missing-run"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("AddStep to an absent run created it: GetRun err = %v", err)
	}

	mustCreateRun(t, s, sampleRun("run-1", "daily", base))
	mustAddStep(t, s, sampleStep("run-1", 1))
	dup := sampleStep("run-1", 1)
	dup.Workload, dup.Outcome = "other", catalog.StepFailed
	err = s.AddStep(ctx, dup)
	assertErr(t, "AddStep with a duplicate seq", err, catalog.ErrConflict, "run-1")
	steps, err := s.Steps(ctx, "run-1")
	if err != nil || len(steps) != 1 {
		t.Fatalf("Steps(run-1) = %d steps, %v; want 1", len(steps), err)
	}
	assertSame(t, "step 1 after a refused duplicate", steps[0], sampleStep("run-1", 1))
	// The same seq in another run is not a duplicate.
	mustCreateRun(t, s, sampleRun("run-2", "daily", base))
	mustAddStep(t, s, sampleStep("run-2", 1))
}

// testAddStepConcurrent has every seq added twice at once: each seq is
// stored once and the other attempt sees ErrConflict.
func testAddStepConcurrent(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreateRun(t, s, sampleRun("run-1", "daily", base))
	const seqs = 12
	start := make(chan struct{})
	errs := make([]error, 2*seqs)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := sampleStep("run-1", 1+i%seqs)
			st.Error = fmt.Sprintf("attempt %d", i)
			<-start
			errs[i] = s.AddStep(ctx, st)
		}()
	}
	close(start)
	wg.Wait()
	winners := map[int]int{} // seq -> attempt
	for i, err := range errs {
		switch {
		case err == nil:
			winners[1+i%seqs]++
		case !errors.Is(err, catalog.ErrConflict):
			t.Errorf("attempt %d: AddStep: %v, want success or ErrConflict", i, err)
		}
	}
	for seq := 1; seq <= seqs; seq++ {
		if winners[seq] != 1 {
			t.Errorf("seq %d was added %d times, want exactly once", seq, winners[seq])
		}
	}
	steps, err := s.Steps(ctx, "run-1")
	if err != nil || len(steps) != seqs {
		t.Fatalf("Steps = %d steps, %v; want %d", len(steps), err, seqs)
	}
	for i, st := range steps {
		if st.Seq != i+1 {
			t.Errorf("step %d has seq %d, want %d", i, st.Seq, i+1)
		}
	}
}

func testStepInvalidRejected(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreateRun(t, s, sampleRun("run-1", "daily", base))
	bad := map[string]func(st *catalog.Step){
		"an empty run id":        func(st *catalog.Step) { st.RunID = "" },
		"seq 0":                  func(st *catalog.Step) { st.Seq = 0 },
		"a negative seq":         func(st *catalog.Step) { st.Seq = -1 },
		"an empty outcome":       func(st *catalog.Step) { st.Outcome = "" },
		"an unknown outcome":     func(st *catalog.Step) { st.Outcome = "ok" },
		"negative Bytes":         func(st *catalog.Step) { st.Bytes = -1 },
		"negative BytesAdded":    func(st *catalog.Step) { st.BytesAdded = -1 },
		"negative BytesRead":     func(st *catalog.Step) { st.BytesRead = -1 },
		"a negative StunMS":      func(st *catalog.Step) { st.StunMS = -1 },
		"an unstorable Finished": func(st *catalog.Step) { st.FinishedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for desc, mutate := range bad {
		st := sampleStep("run-1", 1)
		mutate(&st)
		if err := s.AddStep(ctx, st); err == nil || errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("AddStep with %s: err = %v, want a validation error", desc, err)
		}
	}
	steps, err := s.Steps(ctx, "run-1")
	if err != nil || len(steps) != 0 {
		t.Errorf("Steps after refused adds = %d steps, %v; want 0", len(steps), err)
	}
}

// --- recovery points --------------------------------------------------------

func samplePoint(id string) catalog.RecoveryPoint {
	return catalog.RecoveryPoint{
		ID:          id,
		Repository:  "offsite",
		Cluster:     "prod",
		Group:       "daily",
		Workload:    "db-a",
		Node:        "node-b",
		RunID:       "run-1",
		Consistency: "application",
		Size:        1<<45 + 3,
		CreatedAt:   base,
	}
}

func testRecoveryPointRoundTripAndReplace(t *testing.T, s Store) {
	ctx := context.Background()
	want := samplePoint("snap-1")
	want.CreatedAt = time.Now()
	mustPutPoint(t, s, want)
	got := mustPoints(t, s, catalog.RecoveryPointFilter{})
	if len(got) != 1 {
		t.Fatalf("RecoveryPoints = %d points, want 1", len(got))
	}
	assertSame(t, "recovery point snap-1", got[0], want)

	repl := catalog.RecoveryPoint{ID: "snap-1", Repository: "local", Cluster: "staging", Workload: "vm-z", Consistency: "crash", CreatedAt: base.Add(-time.Hour)}
	mustPutPoint(t, s, repl)
	got = mustPoints(t, s, catalog.RecoveryPointFilter{})
	if len(got) != 1 {
		t.Fatalf("RecoveryPoints after replacing snap-1 = %d points, want 1", len(got))
	}
	assertSame(t, "recovery point snap-1 after replace", got[0], repl)
	if got := mustPoints(t, s, catalog.RecoveryPointFilter{Cluster: "prod"}); len(got) != 0 {
		t.Errorf("RecoveryPoints(cluster prod) after moving snap-1 to staging = %d points, want 0", len(got))
	}
	_ = ctx
}

// filterPoints: two clusters, groups, workloads and repositories, and two
// pairs of points close in time (a tie at +2h, one nanosecond at +5h).
func filterPoints() []catalog.RecoveryPoint {
	at := base.Add
	rows := []struct {
		id, cluster, group, workload, repo string
		created                            time.Time
	}{
		{"rp-01", "c1", "g1", "w1", "r1", at(0)},
		{"rp-02", "c1", "g1", "w2", "r1", at(time.Hour)},
		{"rp-03", "c1", "g2", "w1", "r2", at(2 * time.Hour)},
		{"rp-04", "c2", "g1", "w1", "r1", at(2 * time.Hour)},
		{"rp-05", "c2", "g2", "w2", "r2", at(3 * time.Hour)},
		{"rp-06", "c2", "g2", "w1", "r1", at(4 * time.Hour)},
		{"rp-07", "c1", "g1", "w1", "r2", at(5 * time.Hour)},
		{"rp-08", "c1", "g1", "w1", "r1", at(5*time.Hour + 1)},
	}
	out := make([]catalog.RecoveryPoint, len(rows))
	for i, r := range rows {
		out[i] = catalog.RecoveryPoint{
			ID: r.id, Cluster: r.cluster, Group: r.group, Workload: r.workload, Repository: r.repo,
			Node: "node-" + r.id, RunID: "run-" + r.id, Consistency: "crash", Size: int64(i), CreatedAt: r.created,
		}
	}
	return out
}

func testRecoveryPointsFilters(t *testing.T, s Store) {
	if got := mustPoints(t, s, catalog.RecoveryPointFilter{}); len(got) != 0 {
		t.Fatalf("RecoveryPoints on an empty store = %d points, want 0", len(got))
	}
	points := filterPoints()
	for _, i := range []int{4, 0, 7, 2, 5, 1, 6, 3} { // inserted out of order
		mustPutPoint(t, s, points[i])
	}
	type F = catalog.RecoveryPointFilter
	for _, c := range []struct {
		f    F
		want string
	}{
		{F{}, "08,07,06,05,04,03,02,01"}, // newest first; the tie at +2h by id, descending
		{F{Cluster: "c1"}, "08,07,03,02,01"},
		{F{Cluster: "c2"}, "06,05,04"},
		{F{Group: "g1"}, "08,07,04,02,01"},
		{F{Group: "g2"}, "06,05,03"},
		{F{Workload: "w1"}, "08,07,06,04,03,01"}, // across clusters
		{F{Workload: "w2"}, "05,02"},
		{F{Repository: "r1"}, "08,06,04,02,01"},
		{F{Repository: "r2"}, "07,05,03"},
		{F{Cluster: "c1", Workload: "w1"}, "08,07,03,01"},
		{F{Cluster: "c2", Group: "g2"}, "06,05"},
		{F{Group: "g1", Repository: "r2"}, "07"},
		{F{Cluster: "c1", Group: "g1", Workload: "w1", Repository: "r1"}, "08,01"},
		{F{Cluster: "c3"}, ""},
		{F{Cluster: "c2", Workload: "w2", Repository: "r1"}, ""},
	} {
		got := mustPoints(t, s, c.f)
		if ids := pointIDs(got); ids != c.want {
			t.Errorf("RecoveryPoints(%+v) = [%s], want [%s]", c.f, ids, c.want)
		}
		for _, p := range got {
			assertSame(t, "recovery point "+p.ID, p, points[indexOfPoint(points, p.ID)])
		}
	}
}

func testRecoveryPointsTimeBounds(t *testing.T, s Store) {
	for _, p := range filterPoints() {
		mustPutPoint(t, s, p)
	}
	// Bounds in another zone than the points: only the instant counts.
	at := func(d time.Duration) time.Time { return base.Add(d).UTC() }
	type F = catalog.RecoveryPointFilter
	for _, c := range []struct {
		desc string
		f    F
		want string
	}{
		{"From inclusive", F{From: at(2 * time.Hour)}, "08,07,06,05,04,03"},
		{"To exclusive", F{To: at(2 * time.Hour)}, "02,01"},
		{"From and To", F{From: at(2 * time.Hour), To: at(5 * time.Hour)}, "06,05,04,03"},
		{"a one-nanosecond window", F{From: at(5 * time.Hour), To: at(5*time.Hour + 1)}, "07"},
		{"From at the newest point", F{From: at(5*time.Hour + 1)}, "08"},
		{"From just after the newest", F{From: at(5*time.Hour + 2)}, ""},
		{"To at the newest point", F{To: at(5*time.Hour + 1)}, "07,06,05,04,03,02,01"},
		{"To at the oldest point", F{To: at(0)}, ""},
		{"From equal to To", F{From: at(time.Hour), To: at(time.Hour)}, ""},
		{"From after To", F{From: at(4 * time.Hour), To: at(time.Hour)}, ""},
		{"a cluster and a window", F{Cluster: "c1", From: at(time.Hour), To: at(5*time.Hour + 1)}, "07,03,02"},
		{"a workload, a repository and From", F{Workload: "w1", Repository: "r1", From: at(2 * time.Hour)}, "08,06,04"},
	} {
		if ids := pointIDs(mustPoints(t, s, c.f)); ids != c.want {
			t.Errorf("RecoveryPoints with %s (%+v) = [%s], want [%s]", c.desc, c.f, ids, c.want)
		}
	}
	if _, err := s.RecoveryPoints(context.Background(), F{From: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("RecoveryPoints with an unstorable From succeeded, want an error")
	}
}

func testRecoveryPointDelete(t *testing.T, s Store) {
	ctx := context.Background()
	err := s.DeleteRecoveryPoint(ctx, "missing-snap")
	assertErr(t, "DeleteRecoveryPoint(missing-snap)", err, catalog.ErrNotFound, "missing-snap")
	mustPutPoint(t, s, samplePoint("keep"))
	mustPutPoint(t, s, samplePoint("drop"))
	if err := s.DeleteRecoveryPoint(ctx, "drop"); err != nil {
		t.Fatalf("DeleteRecoveryPoint(drop): %v", err)
	}
	err = s.DeleteRecoveryPoint(ctx, "drop")
	assertErr(t, "DeleteRecoveryPoint(drop) twice", err, catalog.ErrNotFound, "drop")
	if ids := pointIDs(mustPoints(t, s, catalog.RecoveryPointFilter{})); ids != "keep" {
		t.Errorf("RecoveryPoints after deleting drop = [%s], want [keep]", ids)
	}
}

// Recovery points index snapshots that stay in the repository until
// retention forgets them, whatever happens to the run or group records.
func testRecoveryPointsOutliveRunsAndGroups(t *testing.T, s Store) {
	ctx := context.Background()
	mustPutGroup(t, s, sampleGroup("daily", "prod"))
	mustCreateRun(t, s, sampleRun("run-1", "daily", base))
	mustPutPoint(t, s, samplePoint("snap-1"))
	if err := s.DeleteRun(ctx, "run-1"); err != nil {
		t.Fatalf("DeleteRun: %v", err)
	}
	if err := s.DeleteGroup(ctx, "daily"); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	got := mustPoints(t, s, catalog.RecoveryPointFilter{Group: "daily"})
	if len(got) != 1 {
		t.Fatalf("RecoveryPoints(group daily) after deleting its run and group = %d points, want 1", len(got))
	}
	assertSame(t, "recovery point snap-1", got[0], samplePoint("snap-1"))
}

func testRecoveryPointInvalidRejected(t *testing.T, s Store) {
	ctx := context.Background()
	bad := map[string]func(p *catalog.RecoveryPoint){
		"an empty id":             func(p *catalog.RecoveryPoint) { p.ID = "" },
		"a zero CreatedAt":        func(p *catalog.RecoveryPoint) { p.CreatedAt = time.Time{} },
		"an unstorable CreatedAt": func(p *catalog.RecoveryPoint) { p.CreatedAt = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"a negative size":         func(p *catalog.RecoveryPoint) { p.Size = -1 },
	}
	for desc, mutate := range bad {
		p := samplePoint("snap-1")
		mutate(&p)
		if err := s.PutRecoveryPoint(ctx, p); err == nil || errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("PutRecoveryPoint with %s: err = %v, want a validation error", desc, err)
		}
	}
	if got := mustPoints(t, s, catalog.RecoveryPointFilter{}); len(got) != 0 {
		t.Errorf("RecoveryPoints after refused puts = %d points, want 0", len(got))
	}
}

// --- all of them -------------------------------------------------------------

func testCanceledContextBackups(t *testing.T, s Store) {
	mustPutRepository(t, s, sampleRepository("offsite"))
	mustPutGroup(t, s, sampleGroup("daily", "prod"))
	mustCreateRun(t, s, sampleRun("run-1", "daily", base))
	mustAddStep(t, s, sampleStep("run-1", 1))
	mustPutPoint(t, s, samplePoint("snap-1"))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fin := sampleRun("run-1", "daily", base)
	fin.Status, fin.FinishedAt = catalog.RunFailed, base.Add(time.Minute)
	checks := map[string]error{}
	checks["PutRepository"] = s.PutRepository(ctx, sampleRepository("other"))
	_, checks["GetRepository"] = s.GetRepository(ctx, "offsite")
	checks["DeleteRepository"] = s.DeleteRepository(ctx, "offsite")
	checks["PutGroup"] = s.PutGroup(ctx, sampleGroup("other", "prod"))
	_, checks["GetGroup"] = s.GetGroup(ctx, "daily")
	_, checks["ListGroups"] = s.ListGroups(ctx, "")
	checks["DeleteGroup"] = s.DeleteGroup(ctx, "daily")
	checks["CreateRun"] = s.CreateRun(ctx, sampleRun("run-2", "daily", base))
	checks["UpdateRun"] = s.UpdateRun(ctx, fin)
	_, checks["GetRun"] = s.GetRun(ctx, "run-1")
	_, checks["ListRuns"] = s.ListRuns(ctx, "daily", 0)
	checks["AddStep"] = s.AddStep(ctx, sampleStep("run-1", 2))
	_, checks["Steps"] = s.Steps(ctx, "run-1")
	checks["DeleteRun"] = s.DeleteRun(ctx, "run-1")
	checks["PutRecoveryPoint"] = s.PutRecoveryPoint(ctx, samplePoint("snap-2"))
	_, checks["RecoveryPoints"] = s.RecoveryPoints(ctx, catalog.RecoveryPointFilter{})
	checks["DeleteRecoveryPoint"] = s.DeleteRecoveryPoint(ctx, "snap-1")
	for op, err := range checks {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: err = %v, want context.Canceled", op, err)
		}
	}

	// Nothing was written.
	bg := context.Background()
	if _, err := s.GetRepository(bg, "other"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("repository other after a canceled put: err = %v, want ErrNotFound", err)
	}
	if _, err := s.GetRepository(bg, "offsite"); err != nil {
		t.Errorf("repository offsite after a canceled delete: %v", err)
	}
	if gs, err := s.ListGroups(bg, ""); err != nil || groupNames(gs) != "daily" {
		t.Errorf("groups after canceled writes = [%s], %v; want [daily]", groupNames(gs), err)
	}
	if runs, err := s.ListRuns(bg, "", 0); err != nil || len(runs) != 1 || runs[0].Status != catalog.RunRunning {
		t.Errorf("runs after canceled writes = %+v, %v; want run-1 still running", runs, err)
	}
	if steps, err := s.Steps(bg, "run-1"); err != nil || len(steps) != 1 {
		t.Errorf("steps after a canceled add = %d, %v; want 1", len(steps), err)
	}
	if ids := pointIDs(mustPoints(t, s, catalog.RecoveryPointFilter{})); ids != "snap-1" {
		t.Errorf("recovery points after canceled writes = [%s], want [snap-1]", ids)
	}
}

// --- helpers -----------------------------------------------------------------

func mustPutRepository(t *testing.T, s Store, r catalog.Repository) {
	t.Helper()
	if err := s.PutRepository(context.Background(), r); err != nil {
		t.Fatalf("PutRepository(%s): %v", r.Name, err)
	}
}

func mustPutGroup(t *testing.T, s Store, g catalog.ProtectionGroup) {
	t.Helper()
	if err := s.PutGroup(context.Background(), g); err != nil {
		t.Fatalf("PutGroup(%s): %v", g.Name, err)
	}
}

func mustCreateRun(t *testing.T, s Store, r catalog.Run) {
	t.Helper()
	if err := s.CreateRun(context.Background(), r); err != nil {
		t.Fatalf("CreateRun(%s): %v", r.ID, err)
	}
}

func mustUpdateRun(t *testing.T, s Store, r catalog.Run) {
	t.Helper()
	if err := s.UpdateRun(context.Background(), r); err != nil {
		t.Fatalf("UpdateRun(%s): %v", r.ID, err)
	}
}

func mustAddStep(t *testing.T, s Store, st catalog.Step) {
	t.Helper()
	if err := s.AddStep(context.Background(), st); err != nil {
		t.Fatalf("AddStep(%s, %d): %v", st.RunID, st.Seq, err)
	}
}

func mustPutPoint(t *testing.T, s Store, p catalog.RecoveryPoint) {
	t.Helper()
	if err := s.PutRecoveryPoint(context.Background(), p); err != nil {
		t.Fatalf("PutRecoveryPoint(%s): %v", p.ID, err)
	}
}

func mustPoints(t *testing.T, s Store, f catalog.RecoveryPointFilter) []catalog.RecoveryPoint {
	t.Helper()
	ps, err := s.RecoveryPoints(context.Background(), f)
	if err != nil {
		t.Fatalf("RecoveryPoints(%+v): %v", f, err)
	}
	return ps
}

func groupNames(gs []catalog.ProtectionGroup) string {
	var names []string
	for _, g := range gs {
		names = append(names, g.Name)
	}
	return strings.Join(names, ",")
}

// pointIDs lists ids without the "rp-" prefix of filterPoints.
func pointIDs(ps []catalog.RecoveryPoint) string {
	var ids []string
	for _, p := range ps {
		ids = append(ids, strings.TrimPrefix(p.ID, "rp-"))
	}
	return strings.Join(ids, ",")
}

func indexOfPoint(ps []catalog.RecoveryPoint, id string) int {
	for i, p := range ps {
		if p.ID == id {
			return i
		}
	}
	return -1
}

// assertSame compares two records of the same struct type field by field:
// time.Time fields with Equal (instant only), slices with equal elements (nil
// and empty alike), pointers by what they point to (nil only equals nil),
// everything else with ==.
func assertSame[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		if !sameValue(gv.Field(i), wv.Field(i)) {
			t.Errorf("%s: %s = %s, want %s", what, name, show(gv.Field(i)), show(wv.Field(i)))
		}
	}
}

var timeType = reflect.TypeFor[time.Time]()

func sameValue(a, b reflect.Value) bool {
	switch {
	case a.Type() == timeType:
		return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
	case a.Kind() == reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case a.Kind() == reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case a.Kind() == reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	default:
		return a.Equal(b)
	}
}

func show(v reflect.Value) string {
	switch {
	case v.Type() == timeType:
		return v.Interface().(time.Time).UTC().Format(time.RFC3339Nano)
	case v.Kind() == reflect.Pointer && v.IsNil():
		return "nil"
	case v.Kind() == reflect.Pointer:
		return fmt.Sprintf("&%+v", v.Elem().Interface())
	case v.Kind() == reflect.Slice && v.IsNil():
		return "nil"
	default:
		return fmt.Sprintf("%#v", v.Interface())
	}
}
