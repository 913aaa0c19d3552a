package proc

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestProcessFacts(t *testing.T) {
	self := os.Getpid()
	if !Alive(self) || Parent(self) != os.Getppid() || len(Args(self)) == 0 || Args(self)[0] != os.Args[0] {
		t.Fatalf("self: alive %v parent %d (want %d) args %q", Alive(self), Parent(self), os.Getppid(), Args(self))
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := cmd.Process.Pid
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if !slices.Contains(Children(self), child) || !slices.Equal(Args(child), []string{"sleep", "60"}) {
		t.Fatalf("children of self %v, args of %d %q", Children(self), child, Args(child))
	}
	ctx := context.Background()
	if err := syscall.Kill(child, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if !WaitUntil(ctx, 10*time.Second, func() bool { return Stopped(child) }) {
		t.Fatalf("state after SIGSTOP: %q", State(child))
	}
	_ = syscall.Kill(child, syscall.SIGCONT)
	_ = cmd.Process.Kill()
	// Unreaped, the child is a zombie: not alive, though its pid exists.
	if !WaitUntil(ctx, 10*time.Second, func() bool { return State(child) == "Z" }) || Alive(child) {
		t.Fatalf("killed child: state %q alive %v", State(child), Alive(child))
	}
	_ = cmd.Wait()
	if State(child) != "" || Alive(child) || Args(child) != nil {
		t.Fatalf("reaped child still visible: %q", State(child))
	}
	if WaitUntil(ctx, 20*time.Millisecond, func() bool { return false }) {
		t.Fatal("WaitUntil reported a condition that never held")
	}
}
