package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

// testAccProtoV6ProviderFactories serve the provider in-process to the real
// terraform binary that terraform-plugin-testing drives.
var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"clusterguard": providerserver.NewProtocol6WithError(New("test")()),
}

// testAccPreCheck fails (never skips) when terraform is missing: these tests
// are the proof that the provider works with real Terraform.
func testAccPreCheck(t *testing.T) {
	t.Helper()
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		var err error
		if tf, err = exec.LookPath("terraform"); err != nil {
			t.Fatalf("terraform is not on PATH (expected /usr/local/bin/terraform); install it: the acceptance tests run real Terraform: %v", err)
		}
		t.Setenv("TF_ACC_TERRAFORM_PATH", tf)
	}
	if os.Getenv("TF_ACC") == "" {
		t.Setenv("TF_ACC", "1")
	}
}

// testEnv is one real agent cluster plus a private catalog for one test.
type testEnv struct {
	cluster *agenttest.Cluster
	catalog string
	// repoDir is the repository "repo" the agents are configured for (they
	// open no other); testAccBackupConfig registers it.
	repoDir string
}

// testRepository is the repository block every test cluster's agents get:
// name and password as testAccBackupConfig registers them.
func testRepository(t *testing.T) agenttest.Repository {
	return agenttest.Repository{Name: "repo", URL: filepath.Join(t.TempDir(), "repo"), Password: testRepoPassword}
}

func newTestEnv(t *testing.T, nodes int, workloads ...string) *testEnv {
	t.Helper()
	return newTestEnvWith(t, nodes, nil, workloads...)
}

// newTestEnvWith passes env to every test workload (e.g. its flush size).
func newTestEnvWith(t *testing.T, nodes int, env map[string]string, workloads ...string) *testEnv {
	t.Helper()
	testAccPreCheck(t)
	repo := testRepository(t)
	// "restored" is where tests restore single files elsewhere (M9).
	c := agenttest.Start(t, agenttest.Options{Nodes: nodes, Workloads: workloads, WorkloadEnv: env, Repositories: []agenttest.Repository{repo},
		ExtraConfig: "restore_destinations = [\"restored\"]\n"})
	return &testEnv{cluster: c, catalog: filepath.Join(t.TempDir(), "catalog.db"), repoDir: repo.URL}
}

// providerBlock configures the provider for this environment.
func (e *testEnv) providerBlock(token string) string {
	return fmt.Sprintf(`
provider "clusterguard" {
  catalog     = %q
  agent_token = %q
}
`, e.catalog, token)
}

// nodesHCL renders the node map in a stable order.
func (e *testEnv) nodesHCL() string {
	eps := e.cluster.Endpoints()
	names := make([]string, 0, len(eps))
	for n := range eps {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("{\n")
	for _, n := range names {
		fmt.Fprintf(&b, "    %q = %q\n", n, eps[n])
	}
	b.WriteString("  }")
	return b.String()
}

// registerDirectly registers the cluster in the catalog through the engine,
// as another workspace sharing the catalog would have done.
func (e *testEnv) registerDirectly(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	store, err := openCatalog(ctx, e.catalog) // as the provider does: with the catalog key
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	defer store.Close()
	eng, err := engine.New(engine.Options{Store: store, Dial: engine.HTTPDialer(engine.HTTPDialerOptions{Token: e.cluster.Token})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RegisterCluster(ctx, engine.ClusterSpec{
		Name: name, SharedVolume: e.cluster.SharedVolume, Nodes: e.cluster.Endpoints(),
		MasterPolicy: engine.MasterRandom, JoinOrder: engine.JoinParallel,
	}); err != nil {
		t.Fatalf("register cluster: %v", err)
	}
}

// testClock is an injectable clock tests move forward (RPO, retention).
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now().UTC()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// factories serve a provider built with options (clock, run hooks).
func factories(opts ...Option) map[string]func() (tfprotov6.ProviderServer, error) {
	opts = append([]Option{WithWait(func(context.Context, time.Duration) error { return nil })}, opts...)
	return map[string]func() (tfprotov6.ProviderServer, error){
		"clusterguard": providerserver.NewProtocol6WithError(New("test", opts...)()),
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// waitGrowth polls until the file at p is larger than size.
func waitGrowth(t *testing.T, p string, size int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
	t.Fatalf("%s did not grow past %d bytes", p, size)
}
