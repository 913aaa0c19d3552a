package serve

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// Health is the JSON of GET /health: the scheduler's state as it reports it.
type Health struct {
	ID        string    `json:"id"`
	Version   string    `json:"version"`
	Leader    bool      `json:"leader"`
	Token     int64     `json:"token"`
	Running   int       `json:"running"`
	LastTick  time.Time `json:"last_tick"`
	LastError string    `json:"last_error,omitempty"`
	Healthy   bool      `json:"healthy"`
	Reason    string    `json:"reason,omitempty"`
}

// registrar is what the registration endpoint needs of the catalog.
type registrar interface {
	PutNodeRegistration(ctx context.Context, r catalog.NodeRegistration) error
}

type handler struct {
	health   func() Health
	store    registrar
	token    string // registration token; "" disables registration
	now      func() time.Time
	logger   *slog.Logger
	gatherer prometheus.Gatherer
	regs     *prometheus.CounterVec
}

func newHandler(h *handler, reg prometheus.Registerer) http.Handler {
	h.regs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clusterguard_engine_registrations_total",
		Help: "Agent registrations received, by result (ok, unauthorized, invalid, too_large, failed).",
	}, []string{"result"})
	for _, r := range []string{"ok", "unauthorized", "invalid", "too_large", "failed"} {
		h.regs.WithLabelValues(r) // present at 0 before the first registration
	}
	reg.MustRegister(h.regs)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", h.serveHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(h.logger.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("POST "+api.RegisterPath, h.serveRegister)
	return mux
}

// serveHealth answers 200 while the scheduler ticks, 503 otherwise, so a
// load balancer or systemd watchdog script can act on the status alone.
func (h *handler) serveHealth(w http.ResponseWriter, _ *http.Request) {
	hl := h.health()
	status := http.StatusOK
	if !hl.Healthy {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, hl)
}

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	// Version and volume id are shown to operators; keep them printable.
	printable = regexp.MustCompile(`^[\x21-\x7e]{0,200}$`)
)

const maxWorkloads = 4096

// serveRegister stores what an agent announces about itself. The body is
// capped and strictly decoded: an agent that sends more or other fields
// than it should is refused rather than half-read.
func (h *handler) serveRegister(w http.ResponseWriter, r *http.Request) {
	if h.token == "" {
		h.regs.WithLabelValues("unauthorized").Inc()
		writeError(w, http.StatusForbidden, "registration_disabled", "this daemon accepts no registrations: set registration_token_file in its config and the same token in the agents' engine block")
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(h.token)) != 1 {
		h.regs.WithLabelValues("unauthorized").Inc()
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong registration token: give the content of the daemon's registration_token_file as the agent's engine token_file")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxRegistrationBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.regs.WithLabelValues("too_large").Inc()
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("a registration is at most %d bytes", api.MaxRegistrationBody))
			return
		}
		h.regs.WithLabelValues("invalid").Inc()
		writeError(w, http.StatusBadRequest, "bad_request", "could not read the request body: "+err.Error())
		return
	}
	var reg api.NodeRegistration
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&reg); err != nil || dec.More() {
		if err == nil {
			err = errors.New("more than one JSON value")
		}
		h.regs.WithLabelValues("invalid").Inc()
		writeError(w, http.StatusBadRequest, "bad_request", "the body is not one registration object: "+err.Error())
		return
	}
	if msg := validateRegistration(reg); msg != "" {
		h.regs.WithLabelValues("invalid").Inc()
		writeError(w, http.StatusBadRequest, "bad_request", msg)
		return
	}
	workloads := slices.Clone(reg.Workloads)
	slices.Sort(workloads)
	rec := catalog.NodeRegistration{Cluster: reg.Cluster, Node: reg.Node, Endpoint: reg.Endpoint, VolumeID: reg.VolumeID,
		Version: reg.Version, Workloads: workloads, SeenAt: h.now()}
	if err := h.store.PutNodeRegistration(r.Context(), rec); err != nil {
		h.regs.WithLabelValues("failed").Inc()
		h.logger.Warn("storing an agent registration failed", "node", reg.Node, "err", err)
		writeError(w, http.StatusServiceUnavailable, "catalog_failed", "the catalog did not store the registration; the agent retries at its next interval")
		return
	}
	h.regs.WithLabelValues("ok").Inc()
	h.logger.Debug("agent registered", "cluster", reg.Cluster, "node", reg.Node, "endpoint", reg.Endpoint, "workloads", len(workloads))
	w.WriteHeader(http.StatusNoContent)
}

func validateRegistration(r api.NodeRegistration) string {
	if !namePattern.MatchString(r.Node) {
		return fmt.Sprintf("node %s is not a node name (1-63 letters, digits, '.', '_', '-')", short(r.Node))
	}
	if r.Cluster != "" && !namePattern.MatchString(r.Cluster) {
		return fmt.Sprintf("cluster %s is not a cluster name", short(r.Cluster))
	}
	u, err := url.Parse(r.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(r.Endpoint) > 512 {
		return fmt.Sprintf("endpoint %s is not an http(s) URL", short(r.Endpoint))
	}
	if !printable.MatchString(r.VolumeID) || !printable.MatchString(r.Version) {
		return "volume_id and version must be printable ASCII without spaces, at most 200 characters"
	}
	if len(r.Workloads) > maxWorkloads {
		return fmt.Sprintf("%d workloads; at most %d", len(r.Workloads), maxWorkloads)
	}
	for _, w := range r.Workloads {
		if !namePattern.MatchString(w) {
			return fmt.Sprintf("workload %s is not a workload name", short(w))
		}
	}
	return ""
}

// short quotes a value for an error message, cut to 64 bytes: a client's
// mistake is echoed, not its whole body.
func short(v string) string {
	if len(v) > 64 {
		return strconv.Quote(v[:64]) + "..."
	}
	return strconv.Quote(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.Error{Code: code, Message: msg})
}
