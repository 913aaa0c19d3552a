package testworkload_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload/testworkloadtest"
)

// instance is one node's view of the workload: a node-local state directory and
// the shared data directory.
type instance struct {
	bin, node, data, state string
	env                    []string
}

func newInstance(t *testing.T, node, data string) *instance {
	t.Helper()
	in := &instance{bin: testworkloadtest.Build(t), node: node, data: data, state: filepath.Join(t.TempDir(), "state")}
	in.env = append(os.Environ(),
		"CLUSTERGUARD_NODE="+node,
		"CLUSTERGUARD_WORKLOAD=web",
		"CLUSTERGUARD_PATHS="+data+":/unused/second/path",
		"CLUSTERGUARD_STATE_DIR="+in.state,
		"CLUSTERGUARD_TESTWORKLOAD_INTERVAL=2ms",
		"CLUSTERGUARD_TESTWORKLOAD_FLUSH_EVERY=25",
	)
	t.Cleanup(func() { in.run(t, "stop") })
	return in
}

// run executes a subcommand and returns its exit code and combined output.
func (in *instance) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(in.bin, args...)
	cmd.Env = in.env
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), string(out)
	default:
		t.Fatalf("run %v: %v", args, err)
		return -1, ""
	}
}

func (in *instance) must(t *testing.T, want int, args ...string) string {
	t.Helper()
	code, out := in.run(t, args...)
	if code != want {
		t.Fatalf("%s %v exited %d, want %d:\n%s", in.node, args, code, want, out)
	}
	return out
}

func (in *instance) status(t *testing.T) testworkload.Status {
	t.Helper()
	st, err := testworkload.ReadStatus(in.state)
	if err != nil {
		t.Fatalf("read status of %s: %v", in.node, err)
	}
	return st
}

// waitStatus polls status.json until cond holds.
func (in *instance) waitStatus(t *testing.T, what string, cond func(testworkload.Status) bool) testworkload.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := testworkload.ReadStatus(in.state)
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out waiting for %s; last status %+v (err %v)", in.node, what, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkContiguous asserts records.log holds seq 1..n exactly once each, in order.
func checkContiguous(t *testing.T, data string) []testworkload.Record {
	t.Helper()
	recs, err := testworkload.ReadRecords(data)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has seq %d; records must be contiguous from 1 (no loss, no duplicates)", i, r.Seq)
		}
	}
	return recs
}

func TestLifecycleQuiesceFlushesPendingRecords(t *testing.T) {
	data := filepath.Join(t.TempDir(), "apps", "web")
	in := newInstance(t, "node-1", data)

	in.must(t, 3, "status")
	in.must(t, 0, "quiesce") // not running: nothing to flush, not an error
	in.must(t, 0, "start")
	first := in.status(t).PID
	in.must(t, 0, "status")
	if out := in.must(t, 0, "start"); !strings.Contains(out, "already running") {
		t.Errorf("second start should find it running:\n%s", out)
	}
	if pid := in.status(t).PID; pid != first {
		t.Errorf("second start replaced pid %d with %d", first, pid)
	}

	// Records pile up in memory between flushes.
	in.waitStatus(t, "pending records", func(s testworkload.Status) bool { return s.Generated > s.Flushed && s.Flushed > 0 })

	out := in.must(t, 0, "quiesce")
	ack, quiesced, err := testworkload.ReadQuiesceAck(in.state)
	if err != nil || !quiesced {
		t.Fatalf("no quiesce ack after quiesce (%v):\n%s", err, out)
	}
	st := in.status(t)
	if !st.Quiesced || st.Generated != ack || st.Flushed != ack {
		t.Fatalf("after quiesce status = %+v, ack = %d; want everything generated flushed", st, ack)
	}
	recs := checkContiguous(t, data)
	if got := recs[len(recs)-1].Seq; got != ack {
		t.Fatalf("records.log ends at seq %d, ack says %d", got, ack)
	}
	if r := recs[0]; r.Node != "node-1" || r.Workload != "web" || r.At.IsZero() {
		t.Errorf("record = %+v", r)
	}
	in.must(t, 0, "quiesce") // idempotent

	in.must(t, 0, "thaw")
	if _, q, _ := testworkload.ReadQuiesceAck(in.state); q {
		t.Fatal("ack still present after thaw")
	}
	in.waitStatus(t, "generation to resume", func(s testworkload.Status) bool { return !s.Quiesced && s.Generated > ack })

	in.must(t, 0, "stop")
	in.must(t, 3, "status")
	if testworkload.IsRunProcess(first) {
		t.Errorf("pid %d still running after stop", first)
	}
	// SIGTERM flushes: nothing generated is lost.
	st = in.status(t)
	recs = checkContiguous(t, data)
	if got := recs[len(recs)-1].Seq; got != st.Generated || st.Flushed != st.Generated {
		t.Fatalf("after stop records end at %d, status %+v; want all generated records flushed", got, st)
	}
	in.must(t, 0, "stop") // idempotent
}

func TestSequenceContinuesOnAnotherNode(t *testing.T) {
	data := filepath.Join(t.TempDir(), "apps", "web")
	a := newInstance(t, "node-a", data)
	b := newInstance(t, "node-b", data)

	a.must(t, 0, "start")
	a.waitStatus(t, "a flush", func(s testworkload.Status) bool { return s.Flushed >= 30 })
	a.must(t, 0, "stop")
	last := a.status(t).Flushed

	b.must(t, 3, "status") // node-local state: b does not see a's process
	b.must(t, 0, "start")
	b.waitStatus(t, "b flush", func(s testworkload.Status) bool { return s.Flushed > last })
	b.must(t, 0, "stop")

	recs := checkContiguous(t, data)
	for _, r := range recs {
		wantNode := "node-a"
		if r.Seq > last {
			wantNode = "node-b"
		}
		if r.Node != wantNode {
			t.Fatalf("seq %d written by %s, want %s", r.Seq, r.Node, wantNode)
		}
	}
}

func TestStatusIgnoresForeignProcess(t *testing.T) {
	in := newInstance(t, "node-1", t.TempDir())
	if err := os.MkdirAll(in.state, 0o755); err != nil {
		t.Fatal(err)
	}
	// A live pid that is not the workload (this test process) must not count as running.
	if err := os.WriteFile(filepath.Join(in.state, testworkload.PIDFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	in.must(t, 3, "status")
	in.must(t, 0, "stop") // must not signal the foreign process
	if _, err := os.Stat(filepath.Join(in.state, testworkload.PIDFile)); !os.IsNotExist(err) {
		t.Errorf("stop left the stale pidfile (err %v)", err)
	}
}

func TestStartReportsAWorkloadThatCannotRun(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	in := newInstance(t, "node-1", filepath.Join(notADir, "data"))
	out := in.must(t, 1, "start")
	if !strings.Contains(out, "exited at once") || !strings.Contains(out, "create data directory") {
		t.Errorf("start output does not explain the failure:\n%s", out)
	}
	in.must(t, 3, "status")
}

func TestUsageErrors(t *testing.T) {
	in := newInstance(t, "node-1", t.TempDir())
	for _, args := range [][]string{{}, {"dance"}, {"start", "--interval", "0s"}} {
		if code, out := in.run(t, args...); code != 2 {
			t.Errorf("%v exited %d, want 2:\n%s", args, code, out)
		}
	}
	cmd := exec.Command(in.bin, "status")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if exitErr := (*exec.ExitError)(nil); !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 || !strings.Contains(string(out), "CLUSTERGUARD_STATE_DIR") {
		t.Errorf("status without a state dir: %v\n%s", err, out)
	}
}

func TestParseRecord(t *testing.T) {
	r, err := testworkload.ParseRecord("seq=42 node=n1 workload=web at=2024-05-01T10:00:00.123456789Z")
	if err != nil || r.Seq != 42 || r.Node != "n1" || r.Workload != "web" || r.At.Nanosecond() != 123456789 {
		t.Fatalf("got %+v, %v", r, err)
	}
	for _, bad := range []string{"", "seq=x node=a workload=b at=2024-05-01T10:00:00Z", "seq=1 node=a workload=b", "seq=1 node=a workload=b when=now"} {
		if _, err := testworkload.ParseRecord(bad); err == nil {
			t.Errorf("ParseRecord(%q) accepted", bad)
		}
	}
}

func ExampleParseRecord() {
	r, _ := testworkload.ParseRecord("seq=7 node=node-2 workload=db at=2024-05-01T10:00:00Z")
	fmt.Println(r.Seq, r.Node, r.Workload)
	// Output: 7 node-2 db
}
