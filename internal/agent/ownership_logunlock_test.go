package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// stuckLog blocks every write until released: a log pipe nobody reads.
// (once stuck is set).
type stuckLog struct {
	stuck   atomic.Bool
	release chan struct{}
}

func (s *stuckLog) Write(p []byte) (int, error) {
	if s.stuck.Load() {
		<-s.release
	}
	return len(p), nil
}

// A failed renewal is logged after the leases' lock is released: a log
// that blocks must not block everything that asks about the leases.
func TestRenewalFailureLogDoesNotHoldTheLeases(t *testing.T) {
	vol := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log := &stuckLog{release: make(chan struct{})}
	o := NewOwners("node-1", vol, filepath.Join(vol, "..", "node-1-state"), testLease, clock, slog.New(slog.NewTextHandler(log, nil)), nil)
	if _, err := o.Acquire(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	// The record cannot be read any more: the renewal fails, and is retried.
	p := OwnerRecordPath(vol, "web")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	log.stuck.Store(true)
	renewed := make(chan struct{})
	go func() { o.RenewAll(); close(renewed) }()
	t.Cleanup(func() { close(log.release); <-renewed })
	asked := make(chan bool, 1)
	go func() {
		// Holds takes the leases' lock once the renewal has it.
		for o.renewals.failed.Load() == 0 {
			time.Sleep(time.Millisecond) // polling a counter: no event to wait on
		}
		asked <- o.Holds("web")
	}()
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("Holds blocks while a failed renewal is being logged to a stuck log")
	}
}
