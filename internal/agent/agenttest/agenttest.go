// Package agenttest starts real clusters for tests: N node agents as separate
// processes of the provider binary (`terraform-provider-clusterguard agent`),
// on free 127.0.0.1 ports, sharing a temporary shared volume, each with the
// same test workloads (the exec driver running clusterguard-testworkload).
// Import it only from _test.go files.
//
//	c := agenttest.Start(t, agenttest.Options{Nodes: 3, Workloads: []string{"web"}})
//	c.StartWorkload(t, "node-1", "web")
//	c.MoveWorkload(t, "web", "node-1", "node-2")
//	c.WaitWorkloadState(t, "node-1", "web", api.StateInactive, 10*time.Second)
//
// Agents open only the repositories their config defines, so a test that
// backs up or restores lists its repositories up front (Options.Repositories,
// name, URL and password); the repository itself may be created later.
//
// Everything it starts — agents and workload processes — is stopped by
// t.Cleanup, and everything it writes lives under t.TempDir().
package agenttest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
	execdriver "github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/exec"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload/testworkloadtest"
)

// MainPackage is built by Binaries unless CLUSTERGUARD_AGENT_PKG names another
// main package whose `agent --config FILE` runs agent.Main.
const MainPackage = "github.com/clusterguard/terraform-provider-clusterguard"

// MainBinary is the provider binary's file name.
const MainBinary = "terraform-provider-clusterguard"

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 20 * time.Second
)

var (
	buildOnce sync.Once
	mainBin   string
	buildErr  error
)

// Binaries builds the provider binary and the test workload once per test
// process and returns their paths. With CLUSTERGUARD_TEST_BIN_DIR set, it uses
// the binaries already in that directory instead (e.g. built by make).
func Binaries(t testing.TB) (mainBinary, workloadBinary string) {
	t.Helper()
	if dir := os.Getenv("CLUSTERGUARD_TEST_BIN_DIR"); dir != "" {
		main := filepath.Join(dir, MainBinary)
		if _, err := os.Stat(main); err != nil {
			t.Fatalf("CLUSTERGUARD_TEST_BIN_DIR is set but holds no %s: %v; build it with `go build -o %s .` or unset the variable", MainBinary, err, dir)
		}
		return main, testworkloadtest.Build(t)
	}
	buildOnce.Do(func() {
		dir, err := testworkloadtest.BinDir()
		if err != nil {
			buildErr = err
			return
		}
		pkg := MainPackage
		if p := os.Getenv("CLUSTERGUARD_AGENT_PKG"); p != "" {
			pkg = p
		}
		path := filepath.Join(dir, MainBinary)
		if out, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
			return
		}
		mainBin = path
	})
	if buildErr != nil {
		t.Fatalf("build the agent binary: %v", buildErr)
	}
	return mainBin, testworkloadtest.Build(t)
}

// Options describe a test cluster.
type Options struct {
	// Nodes is the number of nodes, named node-1 .. node-N (default 1).
	Nodes int
	// Workloads are defined identically on every node: exec driver running the
	// test workload, data path apps/<name> on the shared volume.
	Workloads []string
	// Token is the agents' bearer token; empty picks a random one.
	Token string
	// TLS serves HTTPS with a self-signed certificate for 127.0.0.1; its PEM is
	// Cluster.CAFile.
	TLS bool
	// WorkloadEnv is added to every workload command's environment, e.g.
	// CLUSTERGUARD_TESTWORKLOAD_INTERVAL or CLUSTERGUARD_TESTWORKLOAD_FLUSH_EVERY.
	WorkloadEnv map[string]string
	// ExtraConfig is HCL appended to every agent's config, e.g. workloads of
	// other drivers, named in ExtraWorkloads so that cleanup stops them
	// through the agents.
	ExtraConfig    string
	ExtraWorkloads []string
	// Traversable makes the directories above the shared volume reachable
	// by every user (0755), for workloads that run as their own user.
	Traversable bool
	// Repositories are written as repository blocks into every agent's
	// config: agents open no other repository, so a test that backs up or
	// restores names its repository here, before the agents start. The
	// repository need not exist yet (the engine initialises it).
	Repositories []Repository
	// Ownership is the agents' ownership lease timing; zero picks
	// TestOwnership, short enough that starts do not slow tests down.
	Ownership agent.OwnershipConfig
	// SharedVolume, when set, is the shared volume (e.g. a directory on a
	// loop-mounted file system) instead of one under the cluster's directory.
	SharedVolume string
	// SnapshotMethod, when set, is the workloads' snapshot_method.
	SnapshotMethod string
}

// Repository is a repository block of the agents' config; its password is
// written to a 0600 file the block names.
type Repository struct {
	Name     string
	URL      string
	Password string
}

// Cluster is a running test cluster.
type Cluster struct {
	Dir          string // root of everything the cluster writes
	SharedVolume string
	Token        string
	TokenFile    string
	CAFile       string // set when Options.TLS
	Nodes        []*Node

	opts        Options
	tlsFiles    *[2]string // certificate and key, when TLS
	mainBin     string
	workloadBin string
}

// Node is one agent process.
type Node struct {
	Name       string
	Endpoint   string // "http(s)://127.0.0.1:PORT"; it may change when the agent restarts
	ConfigPath string
	StateDir   string
	LogPath    string // the agent's stdout and stderr

	mu     sync.Mutex
	addr   string // last address it listened on
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	err    error         // cmd's exit error, after exited closed
}

// Start builds the binaries if needed and starts a cluster; t.Cleanup stops it.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Nodes <= 0 {
		o.Nodes = 1
	}
	mainBinary, workloadBinary := Binaries(t)
	dir := t.TempDir()
	c := &Cluster{Dir: dir, SharedVolume: filepath.Join(dir, "shared"), Token: o.Token, TokenFile: filepath.Join(dir, "agent.token"),
		opts: o, mainBin: mainBinary, workloadBin: workloadBinary}
	if c.Token == "" {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			t.Fatal(err)
		}
		c.Token = hex.EncodeToString(raw[:])
	}
	if o.SharedVolume != "" {
		c.SharedVolume = o.SharedVolume
	}
	must(t, os.MkdirAll(c.SharedVolume, 0o755))
	if o.Traversable {
		// t.TempDir makes its directories 0700; open the ones it made.
		for d := dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+string(filepath.Separator)); d = filepath.Dir(d) {
			must(t, os.Chmod(d, 0o755))
		}
	}
	for _, w := range o.Workloads {
		must(t, os.MkdirAll(c.WorkloadDataDir(w), 0o755))
	}
	must(t, os.WriteFile(c.TokenFile, []byte(c.Token+"\n"), 0o600))
	for _, r := range o.Repositories {
		must(t, os.MkdirAll(filepath.Dir(c.passwordFile(r)), 0o700))
		must(t, os.WriteFile(c.passwordFile(r), []byte(r.Password+"\n"), 0o600))
	}
	if o.TLS {
		cert, key := writeSelfSigned(t, filepath.Join(dir, "tls"))
		c.CAFile, c.tlsFiles = cert, &[2]string{cert, key}
	}
	for i := 1; i <= o.Nodes; i++ {
		name := "node-" + strconv.Itoa(i)
		nodeDir := filepath.Join(dir, "nodes", name)
		must(t, os.MkdirAll(nodeDir, 0o755))
		c.Nodes = append(c.Nodes, &Node{Name: name, ConfigPath: filepath.Join(nodeDir, "agent.hcl"),
			StateDir: filepath.Join(nodeDir, "state"), LogPath: filepath.Join(nodeDir, "agent.log")})
	}
	t.Cleanup(func() { c.shutdown(t) })
	for _, n := range c.Nodes {
		if err := c.startAgent(n, "127.0.0.1:0"); err != nil {
			t.Fatalf("start agent %s: %v", n.Name, err)
		}
	}
	return c
}

// Node returns the named node, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (c *Cluster) node(t testing.TB, name string) *Node {
	t.Helper()
	n := c.Node(name)
	if n == nil {
		t.Fatalf("agenttest: no node %q in this cluster", name)
	}
	return n
}

// Endpoints maps node names to agent endpoints, as the cluster resource's nodes attribute wants them.
func (c *Cluster) Endpoints() map[string]string {
	out := map[string]string{}
	for _, n := range c.Nodes {
		n.mu.Lock()
		out[n.Name] = n.Endpoint
		n.mu.Unlock()
	}
	return out
}

// WorkloadDataDir is the workload's data directory on the shared volume.
func (c *Cluster) WorkloadDataDir(workload string) string {
	return filepath.Join(c.SharedVolume, "apps", workload)
}

// WorkloadStateDir is the exec workload's node-local directory on node, the
// commands' CLUSTERGUARD_STATE_DIR (where the test workload keeps its status).
func (c *Cluster) WorkloadStateDir(node, workload string) string {
	n := c.Node(node)
	if n == nil {
		return ""
	}
	return execdriver.WorkDir(agent.WorkloadStateDir(n.StateDir, workload))
}

// Client returns an agent client for node, with the cluster's token and CA
// and fast retries.
func (c *Cluster) Client(t testing.TB, node string) *client.Client {
	t.Helper()
	n := c.node(t, node)
	n.mu.Lock()
	endpoint := n.Endpoint
	n.mu.Unlock()
	o := client.Options{Node: n.Name, Endpoint: endpoint, Token: c.Token, RequestTimeout: 30 * time.Second,
		RetryMax: 2, RetryWaitMin: 20 * time.Millisecond, RetryWaitMax: 200 * time.Millisecond}
	if c.CAFile != "" {
		cfg, err := client.LoadCA(c.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		o.TLSConfig = cfg
	}
	cl, err := client.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// StopAgent stops node's agent (SIGTERM, then SIGKILL after a deadline). Its
// workloads keep running, as they would when a real agent stops.
func (c *Cluster) StopAgent(t testing.TB, node string) {
	t.Helper()
	if err := stopProcess(c.node(t, node)); err != nil {
		t.Fatalf("stop agent %s: %v", node, err)
	}
}

// StartAgent starts node's agent again, on its previous port if that is still free.
func (c *Cluster) StartAgent(t testing.TB, node string) {
	t.Helper()
	n := c.node(t, node)
	n.mu.Lock()
	running := n.cmd != nil && !closed(n.exited)
	prev := n.addr
	n.mu.Unlock()
	if running {
		t.Fatalf("agent %s is already running", node)
	}
	err := c.startAgent(n, prev)
	if errors.Is(err, errAddrInUse) {
		err = c.startAgent(n, "127.0.0.1:0")
	}
	if err != nil {
		t.Fatalf("restart agent %s: %v", node, err)
	}
}

// StartWorkload starts workload on node through the agent's API.
func (c *Cluster) StartWorkload(t testing.TB, node, workload string) {
	t.Helper()
	c.action(t, node, workload, agent.ActionStart, api.StateActive)
}

// StopWorkload stops workload on node through the agent's API.
func (c *Cluster) StopWorkload(t testing.TB, node, workload string) {
	t.Helper()
	c.action(t, node, workload, agent.ActionStop, api.StateInactive)
}

// MoveWorkload stops workload on from and starts it on to.
func (c *Cluster) MoveWorkload(t testing.TB, workload, from, to string) {
	t.Helper()
	c.StopWorkload(t, from, workload)
	c.StartWorkload(t, to, workload)
}

func (c *Cluster) action(t testing.TB, node, workload, action, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.Client(t, node).Action(ctx, workload, action)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", action, workload, node, err)
	}
	if res.State != want {
		t.Fatalf("%s %s on %s: state afterwards is %q, want %q", action, workload, node, res.State, want)
	}
}

// WaitWorkloadState polls node's agent until workload reports state.
func (c *Cluster) WaitWorkloadState(t testing.TB, node, workload, state string, timeout time.Duration) {
	t.Helper()
	cl := c.Client(t, node)
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		w, err := cl.Workload(ctx, workload)
		cancel()
		if err == nil && w.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("workload %s on %s did not reach %q within %v: last state %q, error %v %s", workload, node, state, timeout, w.State, err, w.Error)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

var errAddrInUse = errors.New("address in use")

func (c *Cluster) startAgent(n *Node, listen string) error {
	if err := os.WriteFile(n.ConfigPath, []byte(c.agentConfig(n, listen)), 0o644); err != nil {
		return err
	}
	addrFile := filepath.Join(n.StateDir, agent.AddrFile)
	_ = os.Remove(addrFile)
	logFile, err := os.OpenFile(n.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(c.mainBin, "agent", "--config", n.ConfigPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Agents must not outlive a test process that dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.exited, n.err = cmd, exited, nil
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(exited)
	}()

	scheme := "http"
	if c.tlsFiles != nil {
		scheme = "https"
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		if closed(exited) {
			log := tail(n.LogPath, 3000)
			if listen != "127.0.0.1:0" && strings.Contains(log, "address already in use") {
				return errAddrInUse
			}
			return fmt.Errorf("agent exited before it was ready (%w); %s ends with:\n%s", n.err, n.LogPath, log)
		}
		if data, err := os.ReadFile(addrFile); err == nil {
			addr := strings.TrimSpace(string(data))
			n.mu.Lock()
			n.addr, n.Endpoint = addr, scheme+"://"+addr
			n.mu.Unlock()
			if c.healthy(n) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = stopProcess(n)
			return fmt.Errorf("agent not healthy within %v; %s ends with:\n%s", readyTimeout, n.LogPath, tail(n.LogPath, 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) healthy(n *Node) bool {
	o := client.Options{Node: n.Name, Endpoint: n.Endpoint, RetryMax: -1, RequestTimeout: 2 * time.Second}
	if c.CAFile != "" {
		cfg, err := client.LoadCA(c.CAFile)
		if err != nil {
			return false
		}
		o.TLSConfig = cfg
	}
	cl, err := client.New(o)
	if err != nil {
		return false
	}
	h, err := cl.Health(context.Background())
	return err == nil && h.Status == "ok"
}

func (c *Cluster) agentConfig(n *Node, listen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node          = %q\nlisten        = %q\nshared_volume = %q\nstate_dir     = %q\ntoken_file    = %q\nlog_level     = \"debug\"\n",
		n.Name, listen, c.SharedVolume, n.StateDir, c.TokenFile)
	if c.tlsFiles != nil {
		fmt.Fprintf(&b, "tls {\n  cert_file = %q\n  key_file  = %q\n}\n", c.tlsFiles[0], c.tlsFiles[1])
	}
	for _, r := range c.opts.Repositories {
		fmt.Fprintf(&b, "\nrepository %q {\n  url           = %q\n  password_file = %q\n}\n", r.Name, r.URL, c.passwordFile(r))
	}
	for _, w := range c.opts.Workloads {
		fmt.Fprintf(&b, "\nworkload %q {\n  driver = \"exec\"\n  paths  = [%q]\n", w, "apps/"+w)
		if c.opts.SnapshotMethod != "" {
			fmt.Fprintf(&b, "  snapshot_method = %q\n", c.opts.SnapshotMethod)
		}
		b.WriteString("  exec {\n")
		for _, cmd := range []string{agent.ActionStatus, agent.ActionStart, agent.ActionStop, agent.ActionQuiesce, agent.ActionThaw, agent.ActionPause, agent.ActionResume} {
			fmt.Fprintf(&b, "    %-7s = [%q, %q]\n", cmd, c.workloadBin, cmd)
		}
		b.WriteString("    timeouts = { status = \"10s\" }\n")
		if len(c.opts.WorkloadEnv) > 0 {
			b.WriteString("    env = {\n")
			keys := make([]string, 0, len(c.opts.WorkloadEnv))
			for k := range c.opts.WorkloadEnv {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "      %s = %q\n", k, c.opts.WorkloadEnv[k])
			}
			b.WriteString("    }\n")
		}
		b.WriteString("  }\n}\n")
	}
	b.WriteString(c.ownershipBlock())
	b.WriteString(c.opts.ExtraConfig)
	return b.String()
}

// passwordFile is where the password of repository r is written.
func (c *Cluster) passwordFile(r Repository) string {
	return filepath.Join(c.Dir, "repositories", r.Name+".password")
}

// shutdown stops every workload process and every agent the cluster started.
func (c *Cluster) shutdown(t testing.TB) {
	for _, n := range c.Nodes {
		if !c.healthy(n) {
			continue
		}
		for _, w := range c.opts.ExtraWorkloads {
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			if _, err := c.Client(t, n.Name).Action(ctx, w, agent.ActionStop); err != nil {
				t.Logf("agenttest cleanup: stop %s on %s: %v", w, n.Name, err)
			}
			cancel()
		}
	}
	for _, n := range c.Nodes {
		for _, w := range c.opts.Workloads {
			c.stopWorkloadProcess(t, n, w)
		}
	}
	for _, n := range c.Nodes {
		if err := stopProcess(n); err != nil {
			t.Errorf("agenttest cleanup: %v", err)
		}
	}
}

// stopWorkloadProcess stops a test workload directly (not through the agent,
// which may be stopped), and kills it if that fails.
func (c *Cluster) stopWorkloadProcess(t testing.TB, n *Node, workload string) {
	stateDir := execdriver.WorkDir(agent.WorkloadStateDir(n.StateDir, workload)) // the commands' directory
	if _, err := os.Stat(filepath.Join(stateDir, testworkload.PIDFile)); err != nil {
		return // never started on this node
	}
	cmd := exec.Command(c.workloadBin, "stop", "--wait", "5s")
	cmd.Env = append(os.Environ(), "CLUSTERGUARD_STATE_DIR="+stateDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("agenttest cleanup: stop %s on %s: %v\n%s", workload, n.Name, err, out)
	}
	if data, err := os.ReadFile(filepath.Join(stateDir, testworkload.PIDFile)); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && testworkload.IsRunProcess(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// stopProcess sends SIGTERM, waits, then SIGKILL. Stopping a stopped agent is a no-op.
func stopProcess(n *Node) error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil || closed(exited) {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("agent %s ignored SIGTERM for %v and was killed; see %s", n.Name, stopTimeout, n.LogPath)
}

func closed(ch chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 (which is its
// own CA) and its key into dir.
func writeSelfSigned(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o700))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "clusterguard test agent"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	must(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
