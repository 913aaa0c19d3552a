package postgresql

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkQuiesceThaw measures the stun window the driver adds to a
// backup: CHECKPOINT, freezing every server process, and continuing them,
// after each round of 10,000 new rows (so every checkpoint has work).
//
//	go test ./internal/agent/driver/postgresql -run '^$' -bench QuiesceThaw -benchtime 20x
func BenchmarkQuiesceThaw(b *testing.B) {
	d := newTestDriver(b, initDataDir(b))
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	query(b, d, "CREATE TABLE items (n int)")
	var quiesce, thaw time.Duration
	for b.Loop() {
		b.StopTimer()
		query(b, d, "INSERT INTO items SELECT generate_series(1, 10000)")
		b.StartTimer()
		start := time.Now()
		if err := d.Quiesce(ctx); err != nil {
			b.Fatal(err)
		}
		frozen := time.Now()
		if err := d.Thaw(ctx); err != nil {
			b.Fatal(err)
		}
		quiesce += frozen.Sub(start)
		thaw += time.Since(frozen)
	}
	b.ReportMetric(float64(quiesce.Microseconds())/float64(b.N)/1000, "quiesce-ms/op")
	b.ReportMetric(float64(thaw.Microseconds())/float64(b.N)/1000, "thaw-ms/op")
}

// BenchmarkBackupMethods compares the two ways to take an
// application-consistent copy of a server holding ~100 MB while a writer
// commits one row per transaction: "freeze" (CHECKPOINT, SIGSTOP, copy,
// SIGCONT) and "online" (pg_backup_start, copy while running,
// pg_backup_stop, WAL). stun-ms is the time the server is frozen;
// total-ms the whole copy; max-commit-ms the slowest commit the writer saw
// during it (what an application feels).
//
//	go test ./internal/agent/driver/postgresql -run '^$' -bench BackupMethods -benchtime 5x
func BenchmarkBackupMethods(b *testing.B) {
	d := newTestDriver(b, initDataDir(b))
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	query(b, d, "CREATE TABLE items (id int PRIMARY KEY); CREATE TABLE pad AS SELECT n, repeat(md5(n::text), 10) AS t FROM generate_series(1, 250000) n")
	w := startWriter(b, d)
	defer w.stop(b)
	dest := filepath.Join(scratchDir(b), "copy")
	for _, method := range []string{MethodFreeze, MethodOnline} {
		b.Run(method, func(b *testing.B) {
			var stun, total, maxCommit time.Duration
			for b.Loop() {
				b.StopTimer()
				if err := os.RemoveAll(dest); err != nil {
					b.Fatal(err)
				}
				w.maxLatency.Store(0)
				b.StartTimer()
				start := time.Now()
				if method == MethodFreeze {
					if err := d.Quiesce(ctx); err != nil {
						b.Fatal(err)
					}
					err := copyTree(d.cfg.DataDir, dest, d.ExcludeFromCopy())
					if terr := d.Thaw(ctx); err == nil {
						err = terr
					}
					if err != nil {
						b.Fatal(err)
					}
					stun += time.Since(start)
				} else {
					_, err := d.OnlineBackup(ctx, dest, func(ctx context.Context, exclude []string) error {
						return copyTree(d.cfg.DataDir, dest, exclude)
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				total += time.Since(start)
				maxCommit = max(maxCommit, time.Duration(w.maxLatency.Load()))
			}
			n := float64(b.N)
			b.ReportMetric(float64(stun.Microseconds())/n/1000, "stun-ms/op")
			b.ReportMetric(float64(total.Microseconds())/n/1000, "total-ms/op")
			b.ReportMetric(float64(maxCommit.Microseconds())/1000, "max-commit-ms")
		})
	}
}
