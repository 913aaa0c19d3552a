package postgresql_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/postgresql"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/drivertest"
)

// TestConformance runs the shared driver suite against real PostgreSQL
// servers, one fresh data directory per subtest.
func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) drivertest.Workload {
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
			Reopen: func() (agent.Driver, error) { return postgresql.New(d.Config()) },
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
	})
}
