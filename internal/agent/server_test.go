package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

const testToken = "0123456789abcdef0123456789abcdef"

// agentEnv is a shared volume, token file and scratch directory for agent tests.
type agentEnv struct {
	dir, volume, tokenFile, scratch string
}

func newAgentEnv(t *testing.T) agentEnv {
	t.Helper()
	dir := t.TempDir()
	e := agentEnv{dir: dir, volume: filepath.Join(dir, "shared"), tokenFile: filepath.Join(dir, "agent.token"), scratch: filepath.Join(dir, "scratch")}
	for _, d := range []string{e.volume, e.scratch} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, e.tokenFile, testToken+"\n")
	return e
}

// script is a workload whose commands are shell snippets; {{s}} is the scratch dir.
type script struct {
	name                         string
	status, start, stop, quiesce string
	statusTimeout                string
}

// config writes an agent config with the given workloads and extra top-level lines.
func (e agentEnv) config(t *testing.T, extra string, workloads ...script) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "node = \"node-1\"\nlisten = \"127.0.0.1:0\"\nshared_volume = %q\nstate_dir = %q\ntoken_file = %q\nlog_level = \"debug\"\n%s\n",
		e.volume, filepath.Join(e.dir, "state"), e.tokenFile, extra)
	// Short lease timing, so that starts do not wait seconds.
	b.WriteString("ownership {\n  renew_interval = \"50ms\"\n  expiry = \"1s\"\n  clock_skew_margin = \"100ms\"\n}\n")
	q := func(s string) string {
		s = strings.ReplaceAll(s, "{{s}}", e.scratch)
		return fmt.Sprintf("[\"/bin/sh\", \"-c\", %q]", s)
	}
	for _, w := range workloads {
		fmt.Fprintf(&b, "workload %q {\n  driver = \"exec\"\n  paths = [\"apps/%s\"]\n  exec {\n    status = %s\n", w.name, w.name, q(w.status))
		for action, cmd := range map[string]string{"start": w.start, "stop": w.stop, "quiesce": w.quiesce} {
			if cmd != "" {
				fmt.Fprintf(&b, "    %s = %s\n", action, q(cmd))
			}
		}
		if w.statusTimeout != "" {
			fmt.Fprintf(&b, "    timeouts = { status = %q }\n", w.statusTimeout)
		}
		b.WriteString("  }\n}\n")
	}
	path := filepath.Join(e.dir, "agent.hcl")
	writeFile(t, path, b.String())
	return path
}

// fileWorkload is active while {{s}}/<name>.running exists.
func fileWorkload(name string) script {
	f := "{{s}}/" + name + ".running"
	return script{name: name, status: "[ -f " + f + " ] && exit 0 || exit 3", start: "touch " + f, stop: "rm -f " + f}
}

// testServer serves a config through httptest and captures the agent's logs.
type testServer struct {
	*Server
	url  string
	logs *syncBuffer
}

func startServer(t *testing.T, configPath string, now func() time.Time) *testServer {
	t.Helper()
	cfg, err := LoadConfig(configPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureVolumeID(cfg.SharedVolume); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := NewServer(cfg, ServerOptions{Version: "1.2.3", Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &testServer{Server: srv, url: hs.URL, logs: logs}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// call does one request and decodes the JSON body into out (when non-nil).
func call(t *testing.T, client *http.Client, method, url, token string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json (body %s)", method, url, ct, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, body, err)
		}
	}
	return resp.StatusCode
}

func TestHealthNeedsNoToken(t *testing.T) {
	e := newAgentEnv(t)
	s := startServer(t, e.config(t, ""), nil)
	var h api.Health
	if code := call(t, nil, "GET", s.url+"/v1/health", "", &h); code != 200 || h.Status != "ok" {
		t.Fatalf("health = %d %+v", code, h)
	}
}

func TestEndpointsRequireTheToken(t *testing.T) {
	e := newAgentEnv(t)
	s := startServer(t, e.config(t, "", fileWorkload("web")), nil)
	for _, ep := range []struct{ method, path string }{
		{"GET", "/v1/node"}, {"GET", "/v1/workloads"}, {"GET", "/v1/workloads/web"}, {"POST", "/v1/workloads/web/start"},
	} {
		for _, token := range []string{"", "wrong-token-wrong-token", testToken + "x"} {
			var apiErr api.Error
			code := call(t, nil, ep.method, s.url+ep.path, token, &apiErr)
			if code != http.StatusUnauthorized || apiErr.Code != CodeUnauthorized || !strings.Contains(apiErr.Message, "agent_token") || !strings.Contains(apiErr.Message, "token_file") {
				t.Errorf("%s %s with token %q = %d %+v; want 401 unauthorized naming agent_token and token_file", ep.method, ep.path, token, code, apiErr)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(e.scratch, "web.running")); err == nil {
		t.Fatal("an unauthenticated start ran the start command")
	}
	var facts api.NodeFacts
	if code := call(t, nil, "GET", s.url+"/v1/node", testToken, &facts); code != 200 {
		t.Fatalf("node with the right token = %d", code)
	}
	if facts.Failures.AuthFailures != 12 || facts.Failures.Total != 12 {
		t.Errorf("failure counters = %+v, want 12 auth failures", facts.Failures)
	}
	if logs := s.logs.String(); strings.Contains(logs, testToken) || !strings.Contains(logs, "request refused") {
		t.Errorf("logs must record refusals but never the token:\n%s", logs)
	}
}

func TestNodeFacts(t *testing.T) {
	e := newAgentEnv(t)
	clock := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	s := startServer(t, e.config(t, ""), now)
	mu.Lock()
	clock = clock.Add(90 * time.Second)
	mu.Unlock()

	var facts api.NodeFacts
	if code := call(t, nil, "GET", s.url+"/v1/node", testToken, &facts); code != 200 {
		t.Fatalf("status %d", code)
	}
	id, err := ReadVolumeID(e.volume)
	if err != nil {
		t.Fatal(err)
	}
	if facts.Name != "node-1" || facts.AgentVersion != "1.2.3" || facts.CPUCount < 1 || facts.UptimeSeconds != 90 ||
		facts.SharedVolume != e.volume || facts.SharedVolumeID != id || !facts.ObservedAt.Equal(clock) {
		t.Errorf("facts = %+v (volume id %s)", facts, id)
	}
	if _, err := os.Stat("/proc/meminfo"); err == nil && (facts.MemTotalBytes == 0 || facts.MemFreeBytes == 0 || facts.MemFreeBytes > facts.MemTotalBytes) {
		t.Errorf("memory figures = %d free of %d", facts.MemFreeBytes, facts.MemTotalBytes)
	}

	// A volume that lost its identity (e.g. unmounted) reports none rather than a stale one.
	if err := os.Remove(filepath.Join(e.volume, VolumeIDFile)); err != nil {
		t.Fatal(err)
	}
	call(t, nil, "GET", s.url+"/v1/node", testToken, &facts)
	if facts.SharedVolumeID != "" {
		t.Errorf("volume id after removal = %q, want empty", facts.SharedVolumeID)
	}
}

func TestWorkloadStatesAreProbedInParallel(t *testing.T) {
	e := newAgentEnv(t)
	// Each probe waits until all three have started: probing one after the
	// other would time out the first one.
	barrier := "touch {{s}}/$CLUSTERGUARD_WORKLOAD.probing; i=0; while [ $(ls {{s}} | grep -c probing) -lt 3 ]; do i=$((i+1)); [ $i -gt 300 ] && exit 9; sleep 0.01; done; "
	s := startServer(t, e.config(t, "",
		script{name: "web", status: barrier + "exit 0", statusTimeout: "10s"},
		script{name: "db", status: barrier + "exit 3", statusTimeout: "10s"},
		script{name: "cache", status: barrier + "echo 'cache corrupt' >&2; exit 1", statusTimeout: "10s"},
	), nil)
	var list api.WorkloadList
	if code := call(t, nil, "GET", s.url+"/v1/workloads", testToken, &list); code != 200 {
		t.Fatalf("status %d", code)
	}
	if list.Node != "node-1" || len(list.Workloads) != 3 {
		t.Fatalf("list = %+v", list)
	}
	want := map[string]string{"web": api.StateActive, "db": api.StateInactive, "cache": api.StateFailed}
	for i, w := range list.Workloads {
		if w.Name != []string{"web", "db", "cache"}[i] {
			t.Errorf("workload %d is %q; the list keeps config order", i, w.Name)
		}
		if w.State != want[w.Name] || w.Driver != "exec" || len(w.Paths) != 1 || w.Paths[0] != "apps/"+w.Name || w.ObservedAt.IsZero() {
			t.Errorf("workload = %+v, want state %s", w, want[w.Name])
		}
	}
	if cache := list.Workloads[2]; !strings.Contains(cache.Error, "cache corrupt") || !strings.Contains(cache.Error, "exited with code 1") {
		t.Errorf("failed workload error = %q, want the command's exit code and stderr", cache.Error)
	}
}

func TestProbeTimeoutIsUnknownAndCounted(t *testing.T) {
	e := newAgentEnv(t)
	s := startServer(t, e.config(t, "", script{name: "slow", status: "sleep 30", statusTimeout: "200ms"}), nil)
	var w api.Workload
	if code := call(t, nil, "GET", s.url+"/v1/workloads/slow", testToken, &w); code != 200 {
		t.Fatalf("status %d", code)
	}
	if w.State != api.StateUnknown || !strings.Contains(w.Error, "did not finish within 200ms") {
		t.Errorf("workload = %+v, want unknown with the timeout", w)
	}
	if f := s.Failures(); f.DriverErrors != 1 || f.Total != 1 {
		t.Errorf("failures = %+v, want one driver error", f)
	}
}

func TestActions(t *testing.T) {
	e := newAgentEnv(t)
	web := fileWorkload("web")
	web.quiesce = "touch {{s}}/web.quiesced"
	broken := script{name: "broken", status: "exit 3", start: "echo 'port 8080 in use' >&2; exit 4"}
	s := startServer(t, e.config(t, "", web, broken), nil)

	var res api.ActionResult
	if code := call(t, nil, "POST", s.url+"/v1/workloads/web/start", testToken, &res); code != 200 {
		t.Fatalf("start = %d", code)
	}
	if res.Workload != "web" || res.Action != "start" || res.State != api.StateActive || res.FinishedAt.IsZero() {
		t.Errorf("start result = %+v", res)
	}
	if code := call(t, nil, "POST", s.url+"/v1/workloads/web/quiesce", testToken, &res); code != 200 || res.State != api.StateActive {
		t.Errorf("quiesce = %d %+v", code, res)
	}
	if _, err := os.Stat(filepath.Join(e.scratch, "web.quiesced")); err != nil {
		t.Errorf("quiesce command did not run: %v", err)
	}
	// No thaw command configured: a no-op that succeeds.
	if code := call(t, nil, "POST", s.url+"/v1/workloads/web/thaw", testToken, &res); code != 200 || res.State != api.StateActive {
		t.Errorf("thaw = %d %+v", code, res)
	}
	if code := call(t, nil, "POST", s.url+"/v1/workloads/web/stop", testToken, &res); code != 200 || res.State != api.StateInactive {
		t.Errorf("stop = %d %+v", code, res)
	}

	var apiErr api.Error
	code := call(t, nil, "POST", s.url+"/v1/workloads/broken/start", testToken, &apiErr)
	if code != http.StatusBadGateway || apiErr.Code != CodeDriverFailed {
		t.Fatalf("failing start = %d %+v, want 502 driver_failed", code, apiErr)
	}
	for _, part := range []string{"start broken on node node-1", "exited with code 4", "port 8080 in use", `"/bin/sh"`} {
		if !strings.Contains(apiErr.Message, part) {
			t.Errorf("driver error message lacks %q: %s", part, apiErr.Message)
		}
	}
	if f := s.Failures(); f.DriverErrors != 1 {
		t.Errorf("failures = %+v, want one driver error", f)
	}

	for _, path := range []string{"/v1/workloads/nope/start", "/v1/workloads/web/reboot", "/v1/workloads/nope"} {
		method := "POST"
		if path == "/v1/workloads/nope" {
			method = "GET"
		}
		apiErr = api.Error{}
		if code := call(t, nil, method, s.url+path, testToken, &apiErr); code != 404 || apiErr.Code != CodeNotFound || apiErr.Message == "" {
			t.Errorf("%s %s = %d %+v, want 404 not_found", method, path, code, apiErr)
		}
	}
	if !strings.Contains(apiErr.Message, "configured: web, broken") {
		t.Errorf("not-found message should list the configured workloads: %s", apiErr.Message)
	}
	apiErr = api.Error{}
	if code := call(t, nil, "GET", s.url+"/v2/whatever", "", &apiErr); code != 404 || apiErr.Code != CodeNotFound {
		t.Errorf("unknown endpoint = %d %+v", code, apiErr)
	}
}

func TestActionsOnOneWorkloadAreSerialised(t *testing.T) {
	e := newAgentEnv(t)
	// start records its entry and exit; overlapping runs would interleave them.
	w := script{name: "web", status: "exit 0", start: "echo in >> {{s}}/trace; sleep 0.2; echo out >> {{s}}/trace"}
	s := startServer(t, e.config(t, "", w), nil)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			var res api.ActionResult
			if code := call(t, nil, "POST", s.url+"/v1/workloads/web/start", testToken, &res); code != 200 {
				t.Errorf("start = %d", code)
			}
		})
	}
	wg.Wait()
	trace, err := os.ReadFile(filepath.Join(e.scratch, "trace"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(trace)); strings.Join(got, " ") != "in out in out in out" {
		t.Errorf("start runs overlapped: %v", got)
	}
}

// runAgent starts Run in the background and returns its address and a stop
// function that cancels it and returns Run's error.
func runAgent(t *testing.T, configPath string, opts Options) (addr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	opts.ConfigPath = configPath
	opts.Ready = func(a string) { ready <- a }
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	go func() { done <- Run(ctx, opts) }()
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("agent exited before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("agent not ready within 30s")
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = fmt.Errorf("Run did not return within 30s of cancellation")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return addr, stop
}

func TestRunWritesAddressAndShutsDownGracefully(t *testing.T) {
	e := newAgentEnv(t)
	w := fileWorkload("web")
	// quiesce blocks until the test releases it, so it is in flight at shutdown.
	w.quiesce = "touch {{s}}/entered; i=0; until [ -f {{s}}/release ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 9; sleep 0.01; done"
	cfgPath := e.config(t, "", w)
	addr, stop := runAgent(t, cfgPath, Options{Version: "test"})

	addrFile := filepath.Join(e.dir, "state", AddrFile)
	written, err := os.ReadFile(addrFile)
	if err != nil || strings.TrimSpace(string(written)) != addr {
		t.Fatalf("%s = %q (%v), want %q", addrFile, written, err, addr)
	}
	if _, err := ReadVolumeID(e.volume); err != nil {
		t.Fatalf("Run did not create the volume id: %v", err)
	}
	var h api.Health
	if code := call(t, nil, "GET", "http://"+addr+"/v1/health", "", &h); code != 200 || h.Status != "ok" {
		t.Fatalf("health = %d %+v", code, h)
	}

	result := make(chan int, 1)
	go func() {
		var res api.ActionResult
		result <- call(t, nil, "POST", "http://"+addr+"/v1/workloads/web/quiesce", testToken, &res)
	}()
	waitForFile(t, filepath.Join(e.scratch, "entered"))
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// The listener closes at once; the in-flight request keeps running.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("agent still accepts connections after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) before the in-flight quiesce finished", err)
	default:
	}
	writeFile(t, filepath.Join(e.scratch, "release"), "")
	if code := <-result; code != 200 {
		t.Errorf("in-flight quiesce = %d, want 200", code)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run after graceful shutdown: %v", err)
	}
	if _, err := os.Stat(addrFile); !os.IsNotExist(err) {
		t.Errorf("%s left behind after shutdown (err %v)", addrFile, err)
	}
}

func TestRunShutdownDeadlineCancelsStuckRequests(t *testing.T) {
	e := newAgentEnv(t)
	w := fileWorkload("web")
	w.quiesce = "touch {{s}}/entered; sleep 60"
	addr, stop := runAgent(t, e.config(t, "", w), Options{ShutdownTimeout: 300 * time.Millisecond})
	go func() {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/workloads/web/quiesce", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitForFile(t, filepath.Join(e.scratch, "entered"))
	started := time.Now()
	err := stop()
	if err == nil || !strings.Contains(err.Error(), "did not finish within 300ms") {
		t.Errorf("Run = %v, want a shutdown deadline error", err)
	}
	if elapsed := time.Since(started); elapsed > 10*time.Second {
		t.Errorf("shutdown took %v with a 300ms deadline", elapsed)
	}
}

func TestRunServesTLS(t *testing.T) {
	e := newAgentEnv(t)
	certFile, keyFile, pool := selfSignedCert(t, e.dir)
	addr, _ := runAgent(t, e.config(t, fmt.Sprintf("tls {\n  cert_file = %q\n  key_file = %q\n}\n", certFile, keyFile)), Options{})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var facts api.NodeFacts
	if code := call(t, client, "GET", "https://"+addr+"/v1/node", testToken, &facts); code != 200 || facts.Name != "node-1" {
		t.Fatalf("node over TLS = %d %+v", code, facts)
	}
	resp, err := http.Get("http://" + addr + "/v1/health")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP accepted by a TLS agent")
		}
	}
}

func TestRunRefusesAnInvalidConfigOrBusyPort(t *testing.T) {
	e := newAgentEnv(t)
	path := filepath.Join(e.dir, "bad.hcl")
	writeFile(t, path, "node = \"n1\"\nlisten = \"nope\"\n")
	err := Run(context.Background(), Options{ConfigPath: path})
	if err == nil || !strings.Contains(err.Error(), path+":2:10") {
		t.Errorf("Run with a bad config = %v, want file:line:col", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := strings.Replace(readFileString(t, e.config(t, "")), "127.0.0.1:0", ln.Addr().String(), 1)
	writeFile(t, path, cfg)
	err = Run(context.Background(), Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "choose a free address") {
		t.Errorf("Run on a busy port = %v", err)
	}
}

func TestMainUsage(t *testing.T) {
	var stderr bytes.Buffer
	if code := runMain(nil, "v", &stderr); code != 2 || !strings.Contains(stderr.String(), "--config FILE") {
		t.Errorf("no args: %d %q", code, stderr.String())
	}
	stderr.Reset()
	missing := filepath.Join(t.TempDir(), "missing.hcl")
	if code := runMain([]string{"--config", missing}, "v", &stderr); code != 1 || !strings.Contains(stderr.String(), missing) {
		t.Errorf("missing config: %d %q", code, stderr.String())
	}
}

func waitForFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readFileString(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key into dir.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clusterguard test agent"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
