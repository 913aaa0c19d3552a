package qemu_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/qemu"
)

// Quiesce and Pause stop the virtual CPUs; Thaw and Resume continue them.
func TestQuiesceAndPauseStopTheVCPUs(t *testing.T) {
	d := NewTestVM(t)
	ctx := context.Background()
	do(t, "start", d.Start)
	for _, step := range []struct {
		name string
		f    func(context.Context) error
		want string
	}{{"quiesce", d.Quiesce, "paused"}, {"thaw", d.Thaw, "running"}, {"pause", d.Pause, "paused"}, {"resume", d.Resume, "running"}} {
		do(t, step.name, step.f)
		if got, err := d.RunState(ctx); err != nil || got != step.want {
			t.Fatalf("after %s the VM is %q (%v), want %q", step.name, got, err, step.want)
		}
	}
}

// A VM that dies on its own is failed, not inactive.
func TestStatusFailedWhenVMDies(t *testing.T) {
	d := NewTestVM(t)
	do(t, "start", d.Start)
	pid := vmPID(t, d)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		state, err := d.Status(context.Background())
		if state == api.StateFailed && err != nil && strings.Contains(err.Error(), "exited without being stopped") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after QEMU was killed = %q, %v; want failed with a reason", state, err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the process to go
	}
	do(t, "stop", d.Stop) // clears the record
	if state, err := d.Status(context.Background()); state != api.StateInactive || err != nil {
		t.Fatalf("status after Stop = %q, %v; want inactive", state, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  qemu.Config
		want string
	}{
		{qemu.Config{Workload: "vm", Dir: "rel", Disks: []string{"d.qcow2"}}, "absolute path"},
		{qemu.Config{Workload: "vm", Dir: "/vol/vm"}, "no disks"},
		{qemu.Config{Workload: "vm", Dir: "/vol/vm", Disks: []string{"../other/d.img"}}, "stay inside it"},
		{qemu.Config{Workload: "vm", Dir: "/vol/vm", Disks: []string{"/etc/d.img"}}, "stay inside it"},
		{qemu.Config{Workload: "vm", Dir: "/vol/vm", Disks: []string{"d.img"}, Binary: "no-such-qemu"}, "install QEMU"},
	} {
		tc.cfg.StateDir = t.TempDir()
		if _, err := qemu.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func do(t *testing.T, what string, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func vmPID(t *testing.T, d *qemu.Driver) int {
	t.Helper()
	pid, err := d.PID()
	if err != nil || pid == 0 {
		t.Fatalf("no VM pid: %d, %v", pid, err)
	}
	return pid
}

// An agent that dies while the VM is paused for a backup leaves it paused;
// the next agent continues it when it builds the driver. A VM paused by
// someone else stays paused.
func TestAgentRestartContinuesAVMItPaused(t *testing.T) {
	d := NewTestVM(t)
	ctx := context.Background()
	do(t, "start", d.Start)
	do(t, "quiesce", d.Quiesce)
	again, err := qemu.New(d.Config())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.RunState(ctx); err != nil || got != "running" {
		t.Fatalf("after the agent restarted the VM is %q (%v), want running", got, err)
	}
	// Paused by an operator through QMP, not by the agent: left alone.
	if err := again.QMP(ctx, "stop"); err != nil {
		t.Fatal(err)
	}
	third, err := qemu.New(d.Config())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := third.RunState(ctx); err != nil || got != "paused" {
		t.Fatalf("a VM the operator paused is %q (%v) after an agent restart, want paused", got, err)
	}
}
