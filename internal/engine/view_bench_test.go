package engine

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testfs"
)

// BenchmarkFileWorkloadView backs up a 1 GiB exec workload on a real XFS
// (reflink=1, loop device) through the engine with a real agent, once with
// a reflink view and once with the mirror, and reports the stun of the
// first backup (empty mirror: a workload that just moved here) and of the
// next (nothing changed but the workload's log), the engine run's time,
// and that time against `engine repo backup` of the same directory into a
// fresh repository (the target: at most 1.10x, stun under 100 ms). Needs
// root (loop devices). The page cache is dropped before each measured
// backup, as a scheduled backup finds it: a reflink view has new inodes,
// so it never reads from the cache the workload's own files warmed.
//
//	go test -run '^$' -bench FileWorkloadView -benchtime 1x ./internal/engine/
func BenchmarkFileWorkloadView(b *testing.B) {
	const files, size = 16, 64 << 20
	mainBin, _ := agenttest.Binaries(b)
	vol := testfs.MountSize(b, "xfs", 3<<30)
	for _, method := range []string{agent.SnapshotReflink, agent.SnapshotMirror} {
		b.Run(method, func(b *testing.B) {
			shared := filepath.Join(vol, method)
			data := filepath.Join(shared, "apps", "web")
			if err := os.MkdirAll(data, 0o755); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, size)
			for i := range files {
				_, _ = rand.Read(buf)
				if err := os.WriteFile(filepath.Join(data, fmt.Sprintf("data-%02d.bin", i)), buf, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			syscall.Sync() // the workload's data is on disk, not dirty in memory
			repoDir := filepath.Join(b.TempDir(), "repo")
			c := agenttest.Start(b, agenttest.Options{Nodes: 1, Workloads: []string{"web"}, SharedVolume: shared, SnapshotMethod: method,
				Repositories: []agenttest.Repository{{Name: "r", URL: repoDir, Password: "bench password"}}})
			c.StartWorkload(b, "node-1", "web")
			for b.Loop() {
				b.StopTimer()
				ctx := context.Background()
				eng, err := New(Options{Store: memstore.New(), Dial: HTTPDialer(HTTPDialerOptions{Token: c.Token, RequestTimeout: 10 * time.Minute})})
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
				if err := eng.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "bench", Repository: "r", Workloads: []string{"web"},
					Consistency: "application", NodeOrder: OrderMasterLast, ExtractAt: ExtractAtBackup}); err != nil {
					b.Fatal(err)
				}
				dropCaches()
				b.StartTimer()
				var stuns [2]int64
				var first time.Duration
				for i := range stuns {
					start := time.Now()
					rep, err := eng.RunBackup(ctx, RunOptions{Group: "g"})
					if i == 0 {
						first = time.Since(start)
					}
					if err != nil || rep.Run.Status != catalog.RunSucceeded || len(rep.Steps) != 1 {
						b.Fatalf("run: %v %s %s", err, rep.Run.Status, rep.Run.Error)
					}
					stuns[i] = rep.Steps[0].StunMS
				}
				b.StopTimer()
				// The same directory straight into a fresh repository.
				plain := filepath.Join(b.TempDir(), "plain-repo")
				cli := func(args ...string) time.Duration {
					cmd := exec.Command(mainBin, append([]string{"engine", "repo"}, args...)...)
					cmd.Env = append(os.Environ(), "CLUSTERGUARD_PASSWORD=bench password")
					start := time.Now()
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("engine repo %v: %v: %s", args, err, out)
					}
					return time.Since(start)
				}
				cli("init", "--repo", plain)
				dropCaches()
				direct := cli("backup", "--repo", plain, "--workload", "web", data)
				b.ReportMetric(float64(stuns[0]), "stun-first-ms")
				b.ReportMetric(float64(stuns[1]), "stun-next-ms")
				b.ReportMetric(first.Seconds(), "engine-backup-s")
				b.ReportMetric(direct.Seconds(), "repo-backup-s")
				b.ReportMetric(first.Seconds()/direct.Seconds(), "engine/repo-x")
				b.StartTimer()
			}
		})
	}
}
