package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlite"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// Disaster day: the repository alone gives back what the catalog knew.

const disasterSecret = "s3cr3t-never-recorded-4711"

func pointIDs(t *testing.T, s Store, repo string) []string {
	t.Helper()
	points, err := s.RecoveryPoints(context.Background(), catalog.RecoveryPointFilter{Repository: repo})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range points {
		ids = append(ids, p.ID+"|"+p.Workload+"|"+p.Group+"|"+p.RunID+"|"+p.Node+"|"+p.Consistency)
	}
	slices.Sort(ids)
	return ids
}

// The catalog is lost after several runs: rebuilding it from the
// repository gives the same recovery point ids (again and again, adding
// nothing the second time), and the digest and a restore job work on it.
// Every snapshot records its workload's definition, never the secrets in
// the workload's environment.
func TestDisasterCatalogRebuiltFromRepository(t *testing.T) {
	t.Parallel()
	// The slow lease keeps a loaded machine from stopping the workloads
	// between the test's steps.
	fx := newSafetyFixtureWithOptions(t, 2, map[string]string{"DB_PASSWORD": disasterSecret}, 0, slowLeaseOwnership, "web", "db")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.c.StartWorkload(t, "node-2", "db")
	for range 3 {
		fx.backup(t)
	}
	ctx := context.Background()
	want := pointIDs(t, fx.store, "r")
	if len(want) != 6 {
		t.Fatalf("3 runs of 2 workloads indexed %d recovery points: %v", len(want), want)
	}

	// What the snapshots carry.
	repo, closeRepo, err := fx.eng.OpenRepository(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := repo.Snapshots(ctx, repository.SnapshotFilter{})
	closeRepo()
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range snaps {
		raw, _ := json.Marshal(sn)
		if bytes.Contains(raw, []byte(disasterSecret)) {
			t.Fatalf("snapshot %s records a secret of the workload's environment: %s", sn.ShortID(), raw)
		}
		def, ok, err := api.DefinitionFromLabels(sn.Labels, sn.Workload)
		if err != nil || !ok || def.Driver != "exec" || !slices.Equal(def.Paths, []string{"apps/" + sn.Workload}) ||
			def.Exec == nil || len(def.Exec.Commands["start"]) == 0 || !slices.Contains(def.Exec.EnvNames, "DB_PASSWORD") {
			t.Fatalf("snapshot %s: definition %+v, ok %v, err %v; want the exec definition with env names only", sn.ShortID(), def, ok, err)
		}
		if sn.Labels[api.LabelExtractAt] != api.ExtractAtBackup || sn.Cluster != "c" || sn.Group != "g" || sn.RunID == "" {
			t.Fatalf("snapshot %s does not describe itself: %+v", sn.ShortID(), sn.SnapshotMeta)
		}
	}

	// The catalog is gone: a new, empty one over the same cluster.
	eng, store := fx.newEngine(t, fx.c.Token)
	if _, err := eng.RegisterRepository(ctx, catalog.Repository{Name: "r", URL: fx.repoDir, Password: "safety-test-password"}); err != nil {
		t.Fatal(err)
	}
	if err := eng.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "r", Workloads: []string{"web", "db"},
		Consistency: api.ConsistencyApplication, NodeOrder: OrderMasterLast, ExtractAt: ExtractAtBackup}); err != nil {
		t.Fatal(err)
	}
	rep, err := eng.RebuildIndex(ctx, "r", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := pointIDs(t, store, "r"); !slices.Equal(got, want) {
		t.Fatalf("rebuilt index:\n%v\nwant the original:\n%v", got, want)
	}
	if rep.Added != 6 || rep.Runs != 3 || !slices.Equal(rep.Groups, []string{"g"}) || !slices.Equal(rep.Workloads, []string{"db", "web"}) {
		t.Fatalf("rebuild report %+v", rep)
	}
	if again, err := eng.RebuildIndex(ctx, "r", "c"); err != nil || again.Added != 0 || again.Runs != 0 || again.Points != 6 {
		t.Fatalf("second rebuild: %+v, %v; want nothing added", again, err)
	}
	if got := pointIDs(t, store, "r"); !slices.Equal(got, want) {
		t.Fatalf("index after a second rebuild: %v", got)
	}
	runs, err := store.ListRuns(ctx, "g", 10)
	if err != nil || len(runs) != 3 || runs[0].Master != RecoveredMaster {
		t.Fatalf("runs recovered: %+v, %v", runs, err)
	}

	d, err := eng.Digest(ctx, "c", DigestFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range d.Workloads {
		if w.LastRecoveryPoint == "" || !strings.Contains(strings.Join(want, " "), w.LastRecoveryPoint) {
			t.Fatalf("digest after the rebuild: %s has last recovery point %q", w.Name, w.LastRecoveryPoint)
		}
	}

	// A restore job on the rebuilt catalog moves web to node-2.
	fx.watchOverlaps(t, "web", "db")
	spec := webSpec()
	spec.Workloads[0].Target, spec.Workloads[0].Node, spec.Workloads[0].OnConflict = TargetNode, "node-2", ConflictMigrate
	plan, err := eng.PlanRestore(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Steps[0].Notes) != 0 {
		t.Fatalf("the definitions are the same, yet the plan warns: %v", plan.Steps[0].Notes)
	}
	if _, err := eng.RunRestore(ctx, spec, &plan, RestoreHooks{}); err != nil {
		t.Fatal(err)
	}
	if on := fx.activeOn(t, "web"); !slices.Equal(on, []string{"node-2"}) {
		t.Fatalf("after the restore web is active on %v, want node-2", on)
	}

	// The CLI rebuilds a SQLite catalog with the same ids.
	cat := filepath.Join(t.TempDir(), "catalog.db")
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("safety-test-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, _ := agenttest.Binaries(t)
	for i := range 2 {
		out, err := exec.Command(bin, "engine", "catalog", "rebuild", "--catalog", cat, "--repository-name", "r",
			"--repository", fx.repoDir, "--password-file", pw).CombinedOutput()
		if err != nil {
			t.Fatalf("catalog rebuild #%d: %v\n%s", i+1, err, out)
		}
		wantAdded := []string{"added 6 ", "added 0 "}[i]
		if !strings.Contains(string(out), wantAdded) || !strings.Contains(string(out), "workloads: db, web") {
			t.Fatalf("catalog rebuild #%d said:\n%s\nwant %q", i+1, out, wantAdded)
		}
	}
	sq, err := sqlite.Open(ctx, cat, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	if got := pointIDs(t, sq, "r"); !slices.Equal(got, want) {
		t.Fatalf("catalog rebuilt by the CLI:\n%v\nwant:\n%v", got, want)
	}
}

// skewedDefinition reports, for workload on node, a definition with
// other paths and timeout than the agent's, as an agent configured
// differently from the one that took the backup would.
type skewedDefinition struct {
	AgentClient
	node, workload string
}

func (s skewedDefinition) Workloads(ctx context.Context) (api.WorkloadList, error) {
	l, err := s.AgentClient.Workloads(ctx)
	for i := range l.Workloads {
		if w := &l.Workloads[i]; w.Name == s.workload && w.Definition != nil {
			d := *w.Definition
			d.Paths = []string{"apps/elsewhere"}
			x := *d.Exec
			x.Timeout = "5m"
			d.Exec = &x
			w.Definition = &d
		}
	}
	return l, err
}

// A restore plan says when the restore node's definition of the workload
// differs from the one the recovery point recorded.
func TestDisasterPlanWarnsWhenDefinitionDiffers(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixtureOwnership(t, 2, slowLeaseOwnership, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.backup(t)
	ctx := context.Background()
	base := HTTPDialer(HTTPDialerOptions{Token: fx.c.Token, RequestTimeout: time.Minute, RetryMax: -1})
	store := memstore.New()
	eng, err := New(Options{Store: store, Owner: "skew-test", ProbeTimeout: 10 * time.Second, Dial: func(node, endpoint string) (AgentClient, error) {
		cl, err := base(node, endpoint)
		if err != nil || node != "node-2" {
			return cl, err
		}
		return skewedDefinition{AgentClient: cl, node: node, workload: "web"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutCluster(ctx, catalog.Cluster{Name: "c", SharedVolume: fx.c.SharedVolume, MasterPolicy: MasterFixed,
		MasterNode: "node-1", JoinOrder: JoinParallel, Nodes: fx.nodes()}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RegisterRepository(ctx, catalog.Repository{Name: "r", URL: fx.repoDir, Password: "safety-test-password"}); err != nil {
		t.Fatal(err)
	}
	spec := webSpec()
	plan, err := eng.PlanRestore(ctx, spec) // on node-1: the same definition
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Steps[0].Notes) != 0 {
		t.Fatalf("restore on node-1 warns: %v", plan.Steps[0].Notes)
	}
	spec.Workloads[0].Target, spec.Workloads[0].Node, spec.Workloads[0].OnConflict = TargetNode, "node-2", ConflictMigrate
	plan, err = eng.PlanRestore(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(plan.Steps[0].Notes, "\n")
	if !strings.Contains(notes, "differs") || !strings.Contains(notes, "apps/elsewhere") || !strings.Contains(notes, "exec.timeout \"5m\", recorded") {
		t.Fatalf("restore on node-2 (other paths and timeout): notes %q; want a warning naming both", notes)
	}
}

// Break-glass: with no catalog and no Terraform state, `engine restore`
// moves a workload to another node through its agents, never running it
// on two nodes; its dry run changes nothing; --print-definition gives the
// agent config block back.
func TestDisasterBreakGlassRestore(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixtureOwnership(t, 2, slowLeaseOwnership, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.backup(t)
	fx.backup(t)
	bin, _ := agenttest.Binaries(t)
	dir := t.TempDir()
	pw, tok := filepath.Join(dir, "pw"), filepath.Join(dir, "token")
	if err := os.WriteFile(pw, []byte("safety-test-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tok, []byte(fx.c.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, n := range fx.c.Nodes {
		nodes = append(nodes, n.Name+"="+n.Endpoint)
	}
	run := func(extra ...string) (string, error) {
		args := append([]string{"engine", "restore", "--repository", fx.repoDir, "--password-file", pw, "--workload", "web",
			"--nodes", strings.Join(nodes, ","), "--token-file", tok}, extra...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	records := func() int {
		recs, err := testworkload.ReadRecords(fx.c.WorkloadDataDir("web"))
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}

	fx.watchOverlaps(t, "web")
	out, err := run("--node", "node-2", "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "WORKLOAD") || !strings.Contains(out, "node-2") || !strings.Contains(out, "dry run: nothing was changed") {
		t.Fatalf("dry run printed:\n%s", out)
	}
	if on := fx.activeOn(t, "web"); !slices.Equal(on, []string{"node-1"}) {
		t.Fatalf("after the dry run web is active on %v, want node-1 only", on)
	}

	// The workload writes records while it runs; the restore puts the
	// data of the recovery point back, then starts it on node-2.
	out, err = run("--node", "node-2")
	if err != nil {
		t.Fatalf("break-glass restore: %v\n%s", err, out)
	}
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("break-glass restore said:\n%s", out)
	}
	if on := fx.activeOn(t, "web"); !slices.Equal(on, []string{"node-2"}) {
		t.Fatalf("after the restore web is active on %v, want node-2 only", on)
	}
	deadline := time.Now().Add(30 * time.Second)
	for fx.lastRecordNode(t, "web") != "node-2" {
		if time.Now().After(deadline) {
			t.Fatalf("web on node-2 wrote nothing within 30s (records: %d)", records())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// File level: one file of the recovery point under a directory, the
	// workload left running where it is.
	out, err = run("--path", "apps/web/"+testworkload.RecordsFile, "--destination", "apps/web/restored")
	if err != nil {
		t.Fatalf("file-level break-glass restore: %v\n%s", err, out)
	}
	got := filepath.Join(fx.c.SharedVolume, "apps/web/restored/apps/web", testworkload.RecordsFile)
	if st, err := os.Stat(got); err != nil || st.Size() == 0 {
		t.Fatalf("file-level restore wrote no %s (%v):\n%s", got, err, out)
	}
	if on := fx.activeOn(t, "web"); !slices.Equal(on, []string{"node-2"}) {
		t.Fatalf("after the file-level restore web is active on %v, want node-2 only", on)
	}

	out, err = run("--print-definition")
	if err != nil {
		t.Fatalf("print definition: %v\n%s", err, out)
	}
	def := out[strings.Index(out, "workload \"web\""):]
	cfg := fmt.Sprintf("node = \"n\"\nlisten = \"127.0.0.1:0\"\nshared_volume = %q\ntoken_file = %q\n", fx.c.SharedVolume, fx.c.TokenFile) + def
	parsed, err := agent.ParseConfig("printed.hcl", []byte(cfg))
	if err != nil {
		t.Fatalf("the printed definition is not an agent config block: %v\n%s", err, def)
	}
	if len(parsed.Workloads) != 1 || parsed.Workloads[0].Driver != "exec" || !slices.Equal(parsed.Workloads[0].Paths, []string{"apps/web"}) ||
		len(parsed.Workloads[0].Exec.Commands["start"]) != 2 {
		t.Fatalf("printed definition parsed as %+v", parsed.Workloads)
	}
}

// Break-glass with a node down: the restore refuses while the node that
// ran the workload cannot be asked, and goes on once the operator names
// it in --assume-down and its ownership lease has expired.
func TestDisasterBreakGlassAssumeDown(t *testing.T) {
	t.Parallel()
	fx := newSafetyFixture(t, 2, "web")
	fx.c.StartWorkload(t, "node-1", "web")
	fx.backup(t)
	bin, _ := agenttest.Binaries(t)
	dir := t.TempDir()
	pw, tok := filepath.Join(dir, "pw"), filepath.Join(dir, "token")
	if err := os.WriteFile(pw, []byte("safety-test-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tok, []byte(fx.c.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := "node-1=" + fx.c.Node("node-1").Endpoint + ",node-2=" + fx.c.Node("node-2").Endpoint
	run := func(extra ...string) (string, error) {
		args := append([]string{"engine", "restore", "--repository", fx.repoDir, "--password-file", pw, "--workload", "web",
			"--repository-name", "r", "--nodes", nodes, "--token-file", tok, "--node", "node-2", "--verify", "metadata"}, extra...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	// node-1 loses power: its agent and the workload's process die.
	fx.c.StopAgent(t, "node-1")
	data, err := os.ReadFile(filepath.Join(fx.c.WorkloadStateDir("node-1", "web"), testworkload.PIDFile))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out, err := run()
	if err == nil || !strings.Contains(out, "node-1") || !strings.Contains(out, "assume_down") {
		t.Fatalf("restore with node-1 unreachable: %v\n%s\nwant a refusal naming node-1 and assume_down", err, out)
	}
	if on := fx.activeOn(t, "web", "node-1"); len(on) != 0 {
		t.Fatalf("web was started on %v while node-1 may still run it", on)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err = run("--assume-down", "node-1")
		if err == nil || time.Now().After(deadline) {
			break
		}
		if !strings.Contains(out, "honoured only after") {
			t.Fatalf("restore with --assume-down node-1: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond) // polls the lease expiry, which only time brings
	}
	if err != nil {
		t.Fatalf("restore with --assume-down node-1 after its lease expired: %v\n%s", err, out)
	}
	if on := fx.activeOn(t, "web", "node-1"); !slices.Equal(on, []string{"node-2"}) {
		t.Fatalf("after the restore web is active on %v, want node-2", on)
	}
}
