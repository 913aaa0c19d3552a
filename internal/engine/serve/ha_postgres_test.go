package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/catalogopen"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// Two `engine serve` processes share one PostgreSQL catalog. The leader is
// SIGKILLed in the middle of a scheduled run (one node done, the other
// node's quiesce held); the other daemon takes over and finishes the slot:
// exactly one slot, one recovery point per workload, each workload active
// on one node only and none left frozen.
func TestHAOnPostgreSQLLeaderKilledMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, two daemons and two agents")
	}
	pg := postgres.Start(t)
	dbURL := pg.CreateDatabase(t)

	holdDir := t.TempDir()
	repoDir := filepath.Join(t.TempDir(), "repo")
	const password = "long enough password"
	c := agenttest.Start(t, agenttest.Options{Nodes: 2, Workloads: []string{"web", "db"},
		WorkloadEnv:  map[string]string{testworkload.HoldDirEnv: holdDir},
		Repositories: []agenttest.Repository{{Name: "r", URL: repoDir, Password: password}}})
	c.StartWorkload(t, "node-1", "web")
	c.StartWorkload(t, "node-2", "db")

	e := newDaemonEnv(t, "")
	cfg := fmt.Sprintf("catalog = %q\ncatalog_key_file = %q\nagent_token_file = %q\nlisten = \"127.0.0.1:0\"\nleader_ttl = \"6s\"\ntick = \"500ms\"\nlog_level = \"debug\"\n",
		dbURL, e.keyFile, c.TokenFile)
	if err := os.WriteFile(e.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	// The catalog as Terraform would leave it: cluster, repository, group
	// (db on node-2 first, then the master node-1 with web), and a schedule
	// whose one slot is due now.
	ctx := context.Background()
	store, err := catalogopen.Open(ctx, dbURL, catalogopen.Options{KeyFile: e.keyFile, NoEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	eng, err := engine.New(engine.Options{Store: store, Owner: "setup",
		Dial: engine.HTTPDialer(engine.HTTPDialerOptions{Token: c.Token, RequestTimeout: time.Minute})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RegisterCluster(ctx, engine.ClusterSpec{Name: "c", SharedVolume: c.SharedVolume, Nodes: c.Endpoints(),
		MasterPolicy: engine.MasterFixed, MasterNode: "node-1", JoinOrder: engine.JoinParallel}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.CreateRepository(ctx, catalog.Repository{Name: "r", URL: repoDir, Password: password}); err != nil {
		t.Fatal(err)
	}
	if err := eng.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "r", Workloads: []string{"web", "db"},
		Consistency: "application", NodeOrder: engine.OrderMasterLast, ExtractAt: engine.ExtractAtBackup, RPO: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	// Hold web's quiesce: the run stops in the middle, db already captured.
	hold, held := testworkload.HoldFiles(holdDir, "web", "quiesce")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := store.PutSchedule(ctx, catalog.Schedule{Name: "s", Group: "g", Interval: time.Hour, StartWindow: time.Hour,
		CatchUp: catalog.CatchUpLatest, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}

	d1, d2 := e.start(t, "d1"), e.start(t, "d2")
	waitFor(t, 3*time.Minute, "web's quiesce to be held mid-run", func() bool { _, err := os.Stat(held); return err == nil })

	leader, other := d1, d2
	if !healthOf(t, d1).Leader {
		leader, other = d2, d1
	}
	if !healthOf(t, leader).Leader || healthOf(t, other).Leader {
		t.Fatalf("want exactly one leader: d1 %+v, d2 %+v", healthOf(t, d1), healthOf(t, d2))
	}
	if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-leader.exited
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}

	var slot catalog.ScheduleSlot
	waitFor(t, 3*time.Minute, "the other daemon to finish the slot", func() bool {
		slots, err := store.ListSlots(ctx, "s", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(slots) > 1 {
			t.Fatalf("%d slots, want 1: %+v", len(slots), slots)
		}
		if len(slots) == 1 && slots[0].State != catalog.SlotRunning {
			slot = slots[0]
			return true
		}
		return false
	})
	if !healthOf(t, other).Leader {
		t.Errorf("the surviving daemon does not lead: %+v", healthOf(t, other))
	}
	if slot.State != catalog.SlotSucceeded || slot.Daemon != healthOf(t, other).ID {
		t.Fatalf("slot %+v; want succeeded by the surviving daemon\nsurvivor log:\n%s", slot, other.log)
	}
	if !strings.HasPrefix(slot.Reason, "retry of run ") {
		t.Errorf("slot reason %q; want the survivor's retry of the interrupted run", slot.Reason)
	}
	runs, err := store.ListRuns(ctx, "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]int{}
	for _, r := range runs {
		status[r.Status]++
	}
	if len(runs) != 2 || status[catalog.RunFailed] != 1 || status[catalog.RunSucceeded] != 1 {
		t.Errorf("runs by status %v; want the interrupted run failed and its retry succeeded", status)
	}
	points, err := store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, p := range points {
		per[p.Workload]++
	}
	if per["web"] != 1 || per["db"] != 1 || len(points) != 2 {
		t.Errorf("recovery points per workload %v; want exactly one each for the slot", per)
	}

	// No workload active twice, none left frozen.
	for _, w := range []struct{ name, node, other string }{{"web", "node-1", "node-2"}, {"db", "node-2", "node-1"}} {
		for node, want := range map[string]string{w.node: api.StateActive, w.other: api.StateInactive} {
			list, err := c.Client(t, node).Workloads(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range list.Workloads {
				if got.Name == w.name && got.State != want {
					t.Errorf("%s on %s is %s, want %s", w.name, node, got.State, want)
				}
			}
		}
		if _, quiesced, err := testworkload.ReadQuiesceAck(c.WorkloadStateDir(w.node, w.name)); err != nil || quiesced {
			t.Errorf("%s on %s left quiesced (%v)", w.name, w.node, err)
		}
	}
	if code := other.stop(t); code != 0 {
		t.Errorf("surviving daemon exit code %d after SIGTERM\n%s", code, other.log)
	}
}

type healthDoc struct {
	ID     string `json:"id"`
	Leader bool   `json:"leader"`
	Token  int64  `json:"token"`
}

func healthOf(t *testing.T, p *daemonProc) healthDoc {
	t.Helper()
	_, body := get(t, "http://"+p.addr+"/health")
	var h healthDoc
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("/health: %v: %s", err, body)
	}
	return h
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
