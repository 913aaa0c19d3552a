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

func TestDescendants(t *testing.T) {
	// sh runs sleep as its child: both are descendants of this process.
	cmd := exec.Command("sh", "-c", "sleep 60 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var grandchild int
	if !WaitUntil(context.Background(), 10*time.Second, func() bool {
		for _, p := range Descendants(os.Getpid()) {
			if Parent(p) == cmd.Process.Pid && len(Args(p)) > 0 && Args(p)[0] == "sleep" {
				grandchild = p
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no sleep grandchild among %v", Descendants(os.Getpid()))
	}
	d := Descendants(os.Getpid())
	if i, j := slices.Index(d, cmd.Process.Pid), slices.Index(d, grandchild); i < 0 || j < i {
		t.Fatalf("descendants %v: want the shell %d before its child %d", d, cmd.Process.Pid, grandchild)
	}
	_ = syscall.Kill(grandchild, syscall.SIGKILL)
}
