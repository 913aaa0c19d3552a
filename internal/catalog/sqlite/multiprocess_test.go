package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlite"
)

// The multi-process test re-executes this test binary; these variables
// select the helper mode and pass its arguments.
const (
	envHelper     = "CLUSTERGUARD_CATALOG_TEST_HELPER"
	envPath       = "CLUSTERGUARD_CATALOG_TEST_PATH"
	envID         = "CLUSTERGUARD_CATALOG_TEST_ID"
	envIterations = "CLUSTERGUARD_CATALOG_TEST_ITERATIONS"
)

func TestMain(m *testing.M) {
	if os.Getenv(envHelper) == "hammer" {
		if err := hammer(); err != nil {
			fmt.Fprintf(os.Stdout, "error %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestMultiProcess runs two OS processes against one fresh catalog file at
// the same time: both migrate it, then write clusters, race for one lease,
// race to create one run, and race to add each step of it. Neither may see
// "database is locked", the file must pass SQLite's integrity check, every
// epoch granted must be unique, and the run and each of its steps must be
// written by exactly one process.
func TestMultiProcess(t *testing.T) {
	const processes, iterations = 2, 150
	path := filepath.Join(t.TempDir(), "shared", "catalog.db") // not yet created: both processes race to create and migrate it
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	type proc struct {
		cmd            *exec.Cmd
		stdin          io.WriteCloser
		stdout, stderr bytes.Buffer
	}
	procs := make([]*proc, processes)
	for i := range procs {
		p := &proc{cmd: exec.CommandContext(ctx, exe)}
		p.cmd.Env = append(os.Environ(),
			envHelper+"=hammer", envPath+"="+path, envID+"="+strconv.Itoa(i), envIterations+"="+strconv.Itoa(iterations))
		p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start helper %d: %v", i, err)
		}
		procs[i] = p
	}
	// Both helpers block reading stdin; closing it starts them together.
	for _, p := range procs {
		p.stdin.Close()
	}
	var grants, conflicts, runsCreated int
	allEpochs := map[int64]int{}
	stepWriter := map[int]int{} // seq -> helper
	for i, p := range procs {
		err := p.cmd.Wait()
		out := p.stdout.String() + p.stderr.String()
		if strings.Contains(out, "database is locked") || strings.Contains(out, "SQLITE_BUSY") {
			t.Errorf("helper %d hit a lock error:\n%s", i, out)
		}
		if err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, out)
		}
		var last int64
		done := false
		sc := bufio.NewScanner(&p.stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 2 && f[0] == "epoch":
				e, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					t.Fatalf("helper %d: bad line %q", i, sc.Text())
				}
				if e <= last {
					t.Errorf("helper %d: epoch %d after %d, want strictly increasing", i, e, last)
				}
				last = e
				if prev, dup := allEpochs[e]; dup {
					t.Errorf("epoch %d granted to helper %d and helper %d", e, prev, i)
				}
				allEpochs[e] = i
				grants++
			case len(f) == 2 && f[0] == "step":
				seq, err := strconv.Atoi(f[1])
				if err != nil {
					t.Fatalf("helper %d: bad line %q", i, sc.Text())
				}
				if prev, dup := stepWriter[seq]; dup {
					t.Errorf("step %d of the shared run was added by helper %d and helper %d", seq, prev, i)
				}
				stepWriter[seq] = i
			case len(f) == 1 && f[0] == "created-run":
				runsCreated++
			case len(f) == 2 && f[0] == "conflicts":
				n, _ := strconv.Atoi(f[1])
				conflicts += n
			case len(f) == 1 && f[0] == "done":
				done = true
			}
		}
		if !done {
			t.Errorf("helper %d did not finish its %d iterations:\n%s", i, iterations, out)
		}
	}
	t.Logf("%d processes x %d iterations: %d lease grants, %d conflicts", processes, iterations, grants, conflicts)
	if grants == 0 {
		t.Fatal("no lease was granted")
	}

	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("open after the helpers: %v", err)
	}
	defer s.Close()
	if err := s.IntegrityCheck(context.Background()); err != nil {
		t.Errorf("integrity check: %v", err)
	}
	// Epochs were handed out without gaps: a loser never consumed one.
	for e := int64(1); e <= int64(grants); e++ {
		if _, ok := allEpochs[e]; !ok {
			t.Errorf("epoch %d was never reported, but %d grants were", e, grants)
		}
	}
	next, err := s.AcquireLease(context.Background(), "shared", "after", "test", time.Minute, time.Now())
	if err != nil {
		t.Fatalf("AcquireLease after the helpers: %v", err)
	}
	if next.Epoch != int64(grants)+1 {
		t.Errorf("next epoch = %d, want %d", next.Epoch, grants+1)
	}
	all, err := s.ListClusters(context.Background())
	if err != nil {
		t.Fatalf("ListClusters: %v", err)
	}
	if want := processes*iterations + 1; len(all) != want {
		t.Errorf("ListClusters found %d clusters, want %d", len(all), want)
	}
	for _, c := range all {
		if err := checkHammerCluster(c); err != nil {
			t.Errorf("cluster %q is inconsistent: %v", c.Name, err)
		}
	}

	if runsCreated != 1 {
		t.Errorf("the shared run was created by %d helpers, want exactly 1", runsCreated)
	}
	steps, err := s.Steps(context.Background(), "shared-run")
	if err != nil {
		t.Fatalf("Steps(shared-run): %v", err)
	}
	if len(steps) != iterations || len(stepWriter) != iterations {
		t.Errorf("shared run has %d steps and helpers reported %d, want %d of each", len(steps), len(stepWriter), iterations)
	}
	for i, st := range steps {
		if st.Seq != i+1 {
			t.Errorf("step %d has seq %d, want %d", i, st.Seq, i+1)
			continue
		}
		if want := fmt.Sprintf("helper %d", stepWriter[st.Seq]); st.Error != want {
			t.Errorf("step %d was stored by %q, but %q reported adding it", st.Seq, st.Error, want)
		}
	}
}

// hammer is the helper process: it waits for stdin to close, opens the
// catalog, tries to create the shared run, and for each iteration writes its
// own cluster, overwrites the shared one, reads both back, tries to add step
// i+1 to the shared run, and takes and releases the shared lease. It prints
// "created-run" if its CreateRun won, "step N" per step it added, "epoch N"
// per grant, "conflicts N" and "done".
func hammer() error {
	path, id := os.Getenv(envPath), os.Getenv(envID)
	iterations, err := strconv.Atoi(os.Getenv(envIterations))
	if err != nil {
		return fmt.Errorf("bad %s: %v", envIterations, err)
	}
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		return fmt.Errorf("wait for start: %v", err)
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	run := catalog.Run{ID: "shared-run", Group: "hammer", Status: catalog.RunRunning, StartedAt: time.Unix(1, 0), Master: "helper " + id}
	switch err := s.CreateRun(ctx, run); {
	case err == nil:
		fmt.Println("created-run")
	case !errors.Is(err, catalog.ErrConflict):
		return err
	}
	conflicts := 0
	for i := 0; i < iterations; i++ {
		own := hammerCluster(fmt.Sprintf("p%s-%04d", id, i), id, i)
		shared := hammerCluster("shared", id, i)
		if err := s.PutCluster(ctx, own); err != nil {
			return err
		}
		if err := s.PutCluster(ctx, shared); err != nil {
			return err
		}
		got, err := s.GetCluster(ctx, own.Name)
		if err != nil {
			return err
		}
		if err := checkHammerCluster(got); err != nil {
			return fmt.Errorf("read back %s: %v", own.Name, err)
		}
		got, err = s.GetCluster(ctx, "shared")
		if err != nil {
			return err
		}
		if err := checkHammerCluster(got); err != nil {
			return fmt.Errorf("read back shared: %v", err)
		}
		step := catalog.Step{RunID: "shared-run", Seq: i + 1, Outcome: catalog.StepSucceeded, Error: "helper " + id}
		switch err := s.AddStep(ctx, step); {
		case err == nil:
			fmt.Printf("step %d\n", step.Seq)
		case !errors.Is(err, catalog.ErrConflict):
			return fmt.Errorf("add step %d: %v", step.Seq, err)
		}
		l, err := s.AcquireLease(ctx, "shared", "node-"+id, "helper-"+id, time.Hour, time.Now())
		if errors.Is(err, catalog.ErrConflict) {
			conflicts++
			continue
		}
		if err != nil {
			return err
		}
		fmt.Printf("epoch %d\n", l.Epoch)
		if err := s.ReleaseLease(ctx, "shared", l.Epoch); err != nil {
			return fmt.Errorf("release my own lease: %v", err)
		}
	}
	fmt.Printf("conflicts %d\ndone\n", conflicts)
	return nil
}

// hammerCluster builds a cluster whose every field encodes (writer, iteration),
// with a node count that varies, so a torn or mixed write is detectable.
func hammerCluster(name, writer string, iteration int) catalog.Cluster {
	tag := writer + "/" + strconv.Itoa(iteration)
	c := catalog.Cluster{Name: name, SharedVolume: tag, SharedVolumeID: tag, MasterPolicy: "random", JoinOrder: "parallel",
		CreatedAt: time.Unix(0, int64(iteration)), UpdatedAt: time.Unix(0, int64(iteration))}
	for n := 0; n < 1+iteration%4; n++ {
		c.Nodes = append(c.Nodes, catalog.Node{Name: fmt.Sprintf("n%d", n), Endpoint: tag, Position: n})
	}
	return c
}

func checkHammerCluster(c catalog.Cluster) error {
	i := strings.LastIndexByte(c.SharedVolume, '/')
	iteration, err := strconv.Atoi(c.SharedVolume[i+1:])
	if err != nil {
		return fmt.Errorf("shared volume %q is not writer/iteration", c.SharedVolume)
	}
	want := hammerCluster(c.Name, c.SharedVolume[:i], iteration)
	if c.SharedVolumeID != want.SharedVolumeID || !c.UpdatedAt.Equal(want.UpdatedAt) || len(c.Nodes) != len(want.Nodes) {
		return fmt.Errorf("got %+v, want %+v", c, want)
	}
	for n := range want.Nodes {
		if c.Nodes[n] != want.Nodes[n] {
			return fmt.Errorf("node %d = %+v, want %+v", n, c.Nodes[n], want.Nodes[n])
		}
	}
	return nil
}
