package agent

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// manualNow is a server clock the test moves by hand.
type manualNow struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualNow) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualNow) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func getWorkload(t *testing.T, s *testServer, name string) api.Workload {
	t.Helper()
	var w api.Workload
	if code := call(t, nil, "GET", s.url+"/v1/workloads/"+name, testToken, &w); code != http.StatusOK {
		t.Fatalf("GET workload %s = %d", name, code)
	}
	return w
}

// A stop command that exits 0 but leaves the workload running (no stop
// command, or an asynchronous one) does not give the lease away: another
// node could start the workload while it still runs here.
func TestStopThatLeavesTheWorkloadRunningKeepsTheLease(t *testing.T) {
	e := newAgentEnv(t)
	w := fileWorkload("web")
	w.stop = "true" // returns success, stops nothing
	s := startServer(t, e.config(t, "", w), nil)
	if code := call(t, nil, "POST", s.url+"/v1/workloads/web/start", testToken, nil); code != http.StatusOK {
		t.Fatalf("start = %d", code)
	}
	var apiErr api.Error
	code := call(t, nil, "POST", s.url+"/v1/workloads/web/stop", testToken, &apiErr)
	if code == http.StatusOK || !strings.Contains(apiErr.Message, "stop returned but the workload is still active; the lease is kept") {
		t.Fatalf("stop that stopped nothing = %d %+v, want a failure saying the lease is kept", code, apiErr)
	}
	rec, ok, err := ReadOwnerRecord(e.volume, "web")
	if err != nil || !ok || rec.Released || rec.Node != "node-1" || !s.owners.Holds("web") {
		t.Fatalf("after a stop that stopped nothing: record %+v (found %v, %v), held %v; want the lease kept", rec, ok, err, s.owners.Holds("web"))
	}
	// Once it really stopped, a stop releases the lease.
	if err := os.Remove(filepath.Join(e.scratch, "web.running")); err != nil {
		t.Fatal(err)
	}
	if code := call(t, nil, "POST", s.url+"/v1/workloads/web/stop", testToken, nil); code != http.StatusOK {
		t.Fatalf("stop of a stopped workload = %d", code)
	}
	if rec, _, _ := ReadOwnerRecord(e.volume, "web"); !rec.Released {
		t.Fatalf("after a real stop the record is %+v, want released", rec)
	}
}

// A start that fails while the workload's state is failed (or unknown)
// keeps the lease: it may run after all. Probes release it only once they
// see the workload inactive twice, a renewal interval apart, with no other
// state in between.
func TestFailedStartKeepsTheLeaseUntilSeenInactiveTwice(t *testing.T) {
	e := newAgentEnv(t)
	failed := "{{s}}/web.failed"
	w := fileWorkload("web")
	w.status = "[ -f " + failed + " ] && exit 1; " + w.status
	w.start = "touch " + failed + "; exit 1"
	clock := &manualNow{t: time.Now()}
	s := startServer(t, e.config(t, "", w), clock.now)
	renew := s.owners.cfg.RenewInterval

	if code := call(t, nil, "POST", s.url+"/v1/workloads/web/start", testToken, nil); code == http.StatusOK {
		t.Fatal("a failing start command succeeded")
	}
	if rec, ok, _ := ReadOwnerRecord(e.volume, "web"); !ok || rec.Released || !s.owners.Holds("web") {
		t.Fatalf("after a failed start in state failed: record %+v, held %v; want the lease kept", rec, s.owners.Holds("web"))
	}
	if got := getWorkload(t, s, "web"); got.State != api.StateFailed || !s.owners.Holds("web") {
		t.Fatalf("probe: %s, held %v; want failed and the lease kept", got.State, s.owners.Holds("web"))
	}

	// It now looks inactive: once is not enough, even much later.
	if err := os.Remove(filepath.Join(e.scratch, "web.failed")); err != nil {
		t.Fatal(err)
	}
	if got := getWorkload(t, s, "web"); got.State != api.StateInactive || !s.owners.Holds("web") {
		t.Fatalf("first inactive probe: %s, held %v; want the lease kept", got.State, s.owners.Holds("web"))
	}
	// Active in between (a slow start) starts the count again.
	clock.add(renew)
	writeFile(t, filepath.Join(e.scratch, "web.running"), "")
	if got := getWorkload(t, s, "web"); got.State != api.StateActive {
		t.Fatalf("probe: %s, want active", got.State)
	}
	if err := os.Remove(filepath.Join(e.scratch, "web.running")); err != nil {
		t.Fatal(err)
	}
	if getWorkload(t, s, "web"); !s.owners.Holds("web") {
		t.Fatal("released on the first inactive probe after an active one")
	}
	clock.add(renew - time.Millisecond)
	if getWorkload(t, s, "web"); !s.owners.Holds("web") {
		t.Fatal("released on a second inactive probe less than a renewal interval after the first")
	}
	clock.add(time.Millisecond)
	getWorkload(t, s, "web")
	if rec, _, _ := ReadOwnerRecord(e.volume, "web"); s.owners.Holds("web") || !rec.Released {
		t.Fatalf("inactive twice a renewal interval apart: held %v, record %+v; want released", s.owners.Holds("web"), rec)
	}
}

// A workload whose lease was taken over, and whose stop returned without
// stopping it, keeps its claim noted here: a later probe still knows this
// copy ran under an older lease and fences it, instead of taking it for a
// copy started by hand.
func TestLostLeaseStopThatLeavesTheWorkloadRunningKeepsTheClaim(t *testing.T) {
	e := newAgentEnv(t)
	w := fileWorkload("web")
	w.stop = "true" // returns success, stops nothing
	s := startServer(t, e.config(t, "", w), nil)
	if code := call(t, nil, "POST", s.url+"/v1/workloads/web/start", testToken, nil); code != http.StatusOK {
		t.Fatalf("start = %d", code)
	}
	rec, _, _ := ReadOwnerRecord(e.volume, "web")
	rec.Node, rec.Claim, rec.Generation = "node-2", "takeover", rec.Generation+1
	if err := s.owners.write(rec); err != nil {
		t.Fatal(err)
	}
	s.owners.RenewAll() // sees the takeover and stops the workload here
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.logs.String(), "still runs here after losing its ownership lease") {
		if time.Now().After(deadline) {
			t.Fatalf("no report of a workload still running after losing its lease; logs:\n%s", s.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := s.owners.LastOwnClaim("web"); !ok {
		t.Fatal("the claim noted here was forgotten although the workload still runs here")
	}
}
