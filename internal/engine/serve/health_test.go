package serve

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/daemon"
)

// /health is 200 only while the scheduler ticked within five ticks (at
// least five seconds): a scheduler that never ticked or stopped ticking
// (catalog unreachable, goroutine stuck) answers 503 with the reason.
func TestHealthStatusFollowsTheLastTick(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		lastTick time.Time
		want     int
	}{
		{"never ticked", time.Time{}, http.StatusServiceUnavailable},
		{"ticked just now", now.Add(-time.Second), http.StatusOK},
		{"ticked 4s ago", now.Add(-4 * time.Second), http.StatusOK},
		{"stopped ticking", now.Add(-6 * time.Second), http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &handler{now: func() time.Time { return now }, gatherer: prometheus.NewRegistry(), logger: discard(),
				health: func() Health { return healthOf(daemon.Health{ID: "d", LastTick: tc.lastTick}, "v", time.Second, now) }}
			rec := httptest.NewRecorder()
			newHandler(h, prometheus.NewRegistry()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
			if rec.Code != tc.want {
				t.Fatalf("/health = %d %s, want %d", rec.Code, rec.Body, tc.want)
			}
		})
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
