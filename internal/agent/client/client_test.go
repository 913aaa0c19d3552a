package client_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
)

// countingServer answers with respond(attempt) and counts attempts.
type countingServer struct {
	*httptest.Server
	attempts atomic.Int32
	mu       sync.Mutex
	auth     map[string]string // path -> Authorization header
}

func newCountingServer(t *testing.T, respond func(attempt int, w http.ResponseWriter, r *http.Request)) *countingServer {
	t.Helper()
	s := &countingServer{auth: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.attempts.Add(1))
		s.mu.Lock()
		s.auth[r.URL.Path] = r.Header.Get("Authorization")
		s.mu.Unlock()
		respond(n, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fastClient(t *testing.T, endpoint string, tweak func(*client.Options)) *client.Client {
	t.Helper()
	o := client.Options{Node: "node-7", Endpoint: endpoint, Token: "secret-token-123456", RetryMax: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond, RequestTimeout: 5 * time.Second}
	if tweak != nil {
		tweak(&o)
	}
	c, err := client.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func asError(t *testing.T, err error) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	return e
}

func TestServerErrorsAreRetriedUpToMax(t *testing.T) {
	t.Parallel()
	s := newCountingServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Code: "busy", Message: "try later"})
	})
	_, err := fastClient(t, s.URL, nil).Workloads(context.Background())
	if got := s.attempts.Load(); got != 4 {
		t.Errorf("attempts = %d, want 1 + 3 retries", got)
	}
	e := asError(t, err)
	if e.StatusCode != 503 || e.Code != "busy" || e.Attempts != 4 || client.IsUnreachable(err) {
		t.Errorf("error = %+v", e)
	}
	for _, part := range []string{"node-7", s.URL, "GET /v1/workloads", "503 busy after 4 attempts: try later"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q lacks %q", err, part)
		}
	}
}

func TestServerErrorThenSuccess(t *testing.T) {
	t.Parallel()
	s := newCountingServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n < 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		writeJSON(w, 200, api.NodeFacts{Name: "node-7", CPUCount: 4})
	})
	facts, err := fastClient(t, s.URL, nil).Node(context.Background())
	if err != nil || facts.CPUCount != 4 || s.attempts.Load() != 3 {
		t.Fatalf("facts = %+v, err = %v, attempts = %d", facts, err, s.attempts.Load())
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		code   string
		check  func(error) bool
		hint   string
	}{
		{401, "unauthorized", client.IsUnauthorized, "set agent_token in the provider"},
		{404, "not_found", client.IsNotFound, "404 not_found"},
		{400, "bad_request", func(err error) bool { return !client.IsNotFound(err) && !client.IsUnauthorized(err) }, "400 bad_request"},
		{429, "slow_down", func(err error) bool { return true }, "429 slow_down"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			s := newCountingServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, tc.status, api.Error{Code: tc.code, Message: "the agent says no"})
			})
			_, err := fastClient(t, s.URL, nil).Workload(context.Background(), "web")
			if s.attempts.Load() != 1 {
				t.Errorf("%d was retried: %d attempts", tc.status, s.attempts.Load())
			}
			if err == nil || !tc.check(err) || client.IsUnreachable(err) || !strings.Contains(err.Error(), tc.hint) || !strings.Contains(err.Error(), "the agent says no") {
				t.Errorf("error = %v", err)
			}
		})
	}
}

func TestDriverFailureIsNotRetried(t *testing.T) {
	t.Parallel()
	s := newCountingServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusBadGateway, api.Error{Code: "driver_failed", Message: `start web: command ["/bin/x"] exited with code 4`})
	})
	_, err := fastClient(t, s.URL, nil).Action(context.Background(), "web", "start")
	if s.attempts.Load() != 1 {
		t.Errorf("a failed start was run %d times", s.attempts.Load())
	}
	if !client.IsDriverFailed(err) || !strings.Contains(err.Error(), "exited with code 4") || !strings.Contains(err.Error(), "POST /v1/workloads/web/start") {
		t.Errorf("error = %v", err)
	}
}

func TestConnectionRefusedIsRetriedThenUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	var retries atomic.Int32
	logger := slog.New(slog.NewTextHandler(countWriter(func(line string) {
		if strings.Contains(line, "retrying agent request") {
			retries.Add(1)
		}
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, err = fastClient(t, endpoint, func(o *client.Options) { o.RetryMax = 2; o.Logger = logger }).Health(context.Background())
	if !client.IsUnreachable(err) {
		t.Fatalf("IsUnreachable(%v) = false", err)
	}
	if e := asError(t, err); e.Attempts != 3 || e.StatusCode != 0 || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error = %+v, want 3 attempts ending in a refused connection", e)
	}
	if retries.Load() != 2 {
		t.Errorf("logged %d retries, want 2", retries.Load())
	}
	for _, part := range []string{"node-7", endpoint, "unreachable after 3 attempts", "check that the agent is running on node node-7"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q lacks %q", err, part)
		}
	}
}

type countWriter func(string)

func (f countWriter) Write(p []byte) (int, error) { f(string(p)); return len(p), nil }

func TestCancelStopsRetries(t *testing.T) {
	t.Parallel()
	first := make(chan struct{})
	var once sync.Once
	s := newCountingServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		once.Do(func() { close(first) })
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c := fastClient(t, s.URL, func(o *client.Options) { o.RetryWaitMin, o.RetryWaitMax = time.Hour, time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Node(ctx); errc <- err }()
	<-first
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) || client.IsUnreachable(err) || !strings.Contains(err.Error(), "gave up") {
			t.Errorf("error = %v, want a cancellation that does not blame the agent", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the context did not stop the retry backoff")
	}
	if got := s.attempts.Load(); got != 1 {
		t.Errorf("attempts = %d after cancel, want 1", got)
	}
}

func TestCallerDeadlineCountsAsUnreachable(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := newCountingServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := fastClient(t, s.URL, nil).Node(ctx)
	if !client.IsUnreachable(err) || !strings.Contains(err.Error(), "no answer in time") {
		t.Errorf("error = %v, want unreachable: the agent did not answer before the caller's deadline", err)
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := newCountingServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	c := fastClient(t, s.URL, func(o *client.Options) { o.RequestTimeout = 100 * time.Millisecond; o.RetryMax = 1 })
	started := time.Now()
	_, err := c.Workloads(context.Background())
	if elapsed := time.Since(started); elapsed > 5*time.Second {
		t.Errorf("two 100ms attempts took %v", elapsed)
	}
	if got := s.attempts.Load(); got != 2 {
		t.Errorf("attempts = %d, want a timed-out attempt retried once", got)
	}
	if !client.IsUnreachable(err) || !strings.Contains(err.Error(), "no answer in time after 2 attempts") || !strings.Contains(err.Error(), "request_timeout") {
		t.Errorf("error = %v", err)
	}
}

func TestTokenIsSentExceptForHealth(t *testing.T) {
	t.Parallel()
	s := newCountingServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{}) })
	c := fastClient(t, s.URL+"/", nil) // a trailing slash is tolerated
	ctx := context.Background()
	if _, err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Action(ctx, "my web", "start"); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.auth["/v1/health"]; got != "" {
		t.Errorf("health sent Authorization %q", got)
	}
	if got := s.auth["/v1/workloads/my web/start"]; got != "Bearer secret-token-123456" {
		t.Errorf("action sent Authorization %q (seen: %v)", got, s.auth)
	}
}

func TestInvalidJSONResponse(t *testing.T) {
	t.Parallel()
	s := newCountingServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "<html>hello</html>") })
	_, err := fastClient(t, s.URL, nil).Health(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is this a clusterguard agent?") || client.IsUnreachable(err) {
		t.Errorf("error = %v", err)
	}
}

func TestNewValidatesTheEndpoint(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"http://127.0.0.1:7420":  "http://127.0.0.1:7420",
		"https://node1:7420/":    "https://node1:7420",
		"https://[::1]:7420":     "https://[::1]:7420",
		"http://localhost:8080/": "http://localhost:8080",
	}
	for in, want := range good {
		c, err := client.New(client.Options{Node: "n", Endpoint: in})
		if err != nil || c.Endpoint() != want {
			t.Errorf("New(%q) = %v; want endpoint %q", in, err, want)
		}
	}
	bad := map[string]string{
		"":                             "must start with http",
		"127.0.0.1:7420":               "write it like",
		"ftp://127.0.0.1:7420":         "must start with http",
		"http://127.0.0.1":             "has no port",
		"http://:7420":                 "has no host",
		"http://127.0.0.1:7420/v1":     "has a path",
		"http://127.0.0.1:7420?x=1":    "has a path, query",
		"http://u:p@127.0.0.1:7420":    "contains credentials",
		"http://127.0.0.1:7420/#frag":  "fragment",
		"http://127.0.0.1:7420 /x y z": "not a URL",
	}
	for in, want := range bad {
		_, err := client.New(client.Options{Node: "node-3", Endpoint: in})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "node-3") {
			t.Errorf("New(%q) = %v; want an error naming node-3 containing %q", in, err, want)
		}
	}
}

func TestLoadCAAndTLS(t *testing.T) {
	t.Parallel()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.Health{Status: "tls-ok"})
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-certificate case makes the server complain
	s.StartTLS()
	t.Cleanup(s.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := client.LoadCA(caFile)
	if err != nil {
		t.Fatal(err)
	}
	h, err := fastClient(t, s.URL, func(o *client.Options) { o.TLSConfig = tlsConfig }).Health(context.Background())
	if err != nil || h.Status != "tls-ok" {
		t.Fatalf("health over TLS = %+v, %v", h, err)
	}

	// Without the CA the certificate is untrusted: a configuration error, not retried, not "unreachable".
	_, err = fastClient(t, s.URL, nil).Health(context.Background())
	if err == nil || client.IsUnreachable(err) || !strings.Contains(err.Error(), "set ca_file") {
		t.Errorf("untrusted certificate: %v", err)
	}
	if e := asError(t, err); e.Attempts > 1 {
		t.Errorf("certificate error retried %d times", e.Attempts)
	}

	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := client.LoadCA(notPEM); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("LoadCA(not PEM) = %v", err)
	}
	if _, err := client.LoadCA(filepath.Join(dir, "missing.pem")); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("LoadCA(missing) = %v", err)
	}
}

// TestAgainstRealAgent runs agent.Run in-process with exec workloads and
// drives it through the client.
func TestAgainstRealAgent(t *testing.T) {
	dir := t.TempDir()
	volume, scratch := filepath.Join(dir, "shared"), filepath.Join(dir, "scratch")
	for _, d := range []string{volume, scratch} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const token = "real-agent-token-0123456789"
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(scratch, "web.running")
	config := fmt.Sprintf(`node = "node-1"
listen = "127.0.0.1:0"
shared_volume = %q
state_dir = %q
token_file = %q
workload "web" {
  driver = "exec"
  paths = ["apps/web"]
  exec {
    status = ["/bin/sh", "-c", "[ -f %s ] && exit 0 || exit 3"]
    start  = ["/bin/touch", %q]
    stop   = ["/bin/rm", "-f", %q]
  }
}
workload "broken" {
  driver = "exec"
  paths = ["apps/broken"]
  exec {
    status = ["/bin/sh", "-c", "exit 3"]
    start  = ["/bin/sh", "-c", "echo no license >&2; exit 5"]
  }
}
`, volume, filepath.Join(dir, "state"), tokenFile, marker, marker, marker)
	configPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{ConfigPath: configPath, Version: "v-test", Logger: slog.New(slog.DiscardHandler), Ready: func(a string) { ready <- a }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("agent exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("agent not ready")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent.Run: %v", err)
		}
	})

	c := fastClient(t, "http://"+addr, func(o *client.Options) { o.Node = "node-1"; o.Token = token })
	bg := context.Background()
	if h, err := c.Health(bg); err != nil || h.Status != "ok" {
		t.Fatalf("health = %+v, %v", h, err)
	}
	facts, err := c.Node(bg)
	if err != nil || facts.Name != "node-1" || len(facts.SharedVolumeID) != 32 || facts.SharedVolume != volume {
		t.Fatalf("node = %+v, %v", facts, err)
	}
	list, err := c.Workloads(bg)
	if err != nil || len(list.Workloads) != 2 || list.Workloads[0].State != api.StateInactive {
		t.Fatalf("workloads = %+v, %v", list, err)
	}
	res, err := c.Action(bg, "web", "start")
	if err != nil || res.State != api.StateActive {
		t.Fatalf("start = %+v, %v", res, err)
	}
	if w, err := c.Workload(bg, "web"); err != nil || w.State != api.StateActive || w.Paths[0] != "apps/web" {
		t.Fatalf("workload = %+v, %v", w, err)
	}
	if res, err := c.Action(bg, "web", "stop"); err != nil || res.State != api.StateInactive {
		t.Fatalf("stop = %+v, %v", res, err)
	}

	_, err = c.Action(bg, "broken", "start")
	if !client.IsDriverFailed(err) || !strings.Contains(err.Error(), "no license") || !strings.Contains(err.Error(), "exited with code 5") {
		t.Errorf("failing start = %v", err)
	}
	if _, err := c.Workload(bg, "nope"); !client.IsNotFound(err) || !strings.Contains(err.Error(), "configured: web, broken") {
		t.Errorf("unknown workload = %v", err)
	}
	if _, err := c.Action(bg, "web", "explode"); !client.IsNotFound(err) {
		t.Errorf("unknown action = %v", err)
	}

	wrong := fastClient(t, "http://"+addr, func(o *client.Options) { o.Node = "node-1"; o.Token = "not-the-token-at-all" })
	_, err = wrong.Node(bg)
	if !client.IsUnauthorized(err) || !strings.Contains(err.Error(), "agent_token") || strings.Contains(err.Error(), token) {
		t.Errorf("wrong token = %v", err)
	}
	if facts, err := c.Node(bg); err != nil || facts.Failures.AuthFailures != 1 || facts.Failures.DriverErrors != 1 {
		t.Errorf("failure counters = %+v, %v; want 1 auth failure and 1 driver error", facts.Failures, err)
	}
}
