package agent

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
)

// testCA is a certificate authority made in the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of cert
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+"-ca.pem")
	writeFile(t, file, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	return &testCA{cert: cert, key: key, file: file}
}

// issue writes a certificate signed by the CA (for 127.0.0.1 when server)
// and its key, and returns their paths.
func (ca *testCA) issue(t *testing.T, dir, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

// An agent that other hosts can reach without TLS refuses to start unless
// insecure_plaintext says the network is trusted; loopback stays allowed.
func TestConfigRefusesPlaintextOnNonLoopback(t *testing.T) {
	e := newConfigEnv(t)
	certFile, keyFile, _ := selfSignedCert(t, e.dir)
	tlsBlock := fmt.Sprintf("tls {\n  cert_file = %q\n  key_file = %q\n}\n", certFile, keyFile)
	for _, tc := range []struct {
		listen, extra string
		refused       bool
	}{
		{"0.0.0.0:7420", "", true},
		{":7420", "", true},
		{"10.0.0.11:7420", "", true},
		{"[::]:7420", "", true},
		{"node-1.example:7420", "", true},
		{"0.0.0.0:7420", "insecure_plaintext = true\n", false},
		{"0.0.0.0:7420", tlsBlock, false},
		{"127.0.0.1:7420", "", false},
		{"127.0.0.9:7420", "", false},
		{"[::1]:7420", "", false},
		{"localhost:7420", "", false},
	} {
		src := e.render(strings.Replace(validConfig, `"127.0.0.1:0"`, fmt.Sprintf("%q", tc.listen), 1) + tc.extra)
		_, err := ParseConfig("agent.hcl", []byte(src))
		switch {
		case tc.refused && (err == nil || !strings.Contains(err.Error(), "agent.hcl:2:") || !strings.Contains(err.Error(), "Plain HTTP on a non-loopback address") || !strings.Contains(err.Error(), "insecure_plaintext = true")):
			t.Errorf("listen %q %q: %v; want a refusal at agent.hcl:2 naming insecure_plaintext", tc.listen, tc.extra, err)
		case !tc.refused && err != nil:
			t.Errorf("listen %q %q refused: %v", tc.listen, tc.extra, err)
		}
	}
	cfg, err := ParseConfig("agent.hcl", []byte(e.render(validConfig+tlsBlock+"insecure_plaintext = true\n")))
	if err != nil || len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "insecure_plaintext has no effect") {
		t.Errorf("insecure_plaintext with tls: %v, warnings %v; want one warning that it has no effect", err, cfg.Warnings)
	}
}

// With insecure_plaintext the agent starts, and says loudly at every start
// that it serves plain HTTP to the network.
func TestRunWarnsWhenServingPlaintextToTheNetwork(t *testing.T) {
	e := newAgentEnv(t)
	cfg := strings.Replace(readFileString(t, e.config(t, "insecure_plaintext = true")), `"127.0.0.1:0"`, `"0.0.0.0:0"`, 1)
	path := filepath.Join(e.dir, "agent.hcl")
	writeFile(t, path, cfg)
	for start := 1; start <= 2; start++ {
		logs := &syncBuffer{}
		_, stop := runAgent(t, path, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "level=WARN msg=\"INSECURE: serving plain HTTP") {
			t.Errorf("start %d: no loud warning about plain HTTP in the log:\n%s", start, logs.String())
		}
	}
}

// With client_ca_file the agent requires a client certificate signed by
// that CA: none or another CA's is refused in the handshake; the right one
// works, through the engine's own client.
func TestMutualTLS(t *testing.T) {
	e := newAgentEnv(t)
	ca := newTestCA(t, e.dir, "cluster")
	rogue := newTestCA(t, e.dir, "rogue")
	serverCert, serverKey := ca.issue(t, e.dir, "agent", true)
	engineCert, engineKey := ca.issue(t, e.dir, "engine", false)
	rogueCert, rogueKey := rogue.issue(t, e.dir, "intruder", false)
	cfg := e.config(t, fmt.Sprintf("tls {\n  cert_file = %q\n  key_file = %q\n  client_ca_file = %q\n}\n", serverCert, serverKey, ca.file), fileWorkload("web"))
	addr, _ := runAgent(t, cfg, Options{})
	endpoint := "https://" + addr

	node := func(certFile, keyFile string) error {
		tlsConfig, err := client.LoadTLS(ca.file, certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(client.Options{Node: "node-1", Endpoint: endpoint, Token: testToken, TLSConfig: tlsConfig, RetryMax: -1, RequestTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		facts, err := c.Node(context.Background())
		if err == nil && facts.Name != "node-1" {
			t.Fatalf("facts = %+v", facts)
		}
		return err
	}
	if err := node("", ""); err == nil {
		t.Error("a client without a certificate was served")
	} else if client.IsUnreachable(err) || !strings.Contains(err.Error(), "client_cert_file") {
		t.Errorf("no client certificate: %v; want a TLS error (not unreachable) naming client_cert_file", err)
	}
	if err := node(rogueCert, rogueKey); err == nil {
		t.Error("a client with a certificate of another CA was served")
	}
	if err := node(engineCert, engineKey); err != nil {
		t.Errorf("the engine's certificate was refused: %v", err)
	}
	// Even health needs the handshake: nothing is served without a certificate.
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}).Get(endpoint + "/v1/health")
	if err == nil {
		resp.Body.Close()
		t.Errorf("health without a client certificate = %d, want a failed handshake", resp.StatusCode)
	}
}

// A client that declares a body and never sends it is cut off after
// read_timeout, with or without a token; a handler running longer than the
// read timeout is not cut off by it.
func TestSlowRequestsAreCutOff(t *testing.T) {
	e := newAgentEnv(t)
	w := fileWorkload("web")
	w.quiesce = "sleep 1" // three read timeouts
	cfg := e.config(t, "limits {\n  read_header_timeout = \"300ms\"\n  read_timeout = \"300ms\"\n}\n", w)
	addr, _ := runAgent(t, cfg, Options{})

	for _, auth := range []string{"", "Authorization: Bearer " + testToken + "\r\n"} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/coordinator HTTP/1.1\r\nHost: agent\r\n%sContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", auth)
		// The test's own deadline: far above read_timeout, so reaching it means
		// the agent held the connection.
		if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		_, err = io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("token %v: the agent held a connection whose body never came for %v", auth != "", time.Since(started))
		}
	}

	// A quiesce that runs well past read_timeout still gets its answer.
	var res api.ActionResult
	if code := call(t, nil, "POST", "http://"+addr+"/v1/workloads/web/quiesce", testToken, &res); code != http.StatusOK {
		t.Errorf("quiesce running past read_timeout = %d, want 200", code)
	}
}

// At most max_connections connections are served at once; the next waits
// until one closes.
func TestConnectionLimit(t *testing.T) {
	e := newAgentEnv(t)
	addr, _ := runAgent(t, e.config(t, "limits {\n  max_connections = 4\n}\n"), Options{})
	var idle []net.Conn
	for range 4 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		idle = append(idle, conn)
	}
	health := func(timeout time.Duration) error {
		c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + addr + "/v1/health")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := health(500 * time.Millisecond); err == nil {
		t.Fatal("a fifth connection was served while four were open with max_connections = 4")
	}
	idle[0].Close()
	if err := health(10 * time.Second); err != nil {
		t.Fatalf("health after a slot came free: %v", err)
	}
}

// The engine makes a client per use and drops it: those clients must not
// keep idle connections that fill the agent's connection slots.
func TestDroppedClientsDoNotHoldConnections(t *testing.T) {
	e := newAgentEnv(t)
	addr, _ := runAgent(t, e.config(t, "limits {\n  max_connections = 4\n}\n"), Options{})
	for i := range 12 {
		c, err := client.New(client.Options{Node: "node-1", Endpoint: "http://" + addr, Token: testToken, RetryMax: -1, RequestTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Node(context.Background()); err != nil {
			t.Fatalf("client %d: %v (earlier clients still hold the agent's connections?)", i+1, err)
		}
	}
}

// A token file others can read is refused at load, saying what to run.
func TestConfigRefusesReadableTokenFile(t *testing.T) {
	e := newConfigEnv(t)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(e.tokenFile, mode); err != nil {
			t.Fatal(err)
		}
		_, err := ParseConfig("agent.hcl", []byte(e.render(validConfig)))
		if err == nil || !strings.Contains(err.Error(), "agent.hcl:5:") || !strings.Contains(err.Error(), "chmod 600 "+e.tokenFile) {
			t.Errorf("token file mode %04o: %v; want a refusal at agent.hcl:5 saying chmod 600", mode, err)
		}
	}
}

// A read-only token may GET (probes) and nothing else; the full token
// still does everything, and the read-only token must differ from it.
func TestReadOnlyToken(t *testing.T) {
	e := newAgentEnv(t)
	const roToken = "readonly-0123456789abcdef-readonly"
	roFile := filepath.Join(e.dir, "ro.token")
	writeFile(t, roFile, roToken+"\n")
	s := startServer(t, e.config(t, fmt.Sprintf("read_only_token_file = %q", roFile), fileWorkload("web")), nil)
	for _, path := range []string{"/v1/node", "/v1/workloads", "/v1/workloads/web", "/v1/coordinator"} {
		if code := call(t, nil, "GET", s.url+path, roToken, nil); code != http.StatusOK {
			t.Errorf("GET %s with the read-only token = %d, want 200", path, code)
		}
	}
	for _, path := range []string{"/v1/workloads/web/start", "/v1/workloads/web/quiesce", "/v1/coordinator", "/v1/workloads/web/backup", "/v1/node-backup"} {
		var apiErr api.Error
		code := call(t, nil, "POST", s.url+path, roToken, &apiErr)
		if code != http.StatusForbidden || apiErr.Code != CodeForbidden || !strings.Contains(apiErr.Message, "read-only token") {
			t.Errorf("POST %s with the read-only token = %d %+v, want 403 forbidden naming the read-only token", path, code, apiErr)
		}
	}
	if _, err := os.Stat(filepath.Join(e.scratch, "web.running")); err == nil {
		t.Fatal("the read-only token started the workload")
	}
	if code := call(t, nil, "POST", s.url+"/v1/workloads/web/start", testToken, nil); code != http.StatusOK {
		t.Errorf("start with the full token = %d", code)
	}

	writeFile(t, roFile, testToken)
	if _, err := LoadConfig(e.config(t, fmt.Sprintf("read_only_token_file = %q", roFile))); err == nil || !strings.Contains(err.Error(), "same token as token_file") {
		t.Errorf("read-only token equal to the full token: %v, want a refusal", err)
	}
}

// Health says only that the agent lives; a 404 does not list the routes.
func TestUnauthenticatedAnswersRevealNothing(t *testing.T) {
	e := newAgentEnv(t)
	s := startServer(t, e.config(t, "", fileWorkload("web")), nil)
	resp, err := http.Get(s.url + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(body) != 1 || body["status"] != "ok" {
		t.Errorf("health = %v, want only {\"status\": \"ok\"}", body)
	}
	resp, err = http.Get(s.url + "/v2/anything")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(bufio.NewReader(resp.Body))
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(raw), "/v1/") || strings.Contains(string(raw), "coordinator") {
		t.Errorf("404 = %d %s; want not_found without the list of routes", resp.StatusCode, raw)
	}
}

// One claim cannot poison the fence: an epoch more than MaxEpochStep above
// the highest seen is refused and neither saved nor written to the volume.
func TestFenceRefusesEpochJumps(t *testing.T) {
	a, b, volume := twoNodes(t)
	if _, err := a.Claim(claim(1 << 62)); err == nil {
		t.Fatal("a claim of epoch 2^62 on a fresh volume was accepted")
	} else {
		wantStale(t, err, "more than 1000000 above the highest epoch seen (0)")
	}
	if _, err := a.Claim(claim(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(claim(5 + MaxEpochStep + 1)); err == nil {
		t.Fatal("node b jumped more than MaxEpochStep above the marker's epoch")
	} else {
		wantStale(t, err, "above the highest epoch seen (5)")
	}
	if st, _ := b.State(); st.HighestSeen != 0 || st.MarkerEpoch != 5 {
		t.Errorf("a refused claim changed state: %+v", st)
	}
	if _, err := b.Claim(claim(5 + MaxEpochStep)); err != nil {
		t.Errorf("a claim exactly MaxEpochStep above was refused: %v", err)
	}
	if _, err := os.Stat(filepath.Join(volume, CoordinatorMarkerFile)); err != nil {
		t.Fatal(err)
	}
}
