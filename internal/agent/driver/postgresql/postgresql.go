// Package postgresql is the workload driver for a PostgreSQL server whose
// data directory lives on the shared volume: the agent of the node the
// database is active on runs its postmaster; any other node can take it over
// after it is stopped there (E12).
//
// The driver knows which server is its own from a node-local record of the
// postmaster's pid (written by Start), never from postmaster.pid on the
// shared volume, which names a process on whichever node ran the server
// last. A recorded postmaster that died without Stop is reported failed.
// Beside postmaster.pid, an owner record in the data directory names the
// node (and boot) that started the server, so a start never removes a lock
// that may belong to a server running on another machine. Neither file is
// copied into a recovery point (CopyExcluder).
//
// Consistency: an application-consistent backup is taken online by
// default (OnlineBackup, online.go): PostgreSQL's non-exclusive
// pg_backup_start/pg_backup_stop on one session, the data directory copied
// while the server runs, then the backup label and the WAL from the start
// to the stop position added to the copy, which a server started on it
// replays to hold exactly what was committed before pg_backup_stop
// returned. Nothing is frozen. It needs PostgreSQL 10 or newer, wal_level
// replica or logical, a free replication slot, and a session the agent can
// open itself as DatabaseUser over the Unix socket.
//
// With BackupMethod "freeze", and for crash consistency always, the server
// is frozen instead: Quiesce runs CHECKPOINT (so recovery after a restore has
// little WAL to replay), then stops every process of the server with
// SIGSTOP; Pause does the same without the checkpoint (M6). Either way the
// copy taken while the server is frozen is exactly the on-disk state of an
// instant, which PostgreSQL recovers from on the next start as from a power
// cut, with every transaction committed before the freeze. Thaw and Resume
// continue the processes. A node-local marker records a freeze until the
// thaw, so an agent that died mid-backup continues the server when it
// starts again (its own thaw deadline died with it).
//
// Start runs pg_ctl as the configured operating-system user (PostgreSQL
// refuses to run as root); Stop sends the postmaster SIGINT (fast shutdown:
// open transactions roll back) and waits for it to exit.
package postgresql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/marker"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
)

// DefaultTimeout bounds start, stop and checkpoint when Config.Timeout is 0.
const DefaultTimeout = 60 * time.Second

// pidRecord is the node-local file naming the postmaster this node started.
const pidRecord = "postmaster.pid"

// Config is one PostgreSQL workload on one node.
type Config struct {
	Workload string
	// Node is this agent's node name, recorded beside a server it starts.
	Node string
	// DataDir is the server's data directory (absolute, on the shared volume).
	DataDir string
	// BinDir holds pg_ctl and psql; default: the newest
	// /usr/lib/postgresql/*/bin, else PATH.
	BinDir string
	// Port the server listens on (TCP and the Unix socket's name).
	Port int
	// ListenAddresses is the server's listen_addresses; default "localhost".
	ListenAddresses string
	// User is the operating-system user the server runs as; default
	// "postgres" when the agent runs as root, else the agent's own user.
	User string
	// DatabaseUser is the role CHECKPOINT runs as; default "postgres".
	DatabaseUser string
	// SocketDir is where the server puts its Unix socket; default the
	// system's temporary directory (PostgreSQL's own default), which the
	// server's user can reach whatever the agent's directories allow.
	SocketDir string
	// StateDir is node-local: the server log and the pid record live there.
	StateDir string
	Timeout  time.Duration
	Logger   *slog.Logger

	// BackupMethod takes application-consistent copies: "online" (the
	// default: pg_backup_start/pg_backup_stop, never frozen) or "freeze"
	// (CHECKPOINT, then the server stopped for the copy). Crash-consistent
	// copies always freeze.
	BackupMethod string
}

// Driver operates one PostgreSQL server.
type Driver struct {
	cfg  Config
	cred *syscall.Credential // nil: run as the agent's user
	uid  int
	gid  int
	log  *slog.Logger

	beforeStop func() // test hook: runs right before pg_backup_stop is called
	afterStop  func() // test hook: runs as soon as pg_backup_stop returns
}

// New checks cfg, resolves the server's user and binaries, and creates the
// node-local state directory.
func New(cfg Config) (*Driver, error) {
	if cfg.DataDir == "" || !filepath.IsAbs(cfg.DataDir) {
		return nil, fmt.Errorf("postgresql workload %q: data directory %q must be an absolute path", cfg.Workload, cfg.DataDir)
	}
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("postgresql workload %q: port %d is not a TCP port (1-65535)", cfg.Workload, cfg.Port)
	}
	if cfg.ListenAddresses == "" {
		cfg.ListenAddresses = "localhost"
	}
	// Both reach pg_ctl's -o, which a shell splits: no quotes or shell syntax.
	for name, v := range map[string]string{"listen_addresses": cfg.ListenAddresses, "socket directory": cfg.SocketDir} {
		if strings.ContainsAny(v, "'\"\\$`;&|<>(){}\n") {
			return nil, fmt.Errorf("postgresql workload %q: %s %q holds quotes or shell characters; give host names or addresses separated by commas", cfg.Workload, name, v)
		}
	}
	if cfg.DatabaseUser == "" {
		cfg.DatabaseUser = "postgres"
	}
	switch cfg.BackupMethod {
	case "":
		cfg.BackupMethod = MethodOnline
	case MethodOnline, MethodFreeze:
	default:
		return nil, fmt.Errorf("postgresql workload %q: backup_method %q: use %q or %q", cfg.Workload, cfg.BackupMethod, MethodOnline, MethodFreeze)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BinDir == "" {
		cfg.BinDir = FindBinDir()
	}
	for _, prog := range []string{"pg_ctl", "psql"} {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, prog)); err != nil {
			return nil, fmt.Errorf("postgresql workload %q: %s not found in bin_dir %q: install the PostgreSQL server or set bin_dir", cfg.Workload, prog, cfg.BinDir)
		}
	}
	d := &Driver{cfg: cfg, uid: os.Getuid(), gid: os.Getgid(), log: cfg.Logger.With("workload", cfg.Workload, "driver", "postgresql")}
	if cfg.User == "" && os.Geteuid() == 0 {
		cfg.User, d.cfg.User = "postgres", "postgres"
	}
	if cfg.User != "" {
		u, err := user.Lookup(cfg.User)
		if err != nil {
			return nil, fmt.Errorf("postgresql workload %q: user %q: %w; create it or set user to the owner of the data directory", cfg.Workload, cfg.User, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if uid == 0 {
			return nil, fmt.Errorf("postgresql workload %q: PostgreSQL refuses to run as root; set user to the owner of the data directory", cfg.Workload)
		}
		d.uid, d.gid = uid, gid
		if uid != os.Getuid() {
			// The user's own groups, not the agent's (root's group among them).
			var groups []uint32
			if ids, err := u.GroupIds(); err == nil {
				for _, id := range ids {
					if g, err := strconv.ParseUint(id, 10, 32); err == nil {
						groups = append(groups, uint32(g))
					}
				}
			}
			d.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}
		}
	}
	if d.cfg.SocketDir == "" {
		d.cfg.SocketDir = os.TempDir()
	}
	if err := marker.SecureDir(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("postgresql workload %q: %w", cfg.Workload, err)
	}
	d.thawLeftFrozen()
	return d, nil
}

// FindBinDir returns the newest /usr/lib/postgresql/*/bin holding pg_ctl,
// else the directory of pg_ctl on PATH, else "".
func FindBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	if p, err := osexec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func (d *Driver) socketDir() string { return d.cfg.SocketDir }
func (d *Driver) logPath() string   { return filepath.Join(d.cfg.StateDir, "postgresql.log") }

// InitDB creates a new, empty database cluster in the data directory, owned
// by the server's user, unless one is there. It is for setting up a
// workload (and for tests); backups and restores never call it. Local
// connections are trusted: give the cluster real authentication before
// it serves anyone else.
func (d *Driver) InitDB(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(d.cfg.DataDir, "PG_VERSION")); err == nil {
		return nil
	}
	parent := filepath.Dir(d.cfg.DataDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("initdb %s: %w", d.cfg.Workload, err)
	}
	if err := os.Chown(parent, d.uid, d.gid); err != nil {
		return fmt.Errorf("initdb %s: hand %s to the server's user: %w", d.cfg.Workload, parent, err)
	}
	out, err := d.run(ctx, filepath.Join(d.cfg.BinDir, "initdb"), "-D", d.cfg.DataDir, "-U", d.cfg.DatabaseUser,
		"--auth=trust", "--no-locale", "-E", "UTF8")
	if err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", d.cfg.Workload, err, out)
	}
	return nil
}

// Status is active while the postmaster this node started runs; inactive if
// it never started one or stopped it; failed if it died on its own.
func (d *Driver) Status(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return api.StateUnknown, fmt.Errorf("status of %s: %w", d.cfg.Workload, err)
	}
	pid, err := d.recordedPID()
	if err != nil {
		return api.StateUnknown, err
	}
	if pid != 0 && d.isOurPostmaster(pid) {
		return api.StateActive, nil
	}
	if pid == 0 {
		// No server of ours, but its processes may outlive it: backends
		// orphaned by a killed postmaster keep writing the data directory.
		if left := proc.Find(d.processes()); len(left) > 0 {
			return api.StateFailed, fmt.Errorf("processes %v of the PostgreSQL server of %s still run in its data directory %s without a postmaster of this node: stop them (the agent's Kill does)", left, d.cfg.Workload, d.cfg.DataDir)
		}
		return api.StateInactive, nil
	}
	return api.StateFailed, fmt.Errorf("the PostgreSQL server (pid %d) exited without being stopped; see %s", pid, d.logPath())
}

// Start starts the server unless this node runs it already.
func (d *Driver) Start(ctx context.Context) error {
	if pid, err := d.recordedPID(); err != nil {
		return err
	} else if pid != 0 && d.isOurPostmaster(pid) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(d.cfg.DataDir, "PG_VERSION")); err != nil {
		return fmt.Errorf("start %s: no PostgreSQL data directory at %s (%w): create it with initdb as %s, or restore it", d.cfg.Workload, d.cfg.DataDir, err, d.userName())
	}
	if err := d.clearStaleLock(); err != nil {
		return err
	}
	if pid, err := d.recordedPID(); err == nil && pid != 0 && d.isOurPostmaster(pid) {
		return nil // adopted a server already running on this node
	}
	// The agent opens the log and hands it to pg_ctl (and so to the
	// server) as its output: the server's user need not reach the agent's
	// state directory.
	logFile, err := os.OpenFile(d.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return fmt.Errorf("start %s: server log: %w", d.cfg.Workload, err)
	}
	defer logFile.Close()
	opts := fmt.Sprintf("-p %d -c listen_addresses='%s' -c unix_socket_directories='%s'", d.cfg.Port, d.cfg.ListenAddresses, d.socketDir())
	secs := strconv.Itoa(int(d.cfg.Timeout.Seconds()))
	if err := d.runTo(ctx, logFile, filepath.Join(d.cfg.BinDir, "pg_ctl"), "start", "-D", d.cfg.DataDir, "-w", "-t", secs, "-o", opts); err != nil {
		return fmt.Errorf("start %s: pg_ctl start: %w; server log %s:\n%s", d.cfg.Workload, err, d.logPath(), tail(d.logPath()))
	}
	pid, err := d.postmasterFromDataDir()
	if err != nil {
		return fmt.Errorf("start %s: %w", d.cfg.Workload, err)
	}
	if err := d.writePIDRecord(pid); err != nil {
		return fmt.Errorf("start %s: record pid: %w", d.cfg.Workload, err)
	}
	if err := d.writeOwner(pid); err != nil {
		return fmt.Errorf("start %s: owner record: %w", d.cfg.Workload, err)
	}
	d.log.Info("postgresql started", "pid", pid, "port", d.cfg.Port)
	return nil
}

// Stop shuts this node's server down (fast shutdown) and waits for it.
func (d *Driver) Stop(ctx context.Context) error {
	pid, err := d.recordedPID()
	if err != nil {
		return err
	}
	if pid != 0 && d.isOurPostmaster(pid) {
		d.signalAll(pid, syscall.SIGCONT) // a frozen server cannot shut down
		if err := syscall.Kill(pid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop %s: signal postmaster %d: %w", d.cfg.Workload, pid, err)
		}
		// The shutdown, once asked for, runs its course even if the caller
		// goes away: the records must follow what the server did.
		if !d.waitGone(context.WithoutCancel(ctx), pid, d.cfg.Timeout) {
			return fmt.Errorf("stop %s: the server (pid %d) did not shut down within %v; see %s", d.cfg.Workload, pid, d.cfg.Timeout, d.logPath())
		}
		d.log.Info("postgresql stopped", "pid", pid)
	}
	_ = d.frozenMarker().Clear() // a stopped server is not frozen
	if pid != 0 {
		// The server's processes may outlive its postmaster: exiting, or
		// backends orphaned by a postmaster that died (a CPU-bound query
		// does not notice). Waited for a moment, then killed: without a
		// postmaster they are no server, only writers of the data directory.
		if !proc.WaitUntil(context.WithoutCancel(ctx), 2*time.Second, func() bool { return len(proc.Find(d.processes())) == 0 }) {
			if _, left := proc.KillTree(d.processes(), 5*time.Second); len(left) > 0 {
				return fmt.Errorf("stop %s: server processes %v still run in the data directory %s after SIGKILL; kill them by hand", d.cfg.Workload, left, d.cfg.DataDir)
			}
		}
		// The server this node ran is gone (stopped, or it died): its lock
		// and owner record would only keep another node from starting it.
		if o, ok := d.readOwner(); ok && o.Node == d.cfg.Node {
			_ = os.Remove(filepath.Join(d.cfg.DataDir, "postmaster.pid"))
			_ = os.Remove(d.ownerPath())
		}
	}
	if err := os.Remove(filepath.Join(d.cfg.StateDir, pidRecord)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stop %s: %w", d.cfg.Workload, err)
	}
	return nil
}

// watchdogVar, in the environment of every program the driver runs and so
// of the server pg_ctl starts, names the agent's state directory and the
// data directory: the agent's watchdog finds and kills the server by it,
// and not the server of another agent on the same host (a test rig) that
// uses the same data directory. The backends overwrite their environment
// with their process title: they are found below the postmaster, or by
// their working directory (WatchdogCwd).
const watchdogVar = "CLUSTERGUARD_POSTGRESQL_DATA_DIR"

// WatchdogEnv is the environment entry of this workload's postmaster.
func (d *Driver) WatchdogEnv() string {
	return watchdogVar + "=" + d.cfg.StateDir + ":" + d.cfg.DataDir
}

// WatchdogCwd is the working directory of every server process (the data
// directory, symlinks resolved as /proc shows it).
func (d *Driver) WatchdogCwd() string {
	if p, err := filepath.EvalSymlinks(d.cfg.DataDir); err == nil {
		return p
	}
	return d.cfg.DataDir
}

// WatchdogComm is the process name of every server process.
func (d *Driver) WatchdogComm() string { return "postgres" }

// processes finds this workload's server processes: the postmaster, every
// process below it, and any process left in the data directory that runs
// under no other agent's server (a backend orphaned by a killed
// postmaster, still writing) — by the name postgres: an operator's shell
// in the data directory is not the server.
func (d *Driver) processes() proc.Match {
	return proc.Match{Env: d.WatchdogEnv(), Cwd: d.WatchdogCwd(), Comm: d.WatchdogComm()}
}

// Kill forces the server down at once: immediate shutdown (SIGQUIT; the
// next start recovers from the WAL) for at most half a second, then the
// whole process tree (postmaster, backends, and orphans in the data
// directory) is stopped and SIGKILLed; its records are then removed as by
// Stop.
func (d *Driver) Kill(ctx context.Context) error {
	pid, err := d.recordedPID()
	if err != nil {
		return err
	}
	if pid != 0 && d.isOurPostmaster(pid) {
		d.signalAll(pid, syscall.SIGCONT) // a frozen server cannot shut down
		_ = syscall.Kill(pid, syscall.SIGQUIT)
		d.waitGone(ctx, pid, 500*time.Millisecond)
	}
	killed, left := proc.KillTree(d.processes(), 5*time.Second)
	if len(left) > 0 {
		return fmt.Errorf("kill %s: server processes %v still run after SIGKILL", d.cfg.Workload, left)
	}
	if pid != 0 || len(killed) > 0 {
		d.log.Warn("postgresql forced down", "pid", pid, "killed", killed)
	}
	return d.Stop(ctx) // the server is gone: Stop only removes its records
}

// Quiesce checkpoints, then freezes every process of the server.
func (d *Driver) Quiesce(ctx context.Context) error {
	pid, err := d.runningPID()
	if err != nil {
		return fmt.Errorf("quiesce %s: %w", d.cfg.Workload, err)
	}
	psql := filepath.Join(d.cfg.BinDir, "psql")
	if out, err := d.run(ctx, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", d.socketDir(), "-p", strconv.Itoa(d.cfg.Port),
		"-U", d.cfg.DatabaseUser, "-d", "postgres", "-c", "CHECKPOINT"); err != nil {
		return fmt.Errorf("quiesce %s: CHECKPOINT: %w\n%s", d.cfg.Workload, err, out)
	}
	return d.freeze(ctx, pid)
}

// Thaw continues the frozen server.
func (d *Driver) Thaw(ctx context.Context) error { return d.Resume(ctx) }

// CanPause: the server can always be frozen without a checkpoint.
func (d *Driver) CanPause() bool { return true }

// Pause freezes every process of the server (crash consistency, M6).
func (d *Driver) Pause(ctx context.Context) error {
	pid, err := d.runningPID()
	if err != nil {
		return fmt.Errorf("pause %s: %w", d.cfg.Workload, err)
	}
	return d.freeze(ctx, pid)
}

// Resume continues the server's processes.
func (d *Driver) Resume(ctx context.Context) error {
	pid, err := d.recordedPID()
	if err != nil {
		return err
	}
	if pid == 0 || !d.isOurPostmaster(pid) {
		_ = d.frozenMarker().Clear() // nothing of ours to continue
		return nil
	}
	d.signalAll(pid, syscall.SIGCONT)
	if n := d.waitStopped(ctx, pid, false); n > 0 {
		return fmt.Errorf("resume %s: %d server processes still stopped %v after SIGCONT", d.cfg.Workload, n, d.cfg.Timeout)
	}
	if err := d.frozenMarker().Clear(); err != nil {
		return fmt.Errorf("resume %s: %w", d.cfg.Workload, err)
	}
	return nil
}

// frozenMarker exists from a freeze to the next resume, so an agent that
// died in between continues the server when it starts again: the agent's
// own thaw deadline died with it.
func (d *Driver) frozenMarker() marker.Marker { return marker.New(d.cfg.StateDir, "frozen") }

func (d *Driver) thawLeftFrozen() {
	_ = d.frozenMarker().Recover(d.log, d.cfg.Timeout, "frozen", d.Resume) // logged; the next thaw tries again
}

func (d *Driver) runningPID() (int, error) {
	pid, err := d.recordedPID()
	if err != nil {
		return 0, err
	}
	if pid == 0 || !d.isOurPostmaster(pid) {
		return 0, errors.New("the server is not running on this node")
	}
	return pid, nil
}

// freeze stops every process of the server and returns once all of them
// are stopped: a signal is delivered asynchronously, and the copy must not
// begin while one of them can still write.
func (d *Driver) freeze(ctx context.Context, postmaster int) error {
	if err := d.frozenMarker().Set("postmaster " + strconv.Itoa(postmaster)); err != nil {
		return fmt.Errorf("freeze %s: %w", d.cfg.Workload, err)
	}
	d.signalAll(postmaster, syscall.SIGSTOP)
	if n := d.waitStopped(ctx, postmaster, true); n > 0 {
		d.signalAll(postmaster, syscall.SIGCONT)
		return fmt.Errorf("freeze %s: %d server processes still running %v after SIGSTOP; continued them", d.cfg.Workload, n, d.cfg.Timeout)
	}
	return nil
}

// waitStopped polls until every process of the server is stopped (or none
// is) and returns how many are not yet, once Timeout passes.
func (d *Driver) waitStopped(ctx context.Context, postmaster int, stopped bool) int {
	pending := func() int {
		n := 0
		for _, p := range append(proc.Descendants(postmaster), postmaster) {
			if proc.Alive(p) && proc.Stopped(p) != stopped {
				n++
			}
		}
		return n
	}
	proc.WaitUntil(ctx, d.cfg.Timeout, func() bool { return pending() == 0 })
	return pending()
}

// signalAll signals the postmaster first (so it forks no new process while
// its children are stopped, or is the last to continue), then every process
// below it: backends, and programs they run (archive_command, COPY TO
// PROGRAM), which could write too.
func (d *Driver) signalAll(postmaster int, sig syscall.Signal) {
	if sig == syscall.SIGCONT {
		for _, c := range proc.Descendants(postmaster) {
			_ = syscall.Kill(c, sig)
		}
		_ = syscall.Kill(postmaster, sig)
		return
	}
	_ = syscall.Kill(postmaster, sig)
	for _, c := range proc.Descendants(postmaster) {
		_ = syscall.Kill(c, sig)
	}
}

// writePIDRecord replaces the record atomically: a Status running beside
// Start never reads it half-written, nor does an agent after a crash.
func (d *Driver) writePIDRecord(pid int) error {
	return marker.WriteFile(filepath.Join(d.cfg.StateDir, pidRecord), []byte(strconv.Itoa(pid)+"\n"))
}

func (d *Driver) recordedPID() (int, error) {
	data, err := os.ReadFile(filepath.Join(d.cfg.StateDir, pidRecord))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: read pid record: %w", d.cfg.Workload, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: pid record %s holds %q; remove it if no server of this workload runs on this node", d.cfg.Workload, filepath.Join(d.cfg.StateDir, pidRecord), data)
	}
	return pid, nil
}

// isOurPostmaster: pid is alive (not a zombie) and runs postgres on this
// workload's data directory.
func (d *Driver) isOurPostmaster(pid int) bool {
	args := proc.Args(pid)
	return proc.Alive(pid) && len(args) > 0 && filepath.Base(args[0]) == "postgres" && slices.Contains(args, d.cfg.DataDir)
}

// ownerRecord names the node (and boot) whose agent started the server now
// using the data directory. It lives in the data directory, is removed by a
// clean Stop, and is never copied into a recovery point.
const ownerRecord = "clusterguard.owner"

type owner struct {
	Node   string `json:"node"`
	BootID string `json:"boot_id"`
	PID    int    `json:"pid"`
}

func (d *Driver) ownerPath() string { return filepath.Join(d.cfg.DataDir, ownerRecord) }

// ExcludeFromCopy keeps the files describing the running server out of
// recovery points, as pg_basebackup does: restored, postmaster.pid would
// name a process of the node that took the copy.
func (d *Driver) ExcludeFromCopy() []string {
	return []string{filepath.Join(d.cfg.DataDir, "postmaster.pid"), filepath.Join(d.cfg.DataDir, "postmaster.opts"), d.ownerPath()}
}

func (d *Driver) readOwner() (owner, bool) {
	var o owner
	data, err := os.ReadFile(d.ownerPath())
	if err != nil || json.Unmarshal(data, &o) != nil {
		return owner{}, false
	}
	return o, true
}

func (d *Driver) writeOwner(pid int) error {
	data, _ := json.Marshal(owner{Node: d.cfg.Node, BootID: bootID(), PID: pid})
	// The data directory is the server's user's: a new file and a rename,
	// so a link that user planted is replaced, never written through.
	return marker.WriteFile(d.ownerPath(), data)
}

// bootID changes when the machine restarts: a pid recorded before is
// meaningless after.
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// clearStaleLock decides about a postmaster.pid left in the data directory
// before a start. PostgreSQL's own check (is that pid alive?) only means
// something on the machine that wrote it, so the owner record says which
// node that was:
//   - a live server of this data directory that this node started is
//     adopted;
//   - a lock this node left (its server died, or the machine restarted) is
//     stale and removed;
//   - a lock another node wrote, or no record at all, may belong to a server
//     still running elsewhere: refused, never removed, because two servers
//     on one data directory corrupt it.
func (d *Driver) clearStaleLock() error {
	lock := filepath.Join(d.cfg.DataDir, "postmaster.pid")
	data, err := os.ReadFile(lock)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("start %s: read %s: %w", d.cfg.Workload, lock, err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	o, known := d.readOwner()
	ours := known && o.Node == d.cfg.Node
	switch {
	case ours && o.BootID == bootID() && pid > 0 && d.isOurPostmaster(pid):
		d.log.Info("postgresql already running on this node; adopting it", "pid", pid)
		return d.writePIDRecord(pid)
	case ours:
		d.log.Info("removing the postmaster.pid of a server this node ran, which is gone", "pid", first)
		if err := os.Remove(lock); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("start %s: remove stale %s: %w", d.cfg.Workload, lock, err)
		}
		return nil
	case known:
		return fmt.Errorf("start %s: %s names a server (pid %s) that node %s started, which may still run there: stop the workload on %s first (the engine does before starting it elsewhere); if that server is gone, remove %s", d.cfg.Workload, lock, first, o.Node, o.Node, lock)
	default:
		return fmt.Errorf("start %s: %s names a server (pid %s) that no agent started here, which may still run: stop it; if it is gone, remove %s", d.cfg.Workload, lock, first, lock)
	}
}

// postmasterFromDataDir reads the pid pg_ctl's server wrote: the first line
// of postmaster.pid.
func (d *Driver) postmasterFromDataDir() (int, error) {
	data, err := os.ReadFile(filepath.Join(d.cfg.DataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("the server started but left no postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || !d.isOurPostmaster(pid) {
		return 0, fmt.Errorf("postmaster.pid names %q, which is not a running server of %s", first, d.cfg.DataDir)
	}
	return pid, nil
}

func (d *Driver) waitGone(ctx context.Context, pid int, timeout time.Duration) bool {
	return proc.WaitUntil(ctx, timeout, func() bool { return !d.isOurPostmaster(pid) })
}

// run runs a PostgreSQL program as the server's user, bounded by Timeout,
// and returns its output.
func (d *Driver) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout+5*time.Second)
	defer cancel()
	cmd := d.command(ctx, prog, args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return out, err
}

// runTo runs a program with its output going to out.
func (d *Driver) runTo(ctx context.Context, out *os.File, prog string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout+5*time.Second)
	defer cancel()
	cmd := d.command(ctx, prog, args...)
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

func (d *Driver) command(ctx context.Context, prog string, args ...string) *osexec.Cmd {
	cmd := osexec.CommandContext(ctx, prog, args...)
	cmd.Dir = "/" // the server's user may not reach the agent's directories
	cmd.Env = []string{"PATH=" + d.cfg.BinDir + ":/usr/bin:/bin", "LC_ALL=C", "PGCONNECT_TIMEOUT=10", d.WatchdogEnv()}
	// Its own process group, so pg_ctl's daemonised server is not killed
	// with the agent's group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: d.cred, Setpgid: true}
	return cmd
}

func (d *Driver) userName() string {
	if d.cfg.User != "" {
		return d.cfg.User
	}
	return "the agent's user"
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 2048 {
		data = data[len(data)-2048:]
	}
	return string(data)
}
