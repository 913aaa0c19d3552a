package postgresql

import (
	"context"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
)

// A copy taken while the server is quiesced holds every committed row, and
// a server started on the copy recovers it; rows written after the thaw are
// not in it.
func TestQuiescedCopyRecovers(t *testing.T) {
	d := newTestDriver(t, initDataDir(t))
	ctx := context.Background()
	mustDo(t, "start", d.Start)
	query(t, d, "CREATE TABLE items (n int); INSERT INTO items SELECT generate_series(1, 1000)")
	mustDo(t, "quiesce", d.Quiesce)
	pid, _ := d.recordedPID()
	if state := proc.State(pid); state != "T" {
		t.Fatalf("postmaster state while quiesced = %q, want T (stopped)", state)
	}
	copyDir := filepath.Join(scratchDir(t), "data")
	if out, err := osexec.Command("cp", "-a", d.cfg.DataDir, copyDir).CombinedOutput(); err != nil {
		t.Fatalf("copy the frozen data directory: %v\n%s", err, out)
	}
	mustDo(t, "thaw", d.Thaw)
	if state := proc.State(pid); state == "T" {
		t.Fatal("postmaster still stopped after thaw")
	}
	query(t, d, "INSERT INTO items SELECT generate_series(1001, 1500)")
	mustDo(t, "stop", d.Stop)
	if _, err := os.Stat(filepath.Join(d.cfg.StateDir, pidRecord)); !os.IsNotExist(err) {
		t.Fatalf("the pid record outlived Stop: %v", err)
	}

	// The copy carries postmaster.pid of a server that is gone, as after a
	// power cut; PostgreSQL recovers.
	restored := newTestDriver(t, copyDir)
	if err := restored.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query(t, restored, "SELECT count(*), max(n) FROM items"); got != "1000|1000" {
		t.Fatalf("the server on the quiesced copy has %q rows, want 1000|1000", got)
	}
}

// A server that dies on its own is failed, not inactive: nobody stopped it.
func TestStatusFailedWhenServerDies(t *testing.T) {
	d := newTestDriver(t, initDataDir(t))
	mustDo(t, "start", d.Start)
	pid, _ := d.recordedPID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.isOurPostmaster(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling for the process to go
	}
	state, err := d.Status(context.Background())
	if state != api.StateFailed || err == nil || !strings.Contains(err.Error(), "exited without being stopped") {
		t.Fatalf("status after the postmaster was killed = %q, %v; want failed with a reason", state, err)
	}
	mustDo(t, "stop", d.Stop) // clears the record
	if state, err := d.Status(context.Background()); state != api.StateInactive || err != nil {
		t.Fatalf("status after Stop = %q, %v; want inactive", state, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Workload: "db", DataDir: "rel/data", Port: 5432}, "absolute path"},
		{Config{Workload: "db", DataDir: "/vol/db", Port: 0}, "not a TCP port"},
		{Config{Workload: "db", DataDir: "/vol/db", Port: 5432, BinDir: "/nonexistent"}, "not found in bin_dir"},
		{Config{Workload: "db", DataDir: "/vol/db", Port: 5432, User: "no-such-user-here"}, "no-such-user-here"},
		{Config{Workload: "db", DataDir: "/vol/db", Port: 5432, User: "root"}, "refuses to run as root"},
	} {
		tc.cfg.StateDir = t.TempDir()
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func newTestDriver(t testing.TB, dataDir string) *Driver {
	t.Helper()
	if FindBinDir() == "" {
		t.Fatal("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin or on PATH: install the postgresql package (.ci/run does)")
	}
	d, err := New(Config{Workload: "db", DataDir: dataDir, Port: freePort(t), ListenAddresses: "127.0.0.1",
		StateDir: filepath.Join(scratchDir(t), "state"), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

// initDataDir creates a fresh cluster owned by the server's user.
func initDataDir(t testing.TB) string {
	t.Helper()
	data := filepath.Join(scratchDir(t), "data")
	d := newTestDriver(t, data)
	if err := d.InitDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	return data
}

// scratchDir is a temporary directory the server's user can reach (t.TempDir
// is 0700 under a root-owned parent).
func scratchDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cg-pgdrv-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func query(t testing.TB, d *Driver, sql string) string {
	t.Helper()
	out, err := d.run(context.Background(), filepath.Join(d.cfg.BinDir, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
		"-h", d.socketDir(), "-p", strconv.Itoa(d.cfg.Port), "-U", "postgres", "-d", "postgres", "-c", sql)
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

func mustDo(t *testing.T, what string, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// An agent that dies while the server is frozen leaves it frozen; the next
// agent continues it when it builds the driver.
func TestAgentRestartContinuesAFrozenServer(t *testing.T) {
	d := newTestDriver(t, initDataDir(t))
	mustDo(t, "start", d.Start)
	mustDo(t, "quiesce", d.Quiesce)
	pid, _ := d.recordedPID()
	if !proc.Stopped(pid) {
		t.Fatalf("postmaster state while quiesced = %q", proc.State(pid))
	}
	// A new driver on the same state directory: what a restarted agent builds.
	again, err := New(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(proc.Children(pid), pid) {
		if proc.Stopped(p) {
			t.Fatalf("process %d of the server still stopped after the agent restarted", p)
		}
	}
	if got := query(t, again, "SELECT 1"); got != "1" {
		t.Fatalf("server answers %q after the restart", got)
	}
	if again.frozenMarker().IsSet() {
		t.Fatalf("the frozen marker %s survived", again.frozenMarker().Path())
	}
}

// A server another node started is never second-guessed: its lock may name
// a process on another machine. The node that started it adopts it (after
// losing its pid record), and a clean stop leaves no lock behind.
func TestLockOfAnotherNodeIsRefused(t *testing.T) {
	data := initDataDir(t)
	a := newTestDriver(t, data)
	a.cfg.Node = "node-a"
	mustDo(t, "start on node-a", a.Start)
	pid, _ := a.recordedPID()

	b := newTestDriver(t, data)
	b.cfg.Node = "node-b"
	err := b.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "node node-a started") {
		t.Fatalf("start on node-b while node-a runs the server: %v, want a refusal naming node-a", err)
	}
	if !a.isOurPostmaster(pid) {
		t.Fatal("node-a's server is gone after node-b's refused start")
	}

	// node-a's agent lost its state directory: it adopts its own server.
	a2 := newTestDriver(t, data)
	a2.cfg.Node, a2.cfg.Port = "node-a", a.cfg.Port
	mustDo(t, "start on node-a again", a2.Start)
	if got, _ := a2.recordedPID(); got != pid {
		t.Fatalf("node-a adopted pid %d, want its running server %d", got, pid)
	}

	mustDo(t, "stop on node-a", a2.Stop)
	for _, f := range []string{"postmaster.pid", ownerRecord} {
		if _, err := os.Stat(filepath.Join(data, f)); !os.IsNotExist(err) {
			t.Errorf("%s left after a clean stop: %v", f, err)
		}
	}
	mustDo(t, "start on node-b after node-a stopped", b.Start)
	if got := query(t, b, "SELECT 1"); got != "1" {
		t.Fatalf("node-b's server answers %q", got)
	}
	ex := b.ExcludeFromCopy()
	if len(ex) == 0 || ex[0] != filepath.Join(data, "postmaster.pid") {
		t.Fatalf("ExcludeFromCopy = %v, want postmaster.pid first", ex)
	}
}
