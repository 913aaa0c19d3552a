// Package postgres starts a real, throwaway PostgreSQL server for tests: the
// PostgreSQL catalog is tested against the real thing, and the test fails
// (does not skip) when the server binaries are missing.
//
// The binaries come from $CLUSTERGUARD_POSTGRES_BIN (a directory holding
// initdb and postgres), else the newest /usr/lib/postgresql/*/bin, else PATH.
// Each Start runs initdb into a fresh temporary directory and a server on a
// free 127.0.0.1 port with its unix socket in that directory; the server is
// stopped and the directory removed when the test ends. PostgreSQL refuses
// to run as root, so under root the server runs as the "postgres" (or else
// "nobody") user.
//
// Only test code imports this package.
package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// BinDirEnv names the environment variable that overrides the directory of
// the PostgreSQL server binaries.
const BinDirEnv = "CLUSTERGUARD_POSTGRES_BIN"

// startTimeout bounds initdb plus server start-up on a loaded 2-core machine.
const startTimeout = 60 * time.Second

// Server is a running PostgreSQL server. Its superuser is "postgres" with
// trust authentication (no password), reachable only from this machine.
type Server struct {
	Host      string // 127.0.0.1
	Port      int
	SocketDir string
	DataDir   string

	admin *sql.DB
	dbSeq atomic.Int64
}

// URL returns a connection URL for database on the server.
func (s *Server) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates a new, empty database and returns its URL. Tests
// that need isolation from each other take one each.
func (s *Server) CreateDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d", s.dbSeq.Add(1))
	if _, err := s.admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create PostgreSQL database %s: %v", name, err)
	}
	return s.URL(name)
}

// Start runs a PostgreSQL server for the duration of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		t.Fatalf("%v", err)
	}
	var lastErr error
	// A free port can be taken between probing and the server binding it;
	// try a few fresh ports before giving up.
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
	t.Fatalf("start PostgreSQL test server (%s): %v", bin, lastErr)
	return nil
}

// BinDir finds the directory holding initdb and postgres. The error says how
// to install them.
func BinDir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(BinDirEnv); d != "" {
		if !has(d) {
			return "", fmt.Errorf("%s=%s does not hold initdb and postgres: point it at a PostgreSQL bin directory or unset it", BinDirEnv, d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first.
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("PostgreSQL server binaries (initdb, postgres) not found in $%s, /usr/lib/postgresql/*/bin or PATH: "+
		"install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql) or set %s to its bin directory", BinDirEnv, BinDirEnv)
}

var errPortTaken = errors.New("port already in use")

func start(t testing.TB, bin string) (*Server, error) {
	t.Helper()
	cred, owner, err := serverCredential()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: the directory must be reachable by the server's user,
	// and the socket path must stay under the 107-byte limit.
	base, err := os.MkdirTemp("", "cg-pg-")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	s := &Server{Host: "127.0.0.1", SocketDir: base, DataDir: filepath.Join(base, "data")}
	logPath := filepath.Join(base, "server.log")
	if err := os.WriteFile(logPath, nil, 0o600); err != nil {
		return nil, err
	}
	if cred != nil {
		for _, p := range []string{base, logPath} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("hand %s to user %s for the PostgreSQL server: %w", p, owner, err)
			}
		}
	}
	env := []string{"PATH=" + bin + ":/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", "HOME=" + base}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", s.DataDir, "-U", "postgres", "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync")
	initdb.Env = env
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb as user %s: %w\n%s", owner, err, out)
	}

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.Port = port
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	// Run postgres itself as a child rather than daemonised by pg_ctl, so
	// it dies with the test binary (Pdeathsig) instead of lingering.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", s.DataDir,
		"-c", "listen_addresses="+s.Host,
		"-p", strconv.Itoa(port),
		"-c", "unix_socket_directories="+s.SocketDir,
		"-c", "max_connections=100",
		// A test server needs no durability; these make it faster.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
	)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s as user %s: %w", cmd.Path, owner, err)
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
		// SIGINT is PostgreSQL's "fast shutdown": roll back and exit.
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	s.admin, err = sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		stop()
		return nil, err
	}
	if err := waitReady(ctx, s.admin, exited); err != nil {
		s.admin.Close()
		stop()
		log, _ := os.ReadFile(logPath)
		if bytes.Contains(log, []byte("Address already in use")) {
			return nil, fmt.Errorf("%w: %s", errPortTaken, log)
		}
		if errors.Is(err, errExited) {
			err = fmt.Errorf("%w (%w)", err, waitErr)
		}
		return nil, fmt.Errorf("%w; server log:\n%s", err, log)
	}
	t.Cleanup(func() {
		s.admin.Close()
		stop()
	})
	return s, nil
}

var errExited = errors.New("PostgreSQL server exited during start-up")

// waitReady polls until the server accepts a query, it exits, or ctx ends.
func waitReady(ctx context.Context, db *sql.DB, exited <-chan struct{}) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL server not ready after %s: %w", startTimeout, err)
		case <-tick.C:
		}
	}
}

// serverCredential returns the identity to run the server as: nil (the
// current user) unless that is root, which PostgreSQL refuses.
func serverCredential() (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		return nil, "(current user)", nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, name, nil
	}
	return nil, "", errors.New("running as root, and PostgreSQL refuses to: no \"postgres\" or \"nobody\" user to run the test server as; create one (useradd --system postgres) or run the tests as a regular user")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
