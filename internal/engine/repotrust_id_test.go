package engine

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// A repository the engine cannot open fails the run closed (no request
// goes out without the id), and the failure is not remembered: once the
// repository is reachable, the next run learns the id and sends it.
func TestRepositoryIDFailureFailsClosedAndIsNotRemembered(t *testing.T) {
	t.Parallel()
	fx := newTrustFixture(t)
	ctx := context.Background()
	if err := fx.putGroup(t, ExtractAtBackup); err != nil {
		t.Fatal(err)
	}
	// The registered location goes away (a bucket unreachable, a mount lost).
	moved := fx.repo.URL + ".away"
	if err := os.Rename(fx.repo.URL, moved); err != nil {
		t.Fatal(err)
	}
	fx.eng.repoIDs.Delete("r") // as after an engine restart
	_, err := fx.eng.RunBackup(ctx, RunOptions{Group: "g"})
	var idErr *RepositoryIDError
	if !errors.As(err, &idErr) || !strings.Contains(err.Error(), `repository "r"`) {
		t.Fatalf("RunBackup without a reachable repository: %v, want a RepositoryIDError", err)
	}
	if len(fx.f.backups) != 0 || len(fx.rec.bodies) != 0 {
		t.Fatalf("requests went out without the repository's id: %v %v", fx.f.backups, fx.rec.bodies)
	}
	// A cancelled context is no more remembered than any other failure.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := fx.eng.repositoryID(cancelled, fx.repo); err == nil {
		t.Fatal("repositoryID with a cancelled context succeeded")
	}
	if err := os.Rename(moved, fx.repo.URL); err != nil {
		t.Fatal(err)
	}
	rep, err := fx.eng.RunBackup(ctx, RunOptions{Group: "g"})
	if err != nil || rep.Run.Status != catalog.RunSucceeded {
		t.Fatalf("RunBackup once the repository is back: %v %+v", err, rep.Run)
	}
	for _, b := range fx.rec.bodies {
		if !strings.Contains(b, `"repository_id":"`+fx.repoID+`"`) {
			t.Errorf("request %s does not carry the repository's id %s", b, fx.repoID)
		}
	}
}

// An id is remembered only for the access settings it was learned with:
// new credentials or a new endpoint (UpdateRepositoryAccess) open the
// repository again rather than reuse it.
func TestRepositoryIDIsRememberedPerAccess(t *testing.T) {
	t.Parallel()
	fx := newTrustFixture(t)
	ctx := context.Background()
	fx.eng.rememberRepositoryID(fx.repo, "0000stale0000")
	if id, err := fx.eng.repositoryID(ctx, fx.repo); err != nil || id != "0000stale0000" {
		t.Fatalf("remembered id: %q %v", id, err)
	}
	for name, change := range map[string]func(*catalog.Repository){
		"secret access key": func(r *catalog.Repository) { r.SecretAccessKey = "sk-rotated" },
		"session token":     func(r *catalog.Repository) { r.SessionToken = "st-rotated" },
		"access key id":     func(r *catalog.Repository) { r.AccessKeyID = "AKIA-other" },
		"region":            func(r *catalog.Repository) { r.Region = "eu-2" },
		"path style":        func(r *catalog.Repository) { r.PathStyle = true },
		"insecure":          func(r *catalog.Repository) { r.Insecure = true },
	} {
		r := fx.repo
		change(&r)
		fx.eng.rememberRepositoryID(fx.repo, "0000stale0000")
		if id, err := fx.eng.repositoryID(ctx, r); err != nil || id != fx.repoID {
			t.Errorf("after changing the %s: id %q (%v), want the repository's %s", name, id, err, fx.repoID)
		}
	}
}

// The engine records a recovery point only when the agent reports having
// written into the registered repository: a result with another id (or
// none) fails the step and indexes nothing.
func TestBackupResultWithAnotherRepositoryIDIsNotRecorded(t *testing.T) {
	t.Parallel()
	fx := newTrustFixture(t)
	ctx := context.Background()
	if err := fx.putGroup(t, ExtractAtBackup); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"fedcba9876543210", ""} {
		fx.rec.resultID = id
		if id == "" {
			fx.rec.resultID = "-" // "" means no override; "-" stands for an agent that reports none
		}
		rep, err := fx.eng.RunBackup(ctx, RunOptions{Group: "g"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Run.Status != catalog.RunFailed || !strings.Contains(rep.Run.Error, "nothing was recorded") {
			t.Errorf("result id %q: run %s %q, want failed naming the repository", id, rep.Run.Status, rep.Run.Error)
		}
		points, err := fx.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Repository: "r"})
		if err != nil {
			t.Fatal(err)
		}
		if len(points) != 0 {
			t.Fatalf("result id %q: %d recovery points recorded, want 0", id, len(points))
		}
	}
}

// The restore request names the cluster, so the agent can refuse another
// cluster's recovery point.
func TestRestoreRequestNamesTheCluster(t *testing.T) {
	t.Parallel()
	fx := newTrustFixture(t)
	if err := fx.putGroup(t, ExtractAtBackup); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.eng.RunBackup(context.Background(), RunOptions{Group: "g"}); err != nil {
		t.Fatal(err)
	}
	_, _ = fx.eng.RunRestore(context.Background(), restoreSpec(TargetActiveNode, ""), nil, RestoreHooks{}) // the fake refuses restores; the request is what counts
	found := false
	for _, b := range fx.rec.bodies {
		if strings.Contains(b, `"operation_id"`) {
			found = true
			if !strings.Contains(b, `"cluster":"c"`) {
				t.Errorf("restore request %s does not name cluster c", b)
			}
		}
	}
	if !found {
		t.Fatal("no restore request recorded")
	}
}

// A restore fails closed too: without the repository's id no restore
// request goes out.
func TestRestoreWithoutRepositoryIDFailsClosed(t *testing.T) {
	t.Parallel()
	fx := newTrustFixture(t)
	ctx := context.Background()
	if err := fx.putGroup(t, ExtractAtBackup); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.eng.RunBackup(ctx, RunOptions{Group: "g"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fx.repo.URL, fx.repo.URL+".away"); err != nil {
		t.Fatal(err)
	}
	fx.eng.repoIDs.Delete("r") // as after an engine restart
	fx.rec.mu.Lock()
	fx.rec.bodies = nil
	fx.rec.mu.Unlock()
	_, err := fx.eng.RunRestore(ctx, restoreSpec(TargetActiveNode, ""), nil, RestoreHooks{})
	var idErr *RepositoryIDError
	if !errors.As(err, &idErr) {
		t.Fatalf("RunRestore without a reachable repository: %v, want a RepositoryIDError", err)
	}
	fx.rec.mu.Lock()
	defer fx.rec.mu.Unlock()
	if len(fx.rec.bodies) != 0 {
		t.Errorf("requests went out without the repository's id: %v", fx.rec.bodies)
	}
}
