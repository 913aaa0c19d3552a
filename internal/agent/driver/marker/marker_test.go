package marker

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestRecoverThawsOnlyWhatWasRecorded(t *testing.T) {
	m := New(t.TempDir(), "quiesced")
	calls := 0
	thaw := func(context.Context) error { calls++; return nil }
	log := slog.New(slog.DiscardHandler)
	if err := m.Recover(log, time.Second, "quiesced", thaw); err != nil || calls != 0 {
		t.Fatalf("without a marker: err %v, %d thaws; want none", err, calls)
	}
	if err := m.Set("pid 1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Recover(log, time.Second, "quiesced", thaw); err != nil || calls != 1 || m.IsSet() {
		t.Fatalf("with a marker: err %v, %d thaws, still set %v; want one thaw and the marker gone", err, calls, m.IsSet())
	}
}

func TestRecoverKeepsTheMarkerWhenThawFails(t *testing.T) {
	m := New(t.TempDir(), "quiesced")
	if err := m.Set(""); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := m.Recover(slog.New(slog.DiscardHandler), time.Second, "quiesced", func(context.Context) error { return boom })
	if !errors.Is(err, boom) || !m.IsSet() {
		t.Fatalf("failed thaw: err %v, marker set %v; want the thaw error and the marker kept for the next try", err, m.IsSet())
	}
	if err := m.Clear(); err != nil || m.IsSet() {
		t.Fatalf("Clear: %v", err)
	}
	if err := m.Clear(); err != nil {
		t.Fatalf("Clear of an absent marker: %v", err)
	}
}
