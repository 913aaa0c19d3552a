package postgresql_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/postgresql"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/drivertest"
)

// TestConformance runs the shared driver suite against real PostgreSQL
// servers, one fresh data directory per subtest.
func TestConformance(t *testing.T) {
	drivertest.Run(t, newWorkload)
}

// newWorkload is a fresh, stopped server in a data directory of its own.
func newWorkload(t *testing.T) drivertest.Workload {
	{
		if postgresql.FindBinDir() == "" {
			t.Fatal("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin or on PATH: install the postgresql package (.ci/run does)")
		}
		// Not t.TempDir: the server's user must reach the data directory.
		dir, err := os.MkdirTemp("", "cg-pgconf-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		d, err := postgresql.New(postgresql.Config{Workload: "db", DataDir: filepath.Join(dir, "db", "data"), Port: port,
			ListenAddresses: "127.0.0.1", StateDir: filepath.Join(dir, "state"), Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.InitDB(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Stop(context.Background()) })
		return drivertest.Workload{
			Driver: d,
			Busy: func(t *testing.T) {
				// CPU-bound: a backend running it does not notice its
				// postmaster's death (a sleep would, at its next wait).
				cmd := exec.Command(filepath.Join(d.Config().BinDir, "psql"), "-X", "-q", "-h", d.Config().SocketDir,
					"-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres",
					"-c", "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b")
				cmd.Env = []string{"PATH=/usr/bin:/bin"}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan struct{})
				go func() { _ = cmd.Wait(); close(done) }()
				t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
				// Running once a backend other than the server's own
				// helpers works for it: wait for the query to show.
				if !proc.WaitUntil(context.Background(), 30*time.Second, func() bool {
					return query(d, port, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT count(*) FROM generate_series%' AND state = 'active'") == "1"
				}) {
					t.Fatal("the long query did not start within 30s")
				}
			},
			Processes: func() []int { return inDir(d.WatchdogCwd()) },
			Reopen:    func() (agent.Driver, error) { return postgresql.New(d.Config()) },
			Frozen: func(context.Context) (bool, error) {
				pid, err := d.PID()
				if err != nil || pid == 0 {
					return false, fmt.Errorf("no server recorded: %v", err)
				}
				for _, p := range append(proc.Descendants(pid), pid) {
					if proc.Stopped(p) {
						return true, nil
					}
				}
				return false, nil
			},
		}
	}
}

// query runs sql with psql and returns its output ("" on failure).
func query(d *postgresql.Driver, port int, sql string) string {
	cmd := exec.Command(filepath.Join(d.Config().BinDir, "psql"), "-X", "-q", "-At", "-h", d.Config().SocketDir,
		"-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres", "-c", sql)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// inDir lists the live processes whose working directory is dir.
func inDir(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd == dir && proc.Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Backends orphaned by a postmaster killed on its own keep running in the
// data directory (a CPU-bound query does not notice): the driver reports
// the workload as not inactive while they run, even without a record of
// its server, and Kill removes them.
func TestOrphanedBackendsAreNotInactive(t *testing.T) {
	w := newWorkload(t)
	d := w.Driver.(*postgresql.Driver)
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.Busy(t)
	pid, err := d.PID()
	if err != nil || pid == 0 {
		t.Fatalf("no server recorded: %d %v", pid, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !proc.WaitUntil(ctx, 10*time.Second, func() bool { return !proc.Alive(pid) }) {
		t.Fatal("the postmaster survived SIGKILL")
	}
	// An agent restarted on a state directory without the server's record.
	if err := d.ForgetPID(); err != nil {
		t.Fatal(err)
	}
	if len(w.Processes()) == 0 {
		t.Fatal("no orphaned backend left to test with")
	}
	if st, err := d.Status(ctx); st == api.StateInactive {
		t.Fatalf("Status = %q (%v) while orphaned backends %v run in the data directory", st, err, w.Processes())
	}
	if err := d.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if left := w.Processes(); len(left) > 0 {
		t.Fatalf("processes %v still run in the data directory after Kill", left)
	}
	if st, err := d.Status(ctx); st != api.StateInactive {
		t.Fatalf("Status after Kill = %q (%v); want inactive", st, err)
	}
}
