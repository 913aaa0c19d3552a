package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
)

// A repository destroyed and re-created at the same location (a new id)
// stays usable: the agents' facts still show the old id, learned when they
// last opened it, but they are advisory; each agent checks the id the
// engine sends against the repository as it is at request time. Real
// agents, real repository.
func TestRecreatedRepositoryAtTheSameLocationIsUsable(t *testing.T) {
	repoDir := filepath.Join(t.TempDir(), "repo")
	const password = "long enough password"
	c := agenttest.Start(t, agenttest.Options{Nodes: 2, Workloads: []string{"web"},
		Repositories: []agenttest.Repository{{Name: "r", URL: repoDir, Password: password}}})
	if err := os.MkdirAll(filepath.Join(c.SharedVolume, "apps", "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.SharedVolume, "apps", "web", "data"), []byte("web data"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.StartWorkload(t, "node-1", "web")
	ctx := context.Background()
	eng, err := New(Options{Store: memstore.New(), Dial: HTTPDialer(HTTPDialerOptions{Token: c.Token, RequestTimeout: time.Minute})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RegisterCluster(ctx, ClusterSpec{Name: "c", SharedVolume: c.SharedVolume, Nodes: c.Endpoints(), MasterPolicy: MasterFixed, MasterNode: "node-1", JoinOrder: JoinParallel}); err != nil {
		t.Fatal(err)
	}
	group := catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "r", Workloads: []string{"web"}, Consistency: "application", NodeOrder: OrderMasterLast, ExtractAt: ExtractAtBackup}
	run := func(what string) {
		t.Helper()
		if err := eng.PutGroup(ctx, group); err != nil {
			t.Fatalf("%s: PutGroup: %v", what, err)
		}
		rep, err := eng.RunBackup(ctx, RunOptions{Group: "g"})
		if err != nil || rep.Run.Status != catalog.RunSucceeded {
			t.Fatalf("%s: RunBackup: %v %s %s", what, err, rep.Run.Status, rep.Run.Error)
		}
	}
	if _, err := eng.CreateRepository(ctx, catalog.Repository{Name: "r", URL: repoDir, Password: password}); err != nil {
		t.Fatal(err)
	}
	run("first repository")
	oldID, err := eng.repositoryID(ctx, catalog.Repository{Name: "r", URL: repoDir, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.DeleteGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if err := eng.UnregisterRepository(ctx, "r", true); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(repoDir); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.CreateRepository(ctx, catalog.Repository{Name: "r", URL: repoDir, Password: password}); err != nil {
		t.Fatal(err)
	}
	st, err := eng.ClusterStatus(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	stale := false
	for _, n := range st.Nodes {
		for _, f := range n.Facts.Repositories {
			stale = stale || (f.Name == "r" && f.ID == oldID)
		}
	}
	if !stale {
		t.Fatalf("no agent reports the old id %s; the test no longer covers stale facts: %+v", oldID, st.Nodes)
	}
	run("re-created repository")
}
