package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/catalogopen"
)

const (
	agentToken = "agent-token-0123456789abcdef"
	regToken   = "registration-token-0123456789"
)

// daemonEnv is a directory with a daemon config on a SQLite catalog.
type daemonEnv struct {
	dir, config, catalog, keyFile string
	bin                           string
}

func newDaemonEnv(t *testing.T, extra string) *daemonEnv {
	t.Helper()
	bin, _ := agenttest.Binaries(t)
	dir := t.TempDir()
	e := &daemonEnv{dir: dir, config: filepath.Join(dir, "engine.hcl"), catalog: filepath.Join(dir, "catalog.db"),
		keyFile: filepath.Join(dir, "catalog.key"), bin: bin}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("catalog.key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	cfg := fmt.Sprintf("catalog = %q\ncatalog_key_file = %q\nagent_token_file = %q\nregistration_token_file = %q\nlisten = \"127.0.0.1:0\"\ntick = \"200ms\"\nlog_level = \"debug\"\n%s",
		e.catalog, e.keyFile, write("agent.token", agentToken), write("registration.token", regToken), extra)
	if err := os.WriteFile(e.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// daemonProc is a running `engine serve`.
type daemonProc struct {
	cmd    *exec.Cmd
	addr   string
	log    *bytes.Buffer
	exited chan struct{}
	ready  string
}

func (e *daemonEnv) command(args ...string) *exec.Cmd {
	cmd := exec.Command(e.bin, append([]string{"engine"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// start runs `engine serve` and waits (polling, with a deadline) until
// its ready file names the bound address.
func (e *daemonEnv) start(t *testing.T, name string) *daemonProc {
	t.Helper()
	p := &daemonProc{log: &bytes.Buffer{}, exited: make(chan struct{}), ready: filepath.Join(e.dir, name+".ready")}
	p.cmd = e.command("serve", "--config", e.config, "--ready-file", p.ready)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for p.addr == "" {
		select {
		case <-p.exited:
			t.Fatalf("engine serve exited before it was ready: %v\n%s", p.cmd.ProcessState, p.log)
		default:
		}
		if data, err := os.ReadFile(p.ready); err == nil && strings.HasSuffix(string(data), "\n") {
			p.addr = strings.TrimSpace(string(data))
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine serve not ready within 30s:\n%s", p.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// stop sends SIGTERM and waits for a graceful exit.
func (p *daemonProc) stop(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("engine serve did not stop within 30s of SIGTERM:\n%s", p.log)
	}
	return p.cmd.ProcessState.ExitCode()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// `engine serve` on a SQLite catalog: /health says healthy once the
// scheduler ticks, /metrics exposes the process, Go and daemon metrics, a
// second daemon on the same file is refused, and SIGTERM stops it cleanly.
func TestServeHealthMetricsAndSingleSQLiteDaemon(t *testing.T) {
	e := newDaemonEnv(t, "")
	p := e.start(t, "first")

	var h struct {
		ID       string    `json:"id"`
		Healthy  bool      `json:"healthy"`
		LastTick time.Time `json:"last_tick"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := get(t, "http://"+p.addr+"/health")
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("/health is not JSON: %v: %s", err, body)
		}
		if code == http.StatusOK && h.Healthy && !h.LastTick.IsZero() && h.ID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health not healthy within 20s: %d %s\n%s", code, body, p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, metrics := get(t, "http://"+p.addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, m := range []string{"go_goroutines", "process_resident_memory_bytes", "clusterguard_engine_registrations_total"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	second := e.command("serve", "--config", e.config)
	// Bounded: a second daemon that is not refused would serve forever.
	timer := time.AfterFunc(30*time.Second, func() { _ = second.Process.Kill() })
	out, err := second.CombinedOutput()
	timer.Stop()
	if second.ProcessState == nil || second.ProcessState.ExitCode() != 1 {
		t.Fatalf("second engine serve on the same SQLite catalog: %v (want exit 1)\n%s", err, out)
	}
	for _, want := range []string{"catalog in use by another engine daemon", fmt.Sprintf("pid %d", p.cmd.Process.Pid), "PostgreSQL"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("refusal lacks %q:\n%s", want, out)
		}
	}

	if code := p.stop(t); code != 0 {
		t.Fatalf("engine serve exit code after SIGTERM = %d, want 0\n%s", code, p.log)
	}
	if _, err := os.Stat(p.ready); !os.IsNotExist(err) {
		t.Errorf("ready file left behind after stop: %v", err)
	}
	// Once the first daemon stopped, the catalog is free again.
	e.start(t, "again")
}

// `engine check`: 0 for a usable config (also reporting a running daemon's
// lock), 1 for an invalid config or a catalog that cannot be opened, 2
// for wrong flags.
func TestCheckExitCodes(t *testing.T) {
	e := newDaemonEnv(t, "")
	run := func(args ...string) (int, string) {
		cmd := e.command(args...)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := run("check"); code != 2 || !strings.Contains(out, "usage") {
		t.Errorf("check without --config: %d\n%s", code, out)
	}
	if code, out := run("check", "--config", e.config, "extra"); code != 2 {
		t.Errorf("check with an extra argument: %d\n%s", code, out)
	}
	if code, out := run("check", "--config", e.config); code != 0 || !strings.Contains(out, "does not exist yet") {
		t.Errorf("check before the catalog exists: %d\n%s", code, out)
	}
	if _, err := os.Stat(e.catalog); !os.IsNotExist(err) {
		t.Errorf("check created the catalog: %v", err)
	}
	p := e.start(t, "daemon")
	code, out := run("check", "--config", e.config)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("daemon lock: held by the daemon with pid %d", p.cmd.Process.Pid)) {
		t.Errorf("check with a daemon running: %d\n%s", code, out)
	}
	code, out = run("check", "--config", e.config, "--json")
	var r struct {
		Backend string `json:"backend"`
		Daemons []struct {
			ID string `json:"ID"`
		} `json:"daemons"`
	}
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Backend != "sqlite" {
		t.Errorf("check --json: %d %v\n%s", code, err, out)
	}

	bad := filepath.Join(e.dir, "bad.hcl")
	if err := os.WriteFile(bad, []byte("catalog = \"relative.db\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := run("check", "--config", bad); code != 1 || !strings.Contains(out, bad+":1:") {
		t.Errorf("check of an invalid config: %d\n%s", code, out)
	}
	// A catalog that is not a SQLite database: valid config, unusable catalog.
	notDB := filepath.Join(e.dir, "not-a-db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("garbage ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(e.config)
	other := filepath.Join(e.dir, "other.hcl")
	if err := os.WriteFile(other, bytes.Replace(cfg, []byte(e.catalog), []byte(notDB), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := run("check", "--config", other); code != 1 || !strings.Contains(out, "cannot be opened") {
		t.Errorf("check of an unusable catalog: %d\n%s", code, out)
	}
}

func post(t *testing.T, url, token string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// A real agent with an engine block registers; the registration appears
// in the catalog with the agent's endpoint, volume id, version and
// workloads. Wrong tokens, oversized and malformed bodies are refused.
func TestAgentRegistersWithTheDaemon(t *testing.T) {
	e := newDaemonEnv(t, "")
	p := e.start(t, "daemon")
	url := "http://" + p.addr + api.RegisterPath

	good, _ := json.Marshal(api.NodeRegistration{Node: "n1", Endpoint: "http://127.0.0.1:1", Workloads: []string{"a"}})
	if code, body := post(t, url, "", good); code != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", code, body)
	}
	if code, body := post(t, url, agentToken, good); code != http.StatusUnauthorized {
		t.Errorf("agent token instead of the registration token: %d %s", code, body)
	}
	big := []byte(`{"node":"n1","endpoint":"http://127.0.0.1:1","workloads":["` + strings.Repeat("a", api.MaxRegistrationBody) + `"]}`)
	if code, body := post(t, url, regToken, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d %s", code, body)
	}
	for _, b := range []string{`{"node":"n1","endpoint":"http://127.0.0.1:1","extra":1}`, `{"node":"n1","endpoint":"http://127.0.0.1:1"} {}`,
		`{"node":"../n1","endpoint":"http://127.0.0.1:1"}`, `{"node":"n1","endpoint":"file:///etc/passwd"}`} {
		if code, body := post(t, url, regToken, []byte(b)); code != http.StatusBadRequest {
			t.Errorf("body %s: %d %s", b, code, body)
		}
	}

	tokenFile := filepath.Join(e.dir, "registration.token")
	c := agenttest.Start(t, agenttest.Options{Workloads: []string{"web", "db"},
		ExtraConfig: fmt.Sprintf("\nengine {\n  url = %q\n  token_file = %q\n  interval = \"1s\"\n  cluster = \"acc\"\n}\n", "http://"+p.addr, tokenFile)})
	n := c.Nodes[0]

	ctx := context.Background()
	store, err := catalogopen.Open(ctx, e.catalog, catalogopen.Options{KeyFile: e.keyFile, NoEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		regs, err := store.ListNodeRegistrations(ctx, "acc")
		if err != nil {
			t.Fatal(err)
		}
		if len(regs) == 1 {
			r := regs[0]
			if r.Node != n.Name || r.Endpoint != n.Endpoint || strings.Join(r.Workloads, ",") != "db,web" || r.VolumeID == "" || r.SeenAt.IsZero() {
				t.Fatalf("registration %+v; want node %s at %s with workloads db,web", r, n.Name, n.Endpoint)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no registration of %s within 30s (%d found); agent log:\n%s\ndaemon log:\n%s", n.Name, len(regs), tail(n.LogPath), p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, metrics := get(t, "http://"+p.addr+"/metrics")
	for _, want := range []string{`clusterguard_engine_registrations_total{result="ok"}`, `clusterguard_engine_registrations_total{result="unauthorized"} 2`, `clusterguard_engine_registrations_total{result="too_large"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
