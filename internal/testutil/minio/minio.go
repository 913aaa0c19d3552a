// Package minio starts a real MinIO server for tests: the S3 backend is tested
// against the real thing, not a fake, and it is not optional.
//
// The server binary is built once by `make minio` (tools/minio/build.sh) into
// build/bin/minio at a pinned version; CLUSTERGUARD_MINIO_BIN overrides the
// path. Each Start runs a fresh server on 127.0.0.1 with a temporary data
// directory and random root credentials, and stops it when the test ends.
//
// Only test code imports this package.
package minio

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// BinEnv names the environment variable that overrides the binary path.
const BinEnv = "CLUSTERGUARD_MINIO_BIN"

// startTimeout bounds how long a server may take to report healthy. MinIO
// usually takes 1-3 s; a loaded 2-core CI machine can take much longer.
const startTimeout = 60 * time.Second

// Server is a running MinIO server. Its endpoint speaks plain HTTP.
type Server struct {
	// Endpoint is host:port of the S3 API.
	Endpoint string
	// ConsoleAddr is host:port of the web console.
	ConsoleAddr string
	// AccessKey and SecretKey are the root credentials.
	AccessKey string
	SecretKey string
	// DataDir is the server's storage directory.
	DataDir string

	client *miniogo.Client
}

// URL returns the API base URL, http://host:port.
func (s *Server) URL() string { return "http://" + s.Endpoint }

// Start runs a MinIO server for the duration of the test. The test fails
// (does not skip) when the binary is missing.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := BinaryPath()
	if err != nil {
		t.Fatalf("%v", err)
	}
	var lastErr error
	// A free port can be taken between probing and MinIO binding it; try a
	// few times with fresh ports before giving up.
	for range 3 {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("start MinIO test server (%s): %v", bin, lastErr)
	return nil
}

// BinaryPath returns the MinIO binary to run: $CLUSTERGUARD_MINIO_BIN, else
// <repo root>/build/bin/minio. The error says how to build it.
func BinaryPath() (string, error) {
	if p := os.Getenv(BinEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("MinIO test server binary %s (from %s) is not usable: %w; run `make minio` and unset %s, or point it at a MinIO binary", p, BinEnv, err, BinEnv)
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", fmt.Errorf("find the MinIO test server: %w; set %s to a MinIO binary", err, BinEnv)
	}
	p := filepath.Join(root, "build", "bin", "minio")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("MinIO test server binary not found at %s: run `make minio` (tools/minio/build.sh builds the pinned version, a few minutes once), or set %s", p, BinEnv)
	}
	return p, nil
}

// repoRoot walks up from the working directory (a test's package directory)
// to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

var errPortTaken = errors.New("port already in use")

func start(t testing.TB, bin string) (*Server, error) {
	t.Helper()
	tmp := t.TempDir()
	s := &Server{
		DataDir:   filepath.Join(tmp, "data"),
		AccessKey: "test-" + randomHex(8),
		SecretKey: randomHex(20),
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s.Endpoint = fmt.Sprintf("127.0.0.1:%d", ports[0])
	s.ConsoleAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	for _, d := range []string{s.DataDir, filepath.Join(tmp, "certs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}

	logPath := filepath.Join(tmp, "minio.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor

	cmd := exec.Command(bin, "server",
		"--address", s.Endpoint,
		"--console-address", s.ConsoleAddr,
		"--certs-dir", filepath.Join(tmp, "certs"),
		"--quiet",
		s.DataDir)
	cmd.Env = append(withoutMinioEnv(os.Environ()),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_UPDATE=off",
		// CI mode skips checks meant for production drives (e.g. refusing a
		// data directory on the root disk).
		"MINIO_CI_CD=on",
		"HOME="+tmp,
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// If the test binary dies without running cleanups, take MinIO with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Kill()
		<-exited
	}

	if err := waitHealthy(s, exited); err != nil {
		stop()
		log, _ := os.ReadFile(logPath)
		if bytes.Contains(log, []byte("already in use")) {
			return nil, fmt.Errorf("%w: %s", errPortTaken, tail(log))
		}
		if errors.Is(err, errExited) {
			err = fmt.Errorf("%w (%w)", err, waitErr)
		}
		return nil, fmt.Errorf("%w; server log:\n%s", err, tail(log))
	}
	t.Cleanup(stop)

	s.client, err = miniogo.New(s.Endpoint, &miniogo.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: false,
	})
	if err != nil {
		stop()
		return nil, err
	}
	return s, nil
}

var errExited = errors.New("MinIO exited during startup")

// waitHealthy polls the liveness endpoint until it answers 200 without the
// "offline" status header, the process exits, or the deadline passes. MinIO
// answers 200 as soon as it listens but marks itself offline until its object
// layer is up; requests before that fail with "Server not initialized yet".
func waitHealthy(s *Server, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	url := s.URL() + "/minio/health/live"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Minio-Server-Status") != "offline" {
				return nil
			}
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("MinIO did not report healthy at %s within %s", url, startTimeout)
		case <-tick.C:
		}
	}
}

// NewBucket creates a bucket with a fresh random name and returns the name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "test-" + randomHex(10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.client.MakeBucket(ctx, name, miniogo.MakeBucketOptions{}); err != nil {
		t.Fatalf("create bucket %s on MinIO at %s: %v", name, s.Endpoint, err)
	}
	return name
}

// Client returns a minio-go client with root credentials, for tests that
// inspect the bucket directly.
func (s *Server) Client() *miniogo.Client { return s.client }

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// withoutMinioEnv drops MINIO_* variables from the caller's environment so a
// developer's own MinIO settings cannot change the test server.
func withoutMinioEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "MINIO_") {
			out = append(out, kv)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(b []byte) string {
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
