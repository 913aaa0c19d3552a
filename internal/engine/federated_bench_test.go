package engine

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
)

// BenchmarkFederatedBackup runs full federated backups of 3 nodes × 10
// workloads × 50 MiB on real agents into a directory repository, and reports
// coordination overhead (run wall time minus the sum of the per-workload
// backup times the agents measured) and stun times per consistency mode.
//
//	go test -run '^$' -bench FederatedBackup -benchtime 1x ./internal/engine/
func BenchmarkFederatedBackup(b *testing.B) {
	const nodes, perNode, size = 3, 10, 50 << 20
	var names []string
	for i := range nodes * perNode {
		names = append(names, fmt.Sprintf("w%02d", i))
	}
	// Agents open only the repository their config names; each iteration
	// starts a fresh one at the same place.
	repoDir := filepath.Join(b.TempDir(), "repo")
	c := agenttest.Start(b, agenttest.Options{Nodes: nodes, Workloads: names,
		Repositories: []agenttest.Repository{{Name: "r", URL: repoDir, Password: "bench password"}}})
	for i, w := range names {
		dir := filepath.Join(c.SharedVolume, "apps", w)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, size)
		_, _ = rand.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, "data.bin"), buf, 0o644); err != nil {
			b.Fatal(err)
		}
		c.StartWorkload(b, fmt.Sprintf("node-%d", i/perNode+1), w)
	}
	for _, mode := range []string{"application", "crash"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				ctx := context.Background()
				store := memstore.New()
				eng, err := New(Options{Store: store, Dial: HTTPDialer(HTTPDialerOptions{Token: c.Token, RequestTimeout: time.Minute})})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := eng.RegisterCluster(ctx, ClusterSpec{Name: "bench", SharedVolume: c.SharedVolume, Nodes: c.Endpoints(), MasterPolicy: MasterRandom, JoinOrder: JoinParallel}); err != nil {
					b.Fatal(err)
				}
				if err := os.RemoveAll(repoDir); err != nil {
					b.Fatal(err)
				}
				if _, err := eng.CreateRepository(ctx, catalog.Repository{Name: "r", URL: repoDir, Password: "bench password"}); err != nil {
					b.Fatal(err)
				}
				if err := eng.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "bench", Repository: "r", Workloads: names,
					Consistency: mode, NodeOrder: OrderMasterLast, ExtractAt: ExtractAtBackup}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				rep, err := eng.RunBackup(ctx, RunOptions{Group: "g"})
				wall := time.Since(start)
				b.StopTimer()
				if err != nil || rep.Run.Status != catalog.RunSucceeded {
					b.Fatalf("run: %v %s %s", err, rep.Run.Status, rep.Run.Error)
				}
				var sum time.Duration
				var stuns []int64
				for _, s := range rep.Steps {
					sum += s.FinishedAt.Sub(s.StartedAt)
					stuns = append(stuns, s.StunMS)
				}
				slices.Sort(stuns)
				b.ReportMetric(wall.Seconds(), "run-s")
				b.ReportMetric(sum.Seconds(), "sum-of-workload-backups-s")
				b.ReportMetric(100*(wall-sum).Seconds()/sum.Seconds(), "overhead-%")
				b.ReportMetric(float64(stuns[len(stuns)/2]), "stun-median-ms")
				b.ReportMetric(float64(stuns[len(stuns)-1]), "stun-max-ms")
				b.ReportMetric(float64(nodes*perNode*size)/wall.Seconds()/(1<<20), "MiB/s")
				b.StartTimer()
			}
		})
	}
}
