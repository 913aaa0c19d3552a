package agent

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// Error codes of api.Error.
const (
	CodeUnauthorized = "unauthorized"
	CodeNotFound     = "not_found"
	CodeDriverFailed = "driver_failed"
	CodeInternal     = "internal"
)

// ServerOptions configure NewServer.
type ServerOptions struct {
	Version string
	Logger  *slog.Logger     // nil: discard
	Now     func() time.Time // nil: time.Now
}

// Server is the agent's HTTP handler.
type Server struct {
	cfg       *Config
	version   string
	logger    *slog.Logger
	now       func() time.Time
	started   time.Time
	tokenHash [sha256.Size]byte
	// The read-only token's hash, when read_only_token_file is set (scope.go).
	readOnlyTokenHash [sha256.Size]byte
	hasReadOnlyToken  bool

	names     []string // config order
	workloads map[string]*workload
	fence     *Fence
	repoIDs   sync.Map // repository name -> id, once opened (repoaccess.go)
	owners    *Owners  // per-workload ownership leases on the shared volume
	// Background ownership work (adoption, fencing) runs under bgCtx and is
	// waited for by StopBackground, so a stopped agent acts no more.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup

	authFailures  atomic.Int64
	driverErrors  atomic.Int64
	otherFailures atomic.Int64

	handler http.Handler
	metrics *agentMetrics // metrics.go
}

type workload struct {
	cfg    WorkloadConfig
	driver Driver
	// One action at a time per workload: a start racing a stop would leave the
	// workload in whichever state lost the race.
	actionMu sync.Mutex
	// One backup at a time per workload; a second gets 409 busy.
	backupMu sync.Mutex
	// hold thaws the workload when a quiesce through the API is not
	// followed by a thaw in time (guarded by actionMu; see hold.go).
	hold *thawTimer
}

// NewServer builds drivers for every configured workload and the /v1 routes.
func NewServer(cfg *Config, opts ServerOptions) (*Server, error) {
	s := &Server{
		cfg: cfg, version: opts.Version, logger: opts.Logger, now: opts.Now,
		workloads: map[string]*workload{},
		tokenHash: sha256.Sum256([]byte(cfg.Token.Reveal())),
	}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	if ro := cfg.ReadOnlyToken.Reveal(); ro != "" {
		s.hasReadOnlyToken, s.readOnlyTokenHash = true, sha256.Sum256([]byte(ro))
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.started = s.now()
	fence, err := NewFence(cfg.Node, cfg.SharedVolume, cfg.StateDir, s.now)
	if err != nil {
		return nil, err
	}
	s.fence = fence
	s.owners = NewOwners(cfg.Node, cfg.SharedVolume, cfg.StateDir, cfg.ownershipOrDefault(), realClock{s.now}, s.logger, s.ownershipLost)
	for _, w := range cfg.Workloads {
		d, err := NewDriver(cfg, w, s.logger)
		if err != nil {
			return nil, err
		}
		s.names = append(s.names, w.Name)
		s.workloads[w.Name] = &workload{cfg: w, driver: d}
	}

	s.metrics = newAgentMetrics(s)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", s.health)
	mux.Handle("GET "+MetricsPath, s.authenticated(s.serveMetrics))
	mux.Handle("GET /v1/node", s.authenticated(s.node))
	mux.Handle("GET /v1/workloads", s.authenticated(s.listWorkloads))
	mux.Handle("GET /v1/workloads/{name}", s.authenticated(s.getWorkload))
	mux.Handle("POST /v1/workloads/{name}/{action}", s.authenticated(s.action))
	mux.Handle("POST /v1/workloads/{name}/backup", s.authenticated(s.backup))
	mux.Handle("POST /v1/workloads/{name}/restore", s.authenticated(s.restore))
	mux.Handle("POST /v1/node-backup", s.authenticated(s.nodeBackup))
	mux.Handle("GET /v1/coordinator", s.authenticated(s.coordinator))
	mux.Handle("POST /v1/coordinator", s.authenticated(s.claimCoordinator))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Unauthenticated: say nothing about the routes that exist.
		s.writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no endpoint %s %s on this agent; check the agent and provider versions", r.Method, r.URL.Path))
	})
	s.handler = s.logRequests(s.readBodyFirst(mux))
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Failures returns the failure counters since the server started.
func (s *Server) Failures() api.FailureCounters {
	auth, drv, other := s.authFailures.Load(), s.driverErrors.Load(), s.otherFailures.Load()
	return api.FailureCounters{DriverErrors: drv, AuthFailures: auth, Total: auth + drv + other}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	// Unauthenticated: liveness only; the version is in /v1/node.
	s.writeJSON(w, http.StatusOK, api.Health{Status: "ok"})
}

func (s *Server) node(w http.ResponseWriter, r *http.Request) {
	facts := api.NodeFacts{
		Name:          s.cfg.Node,
		AgentVersion:  s.version,
		CPUCount:      runtime.NumCPU(),
		UptimeSeconds: s.now().Sub(s.started).Seconds(),
		SharedVolume:  s.cfg.SharedVolume,
		ObservedAt:    s.now().UTC(),
	}
	var err error
	if facts.Load1, err = readLoad1(loadavgPath); err != nil {
		s.logger.Debug("no load average", "error", err)
	}
	if facts.MemFreeBytes, facts.MemTotalBytes, err = readMeminfo(meminfoPath); err != nil {
		s.logger.Debug("no memory figures", "error", err)
	}
	// Read every time (Run created it at start), so an unmounted or swapped
	// volume shows up at once as a missing or different id.
	if facts.SharedVolumeID, err = ReadVolumeID(s.cfg.SharedVolume); err != nil {
		s.logger.Warn("cannot read the shared volume's id; is the volume still mounted?", "shared_volume", s.cfg.SharedVolume, "error", err)
	}
	facts.Failures = s.Failures()
	facts.Repositories = s.repositoryFacts()
	s.writeJSON(w, http.StatusOK, facts)
}

func (s *Server) listWorkloads(w http.ResponseWriter, r *http.Request) {
	list := api.WorkloadList{Node: s.cfg.Node, Workloads: make([]api.Workload, len(s.names))}
	var wg sync.WaitGroup
	for i, name := range s.names {
		wg.Go(func() { list.Workloads[i] = s.probe(r.Context(), s.workloads[name]) })
	}
	wg.Wait()
	s.writeJSON(w, http.StatusOK, list)
}

func (s *Server) getWorkload(w http.ResponseWriter, r *http.Request) {
	wl, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.writeJSON(w, http.StatusOK, s.probe(r.Context(), wl))
}

// probe asks the driver for the workload's state; the driver bounds the call
// with the workload's status timeout.
func (s *Server) probe(ctx context.Context, wl *workload) api.Workload {
	state, err := wl.driver.Status(ctx)
	out := api.Workload{Name: wl.cfg.Name, Driver: wl.cfg.Driver, State: state, Paths: slices.Clone(wl.cfg.Paths), ObservedAt: s.now().UTC()}
	if err != nil {
		out.Error = err.Error()
		if state == api.StateUnknown && ctx.Err() == nil {
			s.driverErrors.Add(1)
		}
	}
	s.observeOwnership(ctx, wl, &out)
	return out
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	wl, ok := s.lookup(w, r)
	if !ok {
		return
	}
	action := r.PathValue("action")
	var run func(context.Context) error
	switch action {
	case ActionStart:
		run = s.fencedStart(wl)
	case ActionStop:
		run = s.releasingStop(wl)
	case ActionQuiesce:
		run = wl.driver.Quiesce
	case ActionThaw:
		run = wl.driver.Thaw
	default:
		s.writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("unknown action %q for workload %q; use one of %s", action, wl.cfg.Name, strings.Join(Actions, ", ")))
		return
	}
	hold, ok := s.quiesceHold(w, r, wl, action)
	if !ok {
		return
	}

	wl.actionMu.Lock()
	defer wl.actionMu.Unlock()
	started := s.now()
	log := s.logger.With("workload", wl.cfg.Name, "action", action)
	log.Info("workload action started")
	err := run(r.Context())
	thawBy := s.afterAction(wl, action, hold, err)
	if err != nil {
		if s.leaseRefused(w, wl, err) {
			return
		}
		if r.Context().Err() == nil {
			s.driverErrors.Add(1)
		}
		log.Warn("workload action failed", "error", err)
		s.writeError(w, http.StatusBadGateway, CodeDriverFailed, fmt.Sprintf("%s %s on node %s failed: %v", action, wl.cfg.Name, s.cfg.Node, err))
		return
	}
	result := s.probe(r.Context(), wl)
	finished := s.now()
	log.Info("workload action done", "state", result.State, "duration", finished.Sub(started))
	s.writeJSON(w, http.StatusOK, api.ActionResult{
		Workload: wl.cfg.Name, Action: action, State: result.State,
		DurationMS: finished.Sub(started).Milliseconds(), FinishedAt: finished.UTC(), ThawBy: thawBy,
	})
}

// actionTimeout bounds a release (thaw or resume) that must run even after
// the request is gone.
func (s *Server) actionTimeout(*workload) time.Duration { return 2 * time.Minute }

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*workload, bool) {
	name := r.PathValue("name")
	wl, ok := s.workloads[name]
	if !ok {
		known := "none"
		if len(s.names) > 0 {
			known = strings.Join(s.names, ", ")
		}
		s.writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no workload %q on node %s (configured: %s); define it in the agent config of every node that may run it", name, s.cfg.Node, known))
	}
	return wl, ok
}

// authenticated requires "Authorization: Bearer <token>". Hashing both sides
// first makes the comparison constant-time regardless of the length guessed.
func (s *Server) authenticated(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		scheme, token, found := strings.Cut(header, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
			s.refuse(w, r, "missing bearer token: send Authorization: Bearer <token>; set agent_token in the provider (or CLUSTERGUARD_AGENT_TOKEN) to the token in this agent's token_file")
			return
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		scope := s.scopeOf(got)
		if scope == scopeNone {
			s.refuse(w, r, "wrong bearer token: check that agent_token in the provider (or CLUSTERGUARD_AGENT_TOKEN) matches the token in this agent's token_file")
			return
		}
		if !s.allowed(w, r, scope) {
			return
		}
		next(w, r)
	})
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, message string) {
	s.authFailures.Add(1)
	s.logger.Warn("request refused: bad or missing token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "token_file", s.cfg.TokenFile)
	w.Header().Set("WWW-Authenticate", `Bearer realm="clusterguard-agent"`)
	s.writeError(w, http.StatusUnauthorized, CodeUnauthorized, message)
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.otherFailures.Add(1)
		s.logger.Error("encode response", "error", err)
		http.Error(w, `{"code":"internal","message":"the agent could not encode its response; see the agent log"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func (s *Server) writeError(w http.ResponseWriter, status int, code, message string) {
	s.writeJSON(w, status, api.Error{Code: code, Message: message})
}

// logRequests logs every request; health checks only at debug level, since
// harnesses and load balancers poll them.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		started := time.Now()
		defer func() {
			if p := recover(); p != nil {
				if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(p)
				}
				s.otherFailures.Add(1)
				s.logger.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
				if !rec.wrote {
					s.writeError(rec, http.StatusInternalServerError, CodeInternal, "the agent hit an internal error; see its log")
				}
			}
			s.metrics.request(r.Pattern, rec.status)
			level := slog.LevelInfo
			if (r.URL.Path == "/v1/health" || r.URL.Path == MetricsPath) && rec.status == http.StatusOK {
				level = slog.LevelDebug
			}
			s.logger.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(started), "remote", r.RemoteAddr)
		}()
		next.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(p)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
