package agent

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// slowStart is a driver whose Start waits to be released before it starts
// the workload, and whose forced stop finds nothing to kill until then
// (as QEMU's, before its process was spawned).
type slowStart struct {
	Driver
	entered, release chan struct{}
}

func (d *slowStart) Start(ctx context.Context) error {
	close(d.entered)
	<-d.release
	return d.Driver.Start(ctx)
}

func (d *slowStart) Kill(context.Context) error { return nil }

// The lease is lost while a start holds the workload's lock: the forced
// stop beside it finds nothing yet, and the start then completes. The
// workload must not be left running here without its lease.
func TestLeaseLostDuringAStartDoesNotLeaveTheWorkloadRunning(t *testing.T) {
	e := newAgentEnv(t)
	s := startServer(t, e.config(t, "", fileWorkload("web")), nil)
	wl := s.workloads["web"]
	slow := &slowStart{Driver: wl.driver, entered: make(chan struct{}), release: make(chan struct{})}
	wl.driver = slow
	started := make(chan int, 1)
	go func() { started <- call(t, nil, "POST", s.url+"/v1/workloads/web/start", testToken, nil) }()
	<-slow.entered // the lease is taken, the start holds the lock
	rec, _, _ := ReadOwnerRecord(e.volume, "web")
	rec.Node, rec.Claim, rec.Generation = "node-2", "takeover", rec.Generation+1
	if err := s.owners.write(rec); err != nil {
		t.Fatal(err)
	}
	s.owners.RenewAll() // sees the takeover: forced down beside the start
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.logs.String(), "forcing the workload down without waiting") {
		if time.Now().After(deadline) {
			t.Fatalf("no forced stop beside the start; logs:\n%s", s.logs.String())
		}
		time.Sleep(10 * time.Millisecond) // polling the log: no event to wait on
	}
	close(slow.release)
	if code := <-started; code == http.StatusOK {
		t.Error("the start succeeded although the lease was lost while it ran")
	}
	for {
		st, _ := slow.Driver.Status(context.Background())
		if st == api.StateInactive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the workload still runs here (%s) without its lease; logs:\n%s", st, s.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The forced stop ran in the background: let it end before the test's
	// directories are removed.
	if !s.StopBackground(10 * time.Second) {
		t.Error("the background stop did not end")
	}
}
