package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
)

// A second agent on the same state directory would thaw what the first one
// quiesced for a copy: it refuses to start and names the first one's pid.
func TestSecondAgentOnTheStateDirIsRefused(t *testing.T) {
	e := newAgentEnv(t)
	cfg := e.config(t, "", script{name: "web", status: "exit 0"})
	_, stop := runAgent(t, cfg, Options{})
	defer stop() //nolint:errcheck // the agent's own error is checked below

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func(a string) { ready <- a }})
	}()
	select {
	case addr := <-ready:
		cancel()
		<-done
		t.Fatalf("a second agent started on the same state directory (listening on %s)", addr)
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "in use by the agent with pid "+strconv.Itoa(os.Getpid())) {
			t.Fatalf("second agent: %v, want a refusal naming pid %d", err, os.Getpid())
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("first agent: %v", err)
	}
}
