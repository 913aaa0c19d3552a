package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlite"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/location"
)

// BenchmarkCatalogRebuild rebuilds the recovery-point index of a directory
// repository holding CLUSTERGUARD_BENCH_POINTS (default 10,000) small
// snapshots (100 workloads of 10 groups, one run per 100 snapshots) into an
// empty SQLite catalog: what `engine catalog rebuild` does on disaster day.
// The snapshots are generated first, outside the timing.
func BenchmarkCatalogRebuild(b *testing.B) {
	n := 10000
	if v := os.Getenv("CLUSTERGUARD_BENCH_POINTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	dir := b.TempDir()
	// Generated where fsync costs nothing (tmpfs), then copied to the
	// disk the rebuild reads from: 10,000 fsynced backups would take far
	// longer than what is measured.
	genDir := dir
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if genDir, err = os.MkdirTemp("/dev/shm", "cg-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(genDir) })
	}
	repoDir, genRepo, src := filepath.Join(dir, "repo"), filepath.Join(genDir, "repo"), filepath.Join(genDir, "src")
	const pw = "bench password long enough"
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	be, err := location.Create(ctx, location.Config{URL: genRepo})
	if err != nil {
		b.Fatal(err)
	}
	repo, err := repository.Init(ctx, be, pw, repository.InitOptions{})
	if err != nil {
		b.Fatal(err)
	}
	gen := time.Now()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		if err := os.WriteFile(filepath.Join(src, "data"), []byte(fmt.Sprintf("record %d\n", i)), 0o644); err != nil {
			b.Fatal(err)
		}
		w := i % 100
		_, _, err := repo.Backup(ctx, repository.BackupOptions{Root: src, Parent: repository.NoParent, Meta: repository.SnapshotMeta{
			Workload: fmt.Sprintf("w%03d", w), Cluster: "c", Group: fmt.Sprintf("g%d", w/10), Node: fmt.Sprintf("node-%d", i%3+1),
			RunID: fmt.Sprintf("run-%05d", i/100), Consistency: repository.ConsistencyApplication, Tags: []string{"schedule:nightly"},
			Labels: map[string]string{"extract_at": "backup"}, Time: t0.Add(time.Duration(i) * time.Minute)}})
		if err != nil {
			b.Fatal(err)
		}
	}
	repo.Close()
	be.Close()
	if genRepo != repoDir {
		if err := os.CopyFS(repoDir, os.DirFS(genRepo)); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("generated %d snapshots in %s", n, time.Since(gen).Round(time.Millisecond))
	b.ResetTimer()
	for i := range b.N {
		store, err := sqlite.Open(ctx, filepath.Join(dir, fmt.Sprintf("catalog-%d.db", i)), sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		eng, err := New(Options{Store: store, Owner: "bench", Dial: func(string, string) (AgentClient, error) { return nil, fmt.Errorf("no agents") }})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := eng.RegisterRepository(ctx, catalog.Repository{Name: "r", URL: repoDir, Password: pw}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rep, err := eng.RebuildIndex(ctx, "r", "")
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		store.Close()
		if rep.Added != n {
			b.Fatalf("rebuilt %d recovery points, want %d", rep.Added, n)
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "points/s")
		b.Logf("rebuilt %d recovery points in %s", rep.Added, elapsed.Round(time.Millisecond))
	}
}
