// Package catalogtest is the conformance suite every catalog implementation
// passes (SQLite, PostgreSQL and the in-memory one), so the engine can rely on
// the same behaviour from each.
//
// It declares its own Store, mirroring engine.Store method for method,
// because the catalog layer must not import the engine.
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

// Store mirrors engine.Store.
type Store interface {
	PutCluster(ctx context.Context, c catalog.Cluster) error
	GetCluster(ctx context.Context, name string) (catalog.Cluster, error)
	ListClusters(ctx context.Context) ([]catalog.Cluster, error)
	DeleteCluster(ctx context.Context, name string) error
	AcquireLease(ctx context.Context, cluster, holder, owner string, ttl time.Duration, now time.Time) (catalog.Lease, error)
	ReleaseLease(ctx context.Context, cluster string, epoch int64) error
	RenewLease(ctx context.Context, cluster string, epoch int64, ttl time.Duration, now time.Time) (catalog.Lease, error)
	ListLeases(ctx context.Context) ([]catalog.Lease, error)
	AdvanceEpoch(ctx context.Context, cluster string, atLeast int64) (int64, error)

	PutRepository(ctx context.Context, r catalog.Repository) error
	GetRepository(ctx context.Context, name string) (catalog.Repository, error)
	DeleteRepository(ctx context.Context, name string) error

	PutGroup(ctx context.Context, g catalog.ProtectionGroup) error
	GetGroup(ctx context.Context, name string) (catalog.ProtectionGroup, error)
	ListGroups(ctx context.Context, cluster string) ([]catalog.ProtectionGroup, error)
	DeleteGroup(ctx context.Context, name string) error

	CreateRun(ctx context.Context, r catalog.Run) error
	UpdateRun(ctx context.Context, r catalog.Run) error
	GetRun(ctx context.Context, id string) (catalog.Run, error)
	ListRuns(ctx context.Context, group string, limit int) ([]catalog.Run, error)
	DeleteRun(ctx context.Context, id string) error
	AddStep(ctx context.Context, s catalog.Step) error
	Steps(ctx context.Context, runID string) ([]catalog.Step, error)

	PutRecoveryPoint(ctx context.Context, p catalog.RecoveryPoint) error
	RecoveryPoints(ctx context.Context, f catalog.RecoveryPointFilter) ([]catalog.RecoveryPoint, error)
	DeleteRecoveryPoint(ctx context.Context, id string) error

	CreateRestore(ctx context.Context, op catalog.RestoreOperation) error
	UpdateRestore(ctx context.Context, op catalog.RestoreOperation) error
	GetRestore(ctx context.Context, id string) (catalog.RestoreOperation, error)
	FindRestoreByKey(ctx context.Context, key string) (catalog.RestoreOperation, error)
	ListRestores(ctx context.Context, cluster string, limit int) ([]catalog.RestoreOperation, error)
	DeleteRestore(ctx context.Context, id string) error
	PutRestoreStep(ctx context.Context, s catalog.RestoreStep) error
	RestoreSteps(ctx context.Context, operationID string) ([]catalog.RestoreStep, error)

	ScheduleStore // schedules.go

	Close() error
}

// Run runs the suite. open must return a fresh, empty store for each subtest;
// Run closes it when the subtest ends and fails the subtest if Close fails.
func Run(t *testing.T, open func(t *testing.T) Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"ClusterRoundTrip", testClusterRoundTrip},
		{"ClusterZeroTimesAndNoNodes", testClusterZeroTimesAndNoNodes},
		{"ClusterReplaceByName", testClusterReplaceByName},
		{"ClusterNotFound", testClusterNotFound},
		{"ClusterDelete", testClusterDelete},
		{"ListClustersSortedByName", testListClustersSorted},
		{"ClusterCopiesAreIsolated", testClusterCopiesAreIsolated},
		{"ClusterInvalidRejected", testClusterInvalidRejected},
		{"CanceledContext", testCanceledContext},
		{"LeaseFirstGrant", testLeaseFirstGrant},
		{"LeaseConflictUntilExpiry", testLeaseConflictUntilExpiry},
		{"LeaseSameHolderRenews", testLeaseSameHolderRenews},
		{"LeaseReleaseThenReacquire", testLeaseReleaseThenReacquire},
		{"LeaseReleaseStaleEpoch", testLeaseReleaseStaleEpoch},
		{"LeaseReleaseWithoutLease", testLeaseReleaseWithoutLease},
		{"LeaseEpochsPerCluster", testLeaseEpochsPerCluster},
		{"LeaseEpochSurvivesClusterDelete", testLeaseEpochSurvivesClusterDelete},
		{"LeaseInvalidRequests", testLeaseInvalidRequests},
		{"LeaseConcurrentAcquire", testLeaseConcurrentAcquire},
		{"LeaseRenewKeepsEpoch", testLeaseRenewKeepsEpoch},
		{"LeaseRenewAfterTakeover", testLeaseRenewAfterTakeover},
		{"LeaseList", testLeaseList},
		{"LeaseAdvanceEpoch", testLeaseAdvanceEpoch},

		{"RepositoryRoundTrip", testRepositoryRoundTrip},
		{"RepositoryReplaceByName", testRepositoryReplaceByName},
		{"RepositoryNotFoundAndDelete", testRepositoryNotFoundAndDelete},
		{"RepositorySecretsNotInErrors", testRepositorySecretsNotInErrors},

		{"GroupRoundTrip", testGroupRoundTrip},
		{"GroupReplaceByName", testGroupReplaceByName},
		{"GroupNotFoundAndDelete", testGroupNotFoundAndDelete},
		{"ListGroupsByClusterSortedByName", testListGroupsByCluster},
		{"GroupOutlivesClusterAndRepository", testGroupOutlivesClusterAndRepository},
		{"GroupCopiesAreIsolated", testGroupCopiesAreIsolated},
		{"GroupInvalidRejected", testGroupInvalidRejected},

		{"RunRoundTrip", testRunRoundTrip},
		{"CreateRunDuplicateID", testCreateRunDuplicateID},
		{"UpdateRunReplacesMutableFields", testUpdateRunReplacesMutableFields},
		{"UpdateRunFinishedIsFinal", testUpdateRunFinishedIsFinal},
		{"UpdateRunNotFound", testUpdateRunNotFound},
		{"UpdateRunConcurrentFinish", testUpdateRunConcurrentFinish},
		{"ListRunsNewestFirstWithLimit", testListRuns},
		{"DeleteRunRemovesSteps", testDeleteRunRemovesSteps},
		{"RunInvalidRejected", testRunInvalidRejected},
		{"RunCopiesAreIsolated", testRunCopiesAreIsolated},
		{"StepsRoundTripBySeq", testStepsRoundTripBySeq},
		{"AddStepDuplicateAndMissingRun", testAddStepErrors},
		{"AddStepConcurrent", testAddStepConcurrent},
		{"StepInvalidRejected", testStepInvalidRejected},

		{"RecoveryPointRoundTripAndReplace", testRecoveryPointRoundTripAndReplace},
		{"RecoveryPointsFilters", testRecoveryPointsFilters},
		{"RecoveryPointsTimeBounds", testRecoveryPointsTimeBounds},
		{"RecoveryPointDelete", testRecoveryPointDelete},
		{"RecoveryPointsOutliveRunsAndGroups", testRecoveryPointsOutliveRunsAndGroups},
		{"RecoveryPointInvalidRejected", testRecoveryPointInvalidRejected},

		{"CanceledContextBackups", testCanceledContextBackups},

		{"RestoreRoundTripAndKey", testRestoreRoundTripAndKey},
		{"RestoreTransitions", testRestoreTransitions},
		{"ListRestores", testListRestores},
		{"RestoreStepsReplaceAndDelete", testRestoreSteps},

		{"RunOwnerHeartbeatAndTakeOver", testRunOwnerHeartbeatAndTakeOver},
		{"RestoreOwnerHeartbeatAndTakeOver", testRestoreOwnerHeartbeatAndTakeOver},
		{"ConcurrentTakeOver", testConcurrentTakeOver},
	}
	cases = append(cases, scheduleCases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.fn(t, s)
		})
	}
}

// base is a fixed instant with nanoseconds, in a non-UTC zone, to catch
// stores that truncate precision or depend on the location.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*3600))

func sampleCluster(name string) catalog.Cluster {
	return catalog.Cluster{
		Name:           name,
		SharedVolume:   "/mnt/shared/" + name,
		SharedVolumeID: "vol-" + name,
		MasterPolicy:   "fixed",
		MasterNode:     "node-c",
		JoinOrder:      "sequential",
		// Listed out of alphabetical order: the store keeps the user's order.
		Nodes: []catalog.Node{
			{Name: "node-c", Endpoint: "https://10.0.0.3:7420", Position: 0},
			{Name: "node-a", Endpoint: "https://10.0.0.1:7420", Position: 1},
			{Name: "node-b", Endpoint: "https://10.0.0.2:7420", Position: 2},
		},
		CreatedAt: base,
		UpdatedAt: base.Add(90*time.Minute + 7),
	}
}

func testClusterRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	want := sampleCluster("prod")
	// A reading of the monotonic clock must not confuse the store either.
	want.UpdatedAt = time.Now()
	mustPut(t, s, want)
	got, err := s.GetCluster(ctx, "prod")
	if err != nil {
		t.Fatalf("GetCluster(prod): %v", err)
	}
	assertCluster(t, got, want)
}

func testClusterZeroTimesAndNoNodes(t *testing.T, s Store) {
	want := catalog.Cluster{Name: "bare", SharedVolume: "/v", MasterPolicy: "random", JoinOrder: "parallel"}
	mustPut(t, s, want)
	got, err := s.GetCluster(context.Background(), "bare")
	if err != nil {
		t.Fatalf("GetCluster(bare): %v", err)
	}
	assertCluster(t, got, want)
	if !got.CreatedAt.IsZero() || !got.UpdatedAt.IsZero() {
		t.Errorf("zero times came back as CreatedAt=%v UpdatedAt=%v", got.CreatedAt, got.UpdatedAt)
	}
}

func testClusterReplaceByName(t *testing.T, s Store) {
	ctx := context.Background()
	mustPut(t, s, sampleCluster("prod"))
	repl := catalog.Cluster{
		Name:           "prod",
		SharedVolume:   "/mnt/other",
		SharedVolumeID: "vol-other",
		MasterPolicy:   "lowest_failure_rate",
		JoinOrder:      "parallel",
		Nodes: []catalog.Node{
			{Name: "node-z", Endpoint: "http://127.0.0.1:9001", Position: 0},
			{Name: "node-a", Endpoint: "http://127.0.0.1:9002", Position: 1},
		},
		CreatedAt: base,
		UpdatedAt: base.Add(time.Hour),
	}
	mustPut(t, s, repl)
	got, err := s.GetCluster(ctx, "prod")
	if err != nil {
		t.Fatalf("GetCluster(prod): %v", err)
	}
	assertCluster(t, got, repl)
	all, err := s.ListClusters(ctx)
	if err != nil {
		t.Fatalf("ListClusters: %v", err)
	}
	if len(all) != 1 {
		t.Fatalf("ListClusters after replacing prod returned %d clusters, want 1", len(all))
	}
	assertCluster(t, all[0], repl)
}

func testClusterNotFound(t *testing.T, s Store) {
	_, err := s.GetCluster(context.Background(), "missing-cluster")
	assertErr(t, "GetCluster(missing-cluster)", err, catalog.ErrNotFound, "missing-cluster")
}

func testClusterDelete(t *testing.T, s Store) {
	ctx := context.Background()
	mustPut(t, s, sampleCluster("keep"))
	mustPut(t, s, sampleCluster("drop"))
	if err := s.DeleteCluster(ctx, "drop"); err != nil {
		t.Fatalf("DeleteCluster(drop): %v", err)
	}
	_, err := s.GetCluster(ctx, "drop")
	assertErr(t, "GetCluster(drop) after delete", err, catalog.ErrNotFound, "drop")
	err = s.DeleteCluster(ctx, "drop")
	assertErr(t, "DeleteCluster(drop) twice", err, catalog.ErrNotFound, "drop")
	got, err := s.GetCluster(ctx, "keep")
	if err != nil {
		t.Fatalf("GetCluster(keep) after deleting drop: %v", err)
	}
	assertCluster(t, got, sampleCluster("keep"))
	// A deleted name can be registered again.
	mustPut(t, s, sampleCluster("drop"))
	if _, err := s.GetCluster(ctx, "drop"); err != nil {
		t.Fatalf("GetCluster(drop) after re-registering: %v", err)
	}
}

func testListClustersSorted(t *testing.T, s Store) {
	ctx := context.Background()
	all, err := s.ListClusters(ctx)
	if err != nil {
		t.Fatalf("ListClusters on an empty store: %v", err)
	}
	if len(all) != 0 {
		t.Fatalf("ListClusters on an empty store returned %d clusters", len(all))
	}
	names := []string{"zeta", "alpha", "Mid", "beta-2", "beta-10"}
	for i, n := range names {
		c := sampleCluster(n)
		c.Nodes = c.Nodes[:1+i%3] // differing node counts catch nodes attached to the wrong cluster
		mustPut(t, s, c)
	}
	all, err = s.ListClusters(ctx)
	if err != nil {
		t.Fatalf("ListClusters: %v", err)
	}
	var got []string
	for _, c := range all {
		got = append(got, c.Name)
	}
	want := []string{"Mid", "alpha", "beta-10", "beta-2", "zeta"} // byte order
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("ListClusters order = %v, want %v", got, want)
	}
	for _, c := range all {
		i := indexOf(names, c.Name)
		w := sampleCluster(c.Name)
		w.Nodes = w.Nodes[:1+i%3]
		assertCluster(t, c, w)
	}
}

func testClusterCopiesAreIsolated(t *testing.T, s Store) {
	ctx := context.Background()
	in := sampleCluster("prod")
	mustPut(t, s, in)
	in.Nodes[0].Name = "mutated-after-put"
	got, err := s.GetCluster(ctx, "prod")
	if err != nil {
		t.Fatalf("GetCluster: %v", err)
	}
	got.Nodes[1].Endpoint = "mutated-after-get"
	all, err := s.ListClusters(ctx)
	if err != nil {
		t.Fatalf("ListClusters: %v", err)
	}
	all[0].Nodes[2].Name = "mutated-after-list"
	again, err := s.GetCluster(ctx, "prod")
	if err != nil {
		t.Fatalf("GetCluster: %v", err)
	}
	assertCluster(t, again, sampleCluster("prod"))
}

func testClusterInvalidRejected(t *testing.T, s Store) {
	ctx := context.Background()
	mustPut(t, s, sampleCluster("prod"))

	noName := sampleCluster("")
	if err := s.PutCluster(ctx, noName); err == nil {
		t.Error("PutCluster with an empty name succeeded, want an error")
	}
	dup := sampleCluster("prod")
	dup.SharedVolume = "/changed"
	dup.Nodes = append(dup.Nodes, catalog.Node{Name: "node-a", Endpoint: "http://127.0.0.1:1", Position: 3})
	if err := s.PutCluster(ctx, dup); err == nil {
		t.Error("PutCluster with node-a listed twice succeeded, want an error")
	}
	emptyNode := sampleCluster("prod")
	emptyNode.Nodes[1].Name = ""
	if err := s.PutCluster(ctx, emptyNode); err == nil {
		t.Error("PutCluster with an empty node name succeeded, want an error")
	}
	// A refused write leaves the stored cluster as it was.
	got, err := s.GetCluster(ctx, "prod")
	if err != nil {
		t.Fatalf("GetCluster(prod): %v", err)
	}
	assertCluster(t, got, sampleCluster("prod"))
	all, err := s.ListClusters(ctx)
	if err != nil {
		t.Fatalf("ListClusters: %v", err)
	}
	if len(all) != 1 {
		t.Errorf("ListClusters returned %d clusters after refused writes, want 1", len(all))
	}
}

func testCanceledContext(t *testing.T, s Store) {
	mustPut(t, s, sampleCluster("prod"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	checks := map[string]error{}
	checks["PutCluster"] = s.PutCluster(ctx, sampleCluster("other"))
	_, checks["GetCluster"] = s.GetCluster(ctx, "prod")
	_, checks["ListClusters"] = s.ListClusters(ctx)
	checks["DeleteCluster"] = s.DeleteCluster(ctx, "prod")
	_, checks["AcquireLease"] = s.AcquireLease(ctx, "prod", "node-a", "engine-1", time.Minute, base)
	checks["ReleaseLease"] = s.ReleaseLease(ctx, "prod", 1)
	for op, err := range checks {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: err = %v, want context.Canceled", op, err)
		}
	}
	// Nothing was written.
	if _, err := s.GetCluster(context.Background(), "prod"); err != nil {
		t.Errorf("GetCluster(prod) after a canceled delete: %v", err)
	}
	if _, err := s.GetCluster(context.Background(), "other"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("GetCluster(other) after a canceled put: err = %v, want ErrNotFound", err)
	}
	l, err := s.AcquireLease(context.Background(), "prod", "node-a", "engine-1", time.Minute, base)
	if err != nil || l.Epoch != 1 {
		t.Errorf("AcquireLease after a canceled acquire = epoch %d, %v; want epoch 1 (a canceled call must not consume an epoch)", l.Epoch, err)
	}
}

func testLeaseFirstGrant(t *testing.T, s Store) {
	l := mustAcquire(t, s, "prod", "node-a", "engine-1", 30*time.Second, base)
	want := catalog.Lease{Cluster: "prod", Holder: "node-a", Owner: "engine-1", Epoch: 1, ExpiresAt: base.Add(30 * time.Second)}
	assertLease(t, l, want)
}

func testLeaseConflictUntilExpiry(t *testing.T, s Store) {
	ctx := context.Background()
	ttl := 10 * time.Second
	first := mustAcquire(t, s, "prod", "node-a", "engine-1", ttl, base)
	for _, at := range []time.Time{base, base.Add(ttl / 2), base.Add(ttl - time.Nanosecond)} {
		_, err := s.AcquireLease(ctx, "prod", "node-b", "engine-2", ttl, at)
		assertErr(t, fmt.Sprintf("AcquireLease(prod, node-b) at +%s while node-a holds it", at.Sub(base)), err, catalog.ErrConflict, "node-a")
	}
	// Expired at ExpiresAt exactly: the next holder gets the next epoch.
	second := mustAcquire(t, s, "prod", "node-b", "engine-2", ttl, first.ExpiresAt)
	assertLease(t, second, catalog.Lease{Cluster: "prod", Holder: "node-b", Owner: "engine-2", Epoch: first.Epoch + 1, ExpiresAt: first.ExpiresAt.Add(ttl)})
	// And now node-a is the one refused.
	_, err := s.AcquireLease(ctx, "prod", "node-a", "engine-1", ttl, first.ExpiresAt.Add(time.Second))
	assertErr(t, "AcquireLease(prod, node-a) while node-b holds it", err, catalog.ErrConflict, "node-b")
}

func testLeaseSameHolderRenews(t *testing.T, s Store) {
	first := mustAcquire(t, s, "prod", "node-a", "engine-1", time.Minute, base)
	renewed := mustAcquire(t, s, "prod", "node-a", "engine-2", time.Minute, base.Add(time.Second))
	assertLease(t, renewed, catalog.Lease{Cluster: "prod", Holder: "node-a", Owner: "engine-2", Epoch: first.Epoch + 1, ExpiresAt: base.Add(time.Second + time.Minute)})
	// The renewal, not the first grant, is what a release must name.
	err := s.ReleaseLease(context.Background(), "prod", first.Epoch)
	assertErr(t, "ReleaseLease with the pre-renewal epoch", err, catalog.ErrConflict, "prod")
	if err := s.ReleaseLease(context.Background(), "prod", renewed.Epoch); err != nil {
		t.Fatalf("ReleaseLease(renewed epoch): %v", err)
	}
}

func testLeaseReleaseThenReacquire(t *testing.T, s Store) {
	ctx := context.Background()
	var last int64
	holders := []string{"node-a", "node-b", "node-a", "node-c"}
	for i, h := range holders {
		// Same instant every time: only the release makes room.
		l := mustAcquire(t, s, "prod", h, "engine-1", time.Hour, base)
		if l.Epoch <= last {
			t.Fatalf("grant %d to %s has epoch %d, not above the previous %d", i, h, l.Epoch, last)
		}
		if l.Epoch != int64(i+1) {
			t.Errorf("grant %d has epoch %d, want %d (one more per grant)", i, l.Epoch, i+1)
		}
		last = l.Epoch
		if err := s.ReleaseLease(ctx, "prod", l.Epoch); err != nil {
			t.Fatalf("ReleaseLease(prod, %d): %v", l.Epoch, err)
		}
	}
}

func testLeaseReleaseStaleEpoch(t *testing.T, s Store) {
	ctx := context.Background()
	ttl := 10 * time.Second
	a := mustAcquire(t, s, "prod", "node-a", "engine-1", ttl, base)
	// node-a's lease expires and node-b takes over.
	b := mustAcquire(t, s, "prod", "node-b", "engine-2", ttl, a.ExpiresAt)
	err := s.ReleaseLease(ctx, "prod", a.Epoch)
	assertErr(t, "ReleaseLease with node-a's stale epoch", err, catalog.ErrConflict, "prod")
	// node-b still holds it.
	_, err = s.AcquireLease(ctx, "prod", "node-c", "engine-3", ttl, a.ExpiresAt.Add(time.Second))
	assertErr(t, "AcquireLease(node-c) after a stale release", err, catalog.ErrConflict, "node-b")
	if err := s.ReleaseLease(ctx, "prod", b.Epoch); err != nil {
		t.Fatalf("ReleaseLease(prod, %d) by the holder: %v", b.Epoch, err)
	}
	c := mustAcquire(t, s, "prod", "node-c", "engine-3", ttl, a.ExpiresAt.Add(time.Second))
	if c.Epoch != b.Epoch+1 {
		t.Errorf("epoch after release = %d, want %d", c.Epoch, b.Epoch+1)
	}
	// An expired lease can still be released by its holder, and the epoch
	// does not go back.
	if err := s.ReleaseLease(ctx, "prod", c.Epoch); err != nil {
		t.Fatalf("ReleaseLease(prod, %d): %v", c.Epoch, err)
	}
	d := mustAcquire(t, s, "prod", "node-a", "engine-1", ttl, base) // a clock that went backwards
	if d.Epoch != c.Epoch+1 {
		t.Errorf("epoch after a backwards clock = %d, want %d", d.Epoch, c.Epoch+1)
	}
	e := mustAcquire(t, s, "prod", "node-b", "engine-2", ttl, d.ExpiresAt.Add(time.Hour))
	if err := s.ReleaseLease(ctx, "prod", d.Epoch); !errors.Is(err, catalog.ErrConflict) {
		t.Errorf("ReleaseLease(expired and re-granted epoch %d) = %v, want ErrConflict", d.Epoch, err)
	}
	if err := s.ReleaseLease(ctx, "prod", e.Epoch+5); !errors.Is(err, catalog.ErrConflict) {
		t.Errorf("ReleaseLease(never granted epoch %d) = %v, want ErrConflict", e.Epoch+5, err)
	}
}

func testLeaseReleaseWithoutLease(t *testing.T, s Store) {
	ctx := context.Background()
	err := s.ReleaseLease(ctx, "never-leased", 1)
	assertErr(t, "ReleaseLease on a cluster never leased", err, catalog.ErrNotFound, "never-leased")
	l := mustAcquire(t, s, "prod", "node-a", "engine-1", time.Minute, base)
	if err := s.ReleaseLease(ctx, "prod", l.Epoch); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	err = s.ReleaseLease(ctx, "prod", l.Epoch)
	assertErr(t, "ReleaseLease twice", err, catalog.ErrNotFound, "prod")
}

func testLeaseEpochsPerCluster(t *testing.T, s Store) {
	x1 := mustAcquire(t, s, "x", "node-a", "engine-1", time.Minute, base)
	y1 := mustAcquire(t, s, "y", "node-a", "engine-1", time.Minute, base)
	x2 := mustAcquire(t, s, "x", "node-a", "engine-1", time.Minute, base)
	if x1.Epoch != 1 || y1.Epoch != 1 || x2.Epoch != 2 {
		t.Errorf("epochs x, y, x = %d, %d, %d; want 1, 1, 2 (counted per cluster)", x1.Epoch, y1.Epoch, x2.Epoch)
	}
	// node-a holding x does not stop node-b taking y's lease once released.
	if err := s.ReleaseLease(context.Background(), "y", y1.Epoch); err != nil {
		t.Fatalf("ReleaseLease(y): %v", err)
	}
	y2 := mustAcquire(t, s, "y", "node-b", "engine-1", time.Minute, base)
	if y2.Epoch != 2 {
		t.Errorf("second epoch of y = %d, want 2", y2.Epoch)
	}
}

func testLeaseEpochSurvivesClusterDelete(t *testing.T, s Store) {
	ctx := context.Background()
	mustPut(t, s, sampleCluster("prod"))
	l := mustAcquire(t, s, "prod", "node-a", "engine-1", time.Minute, base)
	if err := s.ReleaseLease(ctx, "prod", l.Epoch); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	if err := s.DeleteCluster(ctx, "prod"); err != nil {
		t.Fatalf("DeleteCluster: %v", err)
	}
	mustPut(t, s, sampleCluster("prod"))
	again := mustAcquire(t, s, "prod", "node-a", "engine-1", time.Minute, base)
	if again.Epoch != l.Epoch+1 {
		t.Errorf("epoch after deleting and re-registering the cluster = %d, want %d: agents that saw epoch %d would refuse it", again.Epoch, l.Epoch+1, l.Epoch)
	}
}

func testLeaseInvalidRequests(t *testing.T, s Store) {
	ctx := context.Background()
	bad := []struct {
		desc            string
		cluster, holder string
		ttl             time.Duration
		now             time.Time
	}{
		{"empty cluster", "", "node-a", time.Minute, base},
		{"empty holder", "prod", "", time.Minute, base},
		{"zero ttl", "prod", "node-a", 0, base},
		{"negative ttl", "prod", "node-a", -time.Second, base},
		{"zero now", "prod", "node-a", time.Minute, time.Time{}},
	}
	for _, b := range bad {
		_, err := s.AcquireLease(ctx, b.cluster, b.holder, "engine-1", b.ttl, b.now)
		if err == nil || errors.Is(err, catalog.ErrConflict) {
			t.Errorf("AcquireLease with %s: err = %v, want a validation error", b.desc, err)
		}
	}
	l := mustAcquire(t, s, "prod", "node-a", "engine-1", time.Minute, base)
	if l.Epoch != 1 {
		t.Errorf("first valid grant after refused requests has epoch %d, want 1", l.Epoch)
	}
}

// testLeaseConcurrentAcquire races many holders for the lease, round after
// round, and checks exactly one wins each round with a higher epoch.
func testLeaseConcurrentAcquire(t *testing.T, s Store) {
	ctx := context.Background()
	const rounds, contenders = 8, 12
	var last int64
	for r := 0; r < rounds; r++ {
		now := base.Add(time.Duration(r) * time.Second)
		start := make(chan struct{})
		type result struct {
			holder string
			lease  catalog.Lease
			err    error
		}
		results := make(chan result, contenders)
		var wg sync.WaitGroup
		for i := 0; i < contenders; i++ {
			holder := fmt.Sprintf("node-%02d", i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				l, err := s.AcquireLease(ctx, "prod", holder, "engine-"+holder, time.Hour, now)
				results <- result{holder, l, err}
			}()
		}
		close(start)
		wg.Wait()
		close(results)
		var winners []result
		for res := range results {
			switch {
			case res.err == nil:
				winners = append(winners, res)
			case !errors.Is(res.err, catalog.ErrConflict):
				t.Errorf("round %d: AcquireLease(%s) failed with %v, want success or ErrConflict", r, res.holder, res.err)
			}
		}
		if len(winners) != 1 {
			var got []string
			for _, w := range winners {
				got = append(got, fmt.Sprintf("%s@%d", w.holder, w.lease.Epoch))
			}
			t.Fatalf("round %d: %d of %d contenders won the lease, want exactly 1: %v", r, len(winners), contenders, got)
		}
		w := winners[0]
		if w.lease.Epoch <= last {
			t.Fatalf("round %d: winner %s got epoch %d, not above the previous %d", r, w.holder, w.lease.Epoch, last)
		}
		if w.lease.Holder != w.holder {
			t.Errorf("round %d: lease holder %q, want the caller %q", r, w.lease.Holder, w.holder)
		}
		last = w.lease.Epoch
		if err := s.ReleaseLease(ctx, "prod", w.lease.Epoch); err != nil {
			t.Fatalf("round %d: ReleaseLease(%d): %v", r, w.lease.Epoch, err)
		}
	}
	if last != rounds {
		t.Errorf("after %d rounds the epoch is %d, want %d (losers must not consume epochs)", rounds, last, rounds)
	}
}

func mustPut(t *testing.T, s Store, c catalog.Cluster) {
	t.Helper()
	if err := s.PutCluster(context.Background(), c); err != nil {
		t.Fatalf("PutCluster(%s): %v", c.Name, err)
	}
}

func mustAcquire(t *testing.T, s Store, cluster, holder, owner string, ttl time.Duration, now time.Time) catalog.Lease {
	t.Helper()
	l, err := s.AcquireLease(context.Background(), cluster, holder, owner, ttl, now)
	if err != nil {
		t.Fatalf("AcquireLease(%s, %s): %v", cluster, holder, err)
	}
	return l
}

// assertErr checks err wraps target and names the record it is about.
func assertErr(t *testing.T, what string, err, target error, mentions string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want one wrapping %v", what, err, target)
		return
	}
	if !strings.Contains(err.Error(), mentions) {
		t.Errorf("%s: error %q does not name %q", what, err, mentions)
	}
}

func assertCluster(t *testing.T, got, want catalog.Cluster) {
	t.Helper()
	if got.Name != want.Name || got.SharedVolume != want.SharedVolume || got.SharedVolumeID != want.SharedVolumeID ||
		got.MasterPolicy != want.MasterPolicy || got.MasterNode != want.MasterNode || got.JoinOrder != want.JoinOrder {
		t.Errorf("cluster fields differ:\n got %+v\nwant %+v", got, want)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("cluster %q times: got CreatedAt=%v UpdatedAt=%v, want %v and %v", want.Name, got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
	if len(got.Nodes) != len(want.Nodes) {
		t.Errorf("cluster %q has %d nodes %+v, want %d %+v", want.Name, len(got.Nodes), got.Nodes, len(want.Nodes), want.Nodes)
		return
	}
	for i := range want.Nodes {
		if got.Nodes[i] != want.Nodes[i] {
			t.Errorf("cluster %q node %d = %+v, want %+v", want.Name, i, got.Nodes[i], want.Nodes[i])
		}
	}
}

func assertLease(t *testing.T, got, want catalog.Lease) {
	t.Helper()
	if got.Cluster != want.Cluster || got.Holder != want.Holder || got.Owner != want.Owner || got.Epoch != want.Epoch || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("lease = %+v, want %+v", got, want)
	}
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}
