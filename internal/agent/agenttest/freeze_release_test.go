package agenttest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// heldCluster starts node-1 (of nodes) running workloads, with commands
// that can be held through hold files in the returned directory, and
// claims the coordinator role at epoch 1.
func heldCluster(t *testing.T, nodes int, workloads ...string) (*Cluster, *client.Client, Repository, string) {
	t.Helper()
	holdDir := t.TempDir()
	env := map[string]string{testworkload.HoldDirEnv: holdDir}
	for k, v := range fastWorkload {
		env[k] = v
	}
	repo := newRepo(t)
	c := Start(t, Options{Nodes: nodes, Workloads: workloads, WorkloadEnv: env, Repositories: []Repository{repo}})
	for _, w := range workloads {
		c.StartWorkload(t, "node-1", w)
	}
	cl := c.Client(t, "node-1")
	if _, err := cl.ClaimCoordinator(context.Background(), api.CoordinatorClaim{Cluster: "c", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	return c, cl, repo, holdDir
}

// hold holds workload's cmd until the test ends (or it calls the returned func).
func hold(t *testing.T, holdDir, workload, cmd string) (held string, release func()) {
	t.Helper()
	h, held := testworkload.HoldFiles(holdDir, workload, cmd)
	must(t, os.WriteFile(h, nil, 0o644))
	release = func() { _ = os.Remove(h) }
	t.Cleanup(release)
	return held, release
}

// takeOver writes node-2's claim over node-1's lease of workload.
func takeOver(t *testing.T, c *Cluster, workload string) {
	t.Helper()
	rec := c.WaitOwnerRecord(t, workload, "held by node-1", time.Second, func(r agent.OwnerRecord) bool { return r.Node == "node-1" })
	rec.Node, rec.Claim, rec.Generation, rec.HeartbeatAt = "node-2", "takeover", rec.Generation+1, time.Now().UTC()
	writeOwnerRecord(t, c, rec)
}

// waitNotThawed waits for done and fails if the workload's thaw command
// (held) ran first: a workload whose lease was lost while frozen must be
// stopped, never resumed.
func waitNotThawed[T any](t *testing.T, done <-chan T, thawHeld string) T {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case v := <-done:
			if _, err := os.Stat(thawHeld); err == nil {
				t.Fatal("the workload was thawed although its lease was lost while it was frozen")
			}
			return v
		default:
		}
		if _, err := os.Stat(thawHeld); err == nil {
			t.Fatal("the workload was thawed although its lease was lost while it was frozen")
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup did not return")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A node backup whose stun deadline passes while it is still freezing
// workloads releases the ones frozen after the deadline too: none stays
// frozen, and every one can be stopped afterwards.
func TestNodeBackupStunDeadlineDuringFreezeReleasesEveryWorkload(t *testing.T) {
	c, cl, repo, holdDir := heldCluster(t, 1, "a", "b")
	ctx := context.Background()
	bHeld, releaseB := hold(t, holdDir, "b", "quiesce")
	done := make(chan error, 1)
	go func() {
		_, err := cl.NodeBackup(ctx, api.NodeBackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication,
			Workloads: []string{"a", "b"}, StunTimeoutMS: 300, Cluster: "c", Group: "g", RunID: "r"})
		done <- err
	}()
	waitFile(t, bHeld)
	// a was frozen first; the stun timer thaws it while b's freeze is held.
	waitStatus(t, c.WorkloadStateDir("node-1", "a"), "a frozen then released by the stun timer", func(s testworkload.Status) bool { return !s.Quiesced && s.Generated > 0 })
	releaseB()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "stun timeout") {
		t.Fatalf("node backup whose stun deadline passed while freezing: %v, want a failure naming the stun timeout", err)
	}
	if _, quiesced, err := testworkload.ReadQuiesceAck(c.WorkloadStateDir("node-1", "b")); err != nil || quiesced {
		t.Fatalf("b frozen after the stun deadline was left frozen (quiesced=%v, %v)", quiesced, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cl.Action(sctx, "b", agent.ActionStop); err != nil {
		t.Fatalf("stop b after the failed node backup (its lock must be free): %v", err)
	}
}

// A lease taken over while a node backup freezes its workloads is noticed
// right before the copy: the backup is refused and the workload stopped,
// not resumed.
func TestNodeBackupRefusedWhenLeaseIsTakenOverWhileFreezing(t *testing.T) {
	c, cl, repo, holdDir := heldCluster(t, 2, "web")
	ctx := context.Background()
	quiesceHeld, releaseQuiesce := hold(t, holdDir, "web", "quiesce")
	thawHeld, _ := hold(t, holdDir, "web", "thaw")
	done := make(chan error, 1)
	go func() {
		_, err := cl.NodeBackup(ctx, api.NodeBackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication,
			Workloads: []string{"web"}, Cluster: "c", Group: "g", RunID: "r"})
		done <- err
	}()
	waitFile(t, quiesceHeld)
	takeOver(t, c, "web")
	releaseQuiesce()
	err := waitNotThawed(t, done, thawHeld)
	if !client.IsNotActive(err) || !strings.Contains(err.Error(), "node-2") {
		t.Fatalf("node backup after a takeover: %v, want not_active naming node-2", err)
	}
	if n := snapshotCountOf(t, repo); n != 0 {
		t.Fatalf("%d snapshots stored, want none", n)
	}
}

// A backup whose lease is lost while the workload is frozen stops the
// workload instead of thawing it: the new holder may already run it.
func TestBackupStopsInsteadOfThawingAfterTheLeaseIsLost(t *testing.T) {
	c, cl, repo, holdDir := heldCluster(t, 2, "web")
	ctx := context.Background()
	quiesceHeld, releaseQuiesce := hold(t, holdDir, "web", "quiesce")
	thawHeld, _ := hold(t, holdDir, "web", "thaw")
	done := make(chan error, 1)
	go func() {
		_, err := cl.Backup(ctx, "web", api.BackupRequest{Epoch: 1, Repository: repo.Name, Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"})
		done <- err
	}()
	waitFile(t, quiesceHeld)
	takeOver(t, c, "web")
	releaseQuiesce()
	err := waitNotThawed(t, done, thawHeld)
	if !client.IsNotActive(err) || !strings.Contains(err.Error(), "node-2") {
		t.Fatalf("backup after a takeover: %v, want not_active naming node-2", err)
	}
	w, err := cl.Workload(ctx, "web")
	if err != nil || w.State == api.StateActive {
		t.Fatalf("web on node-1 after losing its lease while frozen: %+v (%v), want stopped", w, err)
	}
}

func snapshotCountOf(t *testing.T, r Repository) int {
	t.Helper()
	be, err := local.Open(r.URL)
	must(t, err)
	defer be.Close()
	repo, err := repository.Open(context.Background(), be, r.Password, repository.OpenOptions{})
	must(t, err)
	defer repo.Close()
	snaps, err := repo.Snapshots(context.Background(), repository.SnapshotFilter{})
	must(t, err)
	return len(snaps)
}
