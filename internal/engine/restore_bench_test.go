package engine

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
)

// BenchmarkRestoreWorkload restores a 1 GiB workload in place through the
// engine (stop, inspect, stage, swap, start: the time from apply to the
// workload active again) and, in the same run, restores the same data with
// `restic restore`. restic must be installed (make bench installs it).
//
//	go test -run '^$' -bench RestoreWorkload -benchtime 1x -timeout 30m ./internal/engine/
func BenchmarkRestoreWorkload(b *testing.B) {
	restic, err := exec.LookPath("restic")
	if err != nil {
		b.Fatal("restic is not installed: run `make bench` (it installs restic and borgbackup) or apt-get install restic")
	}
	work := b.TempDir()
	c := agenttest.Start(b, agenttest.Options{Nodes: 1, Workloads: []string{"vm"},
		Repositories: []agenttest.Repository{{Name: "r", URL: filepath.Join(work, "cg-repo"), Password: "bench password"}}})
	dataDir := filepath.Join(c.SharedVolume, "apps", "vm")
	const size = 1 << 30
	writeImage(b, filepath.Join(dataDir, "disk.img"), size)
	c.StartWorkload(b, "node-1", "vm")

	ctx := context.Background()
	store := memstore.New()
	eng, err := New(Options{Store: store, Dial: HTTPDialer(HTTPDialerOptions{Token: c.Token, RequestTimeout: time.Minute})})
	if err != nil {
		b.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	_, err = eng.RegisterCluster(ctx, ClusterSpec{Name: "bench", SharedVolume: c.SharedVolume, Nodes: c.Endpoints(), MasterPolicy: MasterRandom, JoinOrder: JoinParallel})
	must(err)
	_, err = eng.CreateRepository(ctx, catalog.Repository{Name: "r", URL: filepath.Join(work, "cg-repo"), Password: "bench password"})
	must(err)
	must(eng.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "bench", Repository: "r", Workloads: []string{"vm"},
		Consistency: "application", NodeOrder: OrderMasterLast, ExtractAt: ExtractAtBackup}))
	if rep, err := eng.RunBackup(ctx, RunOptions{Group: "g", StunTimeout: 10 * time.Minute}); err != nil || rep.Run.Status != catalog.RunSucceeded {
		b.Fatalf("backup: %v %s", err, rep.Run.Error)
	}

	// restic: same data, same disk.
	resticRepo := filepath.Join(work, "restic-repo")
	env := append(os.Environ(), "RESTIC_PASSWORD=bench", "RESTIC_REPOSITORY="+resticRepo, "RESTIC_CACHE_DIR="+filepath.Join(work, "restic-cache"))
	run := func(args ...string) time.Duration {
		cmd := exec.Command(restic, args...)
		cmd.Env = env
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("restic %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return time.Since(start)
	}
	run("init")
	run("backup", "--host", "bench", dataDir)

	for b.Loop() {
		b.StopTimer()
		target := filepath.Join(work, fmt.Sprintf("restic-restore-%d", time.Now().UnixNano()))
		dropCaches()
		resticTime := run("restore", "latest", "--target", target)
		_ = os.RemoveAll(target)
		dropCaches()
		b.StartTimer()
		start := time.Now()
		rep, err := eng.RunRestore(ctx, RestoreSpec{Cluster: "bench", Repository: "r", Verify: "metadata", ActivateAfter: true,
			Workloads: []RestoreWorkload{{Name: "vm", RecoveryPoint: "latest", Target: TargetActiveNode, OnConflict: ConflictDeactivate}},
			Triggers:  map[string]string{"at": time.Now().String()}}, nil, RestoreHooks{})
		total := time.Since(start)
		b.StopTimer()
		if err != nil || rep.Operation.Status != catalog.RestoreSucceeded {
			b.Fatalf("restore: %v", err)
		}
		st := rep.Steps[0]
		restoreOnly := st.FinishedAt.Sub(st.StartedAt)
		mib := float64(size) / (1 << 20)
		b.ReportMetric(total.Seconds(), "apply-to-active-s")
		b.ReportMetric(mib/restoreOnly.Seconds(), "clusterguard-MiB/s")
		b.ReportMetric(mib/resticTime.Seconds(), "restic-MiB/s")
		b.ReportMetric(resticTime.Seconds()/restoreOnly.Seconds(), "speedup-vs-restic")
		b.StartTimer()
	}
}

// writeImage writes a disk-image-like file: a quarter random, a quarter
// zeros, half log-like text.
func writeImage(b *testing.B, p string, size int) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4<<20)
	line := "2026-11-22T10:00:00Z node-1 vm: request served in 12ms status=200 path=/api/v1/items\n"
	text := []byte(strings.Repeat(line, len(chunk)/len(line)+1))[:len(chunk)]
	for written, i := 0, 0; written < size; written, i = written+len(chunk), i+1 {
		switch i % 4 {
		case 0:
			_, _ = rand.Read(chunk)
			_, err = f.Write(chunk)
		case 1:
			_, err = f.Write(make([]byte, len(chunk)))
		default:
			_, err = f.Write(text)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// dropCaches makes both tools read from disk; allowed as root, skipped otherwise.
func dropCaches() {
	_ = exec.Command("sync").Run()
	_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o644)
}
