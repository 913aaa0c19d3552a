package postgresql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/racy"
)

// MinOnlineVersion is the oldest server the online backup supports: the
// non-exclusive protocol with its (wait_for_archive) argument, temporary
// replication slots and pg_walfile_name all exist from PostgreSQL 10.
const MinOnlineVersion = 100000

// Online backup methods, as recorded in a backup's result.
const (
	MethodOnline = "online" // pg_backup_start/pg_backup_stop, never frozen
	MethodFreeze = "freeze" // CHECKPOINT (or not) and SIGSTOP for the copy
)

// onlineExcludedDirs are the directories whose contents pg_basebackup
// leaves out: runtime state the server rebuilds, or (pg_wal) what the
// backup supplies itself. The directories are recreated empty in the copy.
var onlineExcludedDirs = []string{"pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_subtrans", "pg_stat_tmp"}

// onlineExcludedFiles are left out as pg_basebackup does; backup_label and
// tablespace_map are written from pg_backup_stop's answer instead.
var onlineExcludedFiles = []string{"postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map", "current_logfiles", "backup_label.old"}

// TakesOnline reports whether a copy of the given consistency
// ("application" or "crash") is taken online rather than frozen.
func (d *Driver) TakesOnline(consistency string) bool {
	return consistency == "application" && d.cfg.BackupMethod != MethodFreeze
}

// OnlineResult describes an online backup.
type OnlineResult struct {
	Method      string
	StartLSN    string
	StopLSN     string
	WALSegments int
	StoppedAt   time.Time // when pg_backup_stop returned: the instant the copy restores to
}

// OnlineBackup takes a copy of the data directory while the server keeps
// running, with PostgreSQL's non-exclusive backup protocol:
//
//  1. on one session, a temporary physical replication slot reserves the
//     WAL from now on (so no segment the copy needs is recycled), then
//     pg_backup_start(fast) checkpoints and marks the backup's start;
//  2. copyFiles copies the data directory to dest, leaving out the paths
//     it is given (runtime state, pg_wal's segments);
//  3. pg_backup_stop returns the backup label, the tablespace map and the
//     stop position, and switches to a new WAL segment so the last one is
//     complete;
//  4. backup_label (and tablespace_map) are written into dest, and the WAL
//     segments from the start to the stop position into dest/pg_wal.
//
// A server started on dest replays that WAL to the stop position and
// holds every transaction committed before pg_backup_stop returned.
// The backup lives only in its session: on any failure the session is
// closed, which ends the backup on the server and drops the slot, and
// dest is incomplete (no backup_label): the caller must not keep it.
func (d *Driver) OnlineBackup(ctx context.Context, dest string, copyFiles func(ctx context.Context, exclude []string) error) (OnlineResult, error) {
	res := OnlineResult{Method: MethodOnline}
	fail := func(what string, err error) (OnlineResult, error) {
		return res, fmt.Errorf("online backup of %s: %s: %w", d.cfg.Workload, what, err)
	}
	if _, err := d.runningPID(); err != nil {
		return fail("check the server", err)
	}
	conn, err := d.connect(ctx)
	if err != nil {
		return fail("connect", err)
	}
	// Closing the session ends a backup still in progress and drops the
	// temporary slot, whatever happened.
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fail("read the server version", err)
	}
	if version < MinOnlineVersion {
		return fail("server version", fmt.Errorf("PostgreSQL %d.%d is older than 10, which the online backup needs; use consistency = \"crash\" or upgrade", version/10000, version%10000/100))
	}
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return fail("read the session's pid", err)
	}
	slot := "clusterguard_backup_" + strconv.Itoa(pid)
	if _, err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true, true)", slot); err != nil {
		return fail("reserve WAL with a temporary replication slot (the database user needs REPLICATION, and max_replication_slots a free slot)", err)
	}
	began := time.Now()
	label := "clusterguard " + d.cfg.Workload + " " + time.Now().UTC().Format(time.RFC3339)
	start := "SELECT pg_backup_start($1, fast => true)::text"
	if version < 150000 {
		start = "SELECT pg_start_backup($1, true, false)::text"
	}
	if err := conn.QueryRow(ctx, start, label).Scan(&res.StartLSN); err != nil {
		return fail("pg_backup_start (it needs wal_level replica or logical)", err)
	}
	var startFile string
	if err := conn.QueryRow(ctx, "SELECT pg_walfile_name($1::pg_lsn)", res.StartLSN).Scan(&startFile); err != nil {
		return fail("name the first WAL segment", err)
	}

	exclude, err := d.onlineExclusions()
	if err != nil {
		return fail("list what to leave out", err)
	}
	if err := copyFiles(ctx, exclude); err != nil {
		return fail("copy the data directory", err)
	}

	stop := "SELECT lsn::text, labelfile, coalesce(spcmapfile, '') FROM pg_backup_stop(wait_for_archive => false)"
	if version < 150000 {
		stop = "SELECT lsn::text, labelfile, coalesce(spcmapfile, '') FROM pg_stop_backup(false, false)"
	}
	var labelFile, spcMap string
	if d.beforeStop != nil {
		d.beforeStop()
	}
	if err := conn.QueryRow(ctx, stop).Scan(&res.StopLSN, &labelFile, &spcMap); err != nil {
		return fail("stop the backup", err)
	}
	res.StoppedAt = time.Now()
	if d.afterStop != nil {
		d.afterStop()
	}
	var stopFile string
	var segSize int64
	if err := conn.QueryRow(ctx, "SELECT pg_walfile_name($1::pg_lsn), (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')", res.StopLSN).Scan(&stopFile, &segSize); err != nil {
		return fail("name the last WAL segment", err)
	}
	// pg_backup_stop switched segments; the copy reads the files, so wait
	// until the server has written the WAL up to the stop position.
	if err := d.waitFlushed(ctx, conn, res.StopLSN); err != nil {
		return fail("wait for the WAL up to the stop position", err)
	}
	if err := racy.Mark(dest, began.Add(-racy.Margin)); err != nil {
		return fail("mark files changed during the copy", err)
	}
	if err := d.completeCopy(dest, labelFile, spcMap); err != nil {
		return fail("write the backup label into the copy", err)
	}
	n, err := d.copyWAL(ctx, dest, startFile, stopFile, segSize)
	res.WALSegments = n
	if err != nil {
		return fail("copy the WAL between start and stop", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
		d.log.Warn("drop the backup's temporary replication slot; it goes with the session", "slot", slot, "error", err)
	}
	d.log.Info("online backup taken", "start_lsn", res.StartLSN, "stop_lsn", res.StopLSN, "wal_segments", n)
	return res, nil
}

// connect opens a session over the server's Unix socket as DatabaseUser.
func (d *Driver) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port, cfg.User, cfg.Database = d.socketDir(), uint16(d.cfg.Port), d.cfg.DatabaseUser, "postgres"
	cfg.ConnectTimeout = 10 * time.Second
	cfg.RuntimeParams = map[string]string{"application_name": "clusterguard backup"}
	cctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("as %s over %s (the agent connects itself, so local authentication must let it in, e.g. trust or a peer map for the agent's user; or set backup_method = \"freeze\"): %w", d.cfg.DatabaseUser, d.socketDir(), err)
	}
	return conn, nil
}

func (d *Driver) waitFlushed(ctx context.Context, conn *pgx.Conn, lsn string) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	for {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", lsn).Scan(&ok); err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond): // polling the server's flush position
		}
	}
}

// onlineExclusions are the absolute paths the copy leaves out: those of
// ExcludeFromCopy, the runtime directories, and the relation cache files
// and temporary files pg_basebackup skips too. A file of those created
// during the copy may be copied; the server discards it on start.
func (d *Driver) onlineExclusions() ([]string, error) {
	out := d.ExcludeFromCopy()
	for _, n := range append(slices.Clone(onlineExcludedDirs), onlineExcludedFiles...) {
		out = append(out, filepath.Join(d.cfg.DataDir, n))
	}
	out = append(out, filepath.Join(d.cfg.DataDir, "global", "pg_internal.init"))
	dbs, err := os.ReadDir(filepath.Join(d.cfg.DataDir, "base"))
	if err != nil {
		return nil, err
	}
	for _, db := range dbs {
		if strings.HasPrefix(db.Name(), "pgsql_tmp") {
			out = append(out, filepath.Join(d.cfg.DataDir, "base", db.Name()))
			continue
		}
		out = append(out, filepath.Join(d.cfg.DataDir, "base", db.Name(), "pg_internal.init"))
	}
	return out, nil
}

// completeCopy recreates the left-out directories empty (owned as on the
// server) and writes backup_label and tablespace_map into dest.
func (d *Driver) completeCopy(dest, labelFile, spcMap string) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }() // written files are closed and synced below
	for _, n := range append(slices.Clone(onlineExcludedDirs), filepath.Join("pg_wal", "archive_status")) {
		info, err := os.Stat(filepath.Join(d.cfg.DataDir, n)) // pg_wal may be a link to another disk
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := root.Mkdir(n, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := d.own(root, n, info); err != nil {
			return err
		}
	}
	if err := d.writeInto(root, "backup_label", []byte(labelFile)); err != nil {
		return err
	}
	if spcMap != "" {
		return d.writeInto(root, "tablespace_map", []byte(spcMap))
	}
	return nil
}

// own gives name in root the owner and mode of info, as the mirror keeps
// the owners of the data directory's files.
func (d *Driver) own(root *os.Root, name string, info fs.FileInfo) error {
	if st, ok := info.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		if err := root.Lchown(name, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	return root.Chmod(name, info.Mode().Perm())
}

func (d *Driver) writeInto(root *os.Root, name string, data []byte) error {
	info, err := os.Stat(filepath.Join(d.cfg.DataDir, "PG_VERSION")) // a file owned as the server's files are
	if err != nil {
		return err
	}
	_ = root.Remove(name)
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return d.own(root, name, info)
}

// copyWAL copies the segments first…last (same timeline) from the server's
// pg_wal into dest/pg_wal. The temporary slot keeps them from being
// recycled until the session ends.
func (d *Driver) copyWAL(ctx context.Context, dest, first, last string, segSize int64) (int, error) {
	tli, a, err := parseWALName(first, segSize)
	if err != nil {
		return 0, err
	}
	tli2, b, err := parseWALName(last, segSize)
	if err != nil {
		return 0, err
	}
	if tli != tli2 || b < a {
		return 0, fmt.Errorf("WAL from %s to %s is not one range of one timeline", first, last)
	}
	root, err := os.OpenRoot(filepath.Join(dest, "pg_wal"))
	if err != nil {
		return 0, err
	}
	defer func() { _ = root.Close() }() // each file is synced and closed below
	src, err := os.OpenRoot(filepath.Join(d.cfg.DataDir, "pg_wal"))
	if err != nil {
		return 0, err
	}
	defer func() { _ = src.Close() }() // read only
	perSeg := uint64(0x100000000) / uint64(segSize)
	n := 0
	for seg := a; seg <= b; seg++ {
		name := fmt.Sprintf("%08X%08X%08X", tli, seg/perSeg, seg%perSeg)
		if err := copyOne(ctx, src, root, name); err != nil {
			return n, fmt.Errorf("segment %s: %w", name, err)
		}
		n++
	}
	return n, nil
}

func parseWALName(name string, segSize int64) (tli uint64, seg uint64, err error) {
	if len(name) != 24 || segSize <= 0 || 0x100000000%segSize != 0 {
		return 0, 0, fmt.Errorf("%q is not a WAL segment name (segment size %d)", name, segSize)
	}
	var p [3]uint64
	for i := range p {
		if p[i], err = strconv.ParseUint(name[8*i:8*i+8], 16, 32); err != nil {
			return 0, 0, fmt.Errorf("%q is not a WAL segment name: %w", name, err)
		}
	}
	return p[0], p[1]*(uint64(0x100000000)/uint64(segSize)) + p[2], nil
}

func copyOne(ctx context.Context, src, dst *os.Root, name string) error {
	in, err := src.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read only
	info, err := in.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	_ = dst.Remove(name)
	out, err := dst.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = ctx.Err()
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && err == nil && os.Geteuid() == 0 {
		err = out.Chown(int(st.Uid), int(st.Gid))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
