// Package qemu is the workload driver for a QEMU virtual machine whose disk
// images live on the shared volume: the agent of the node the VM is active
// on runs it; any other node can run it after it is stopped there (E12).
//
// The driver controls the VM through its QMP socket (node-local) and knows
// its own VM from a node-local pid file, so a VM started by another node is
// never mistaken for this node's. A recorded VM that died without Stop is
// reported failed.
//
// Consistency: Quiesce and Pause stop the virtual CPUs with QMP "stop",
// which also drains in-flight disk I/O and flushes QEMU's caches (qcow2
// metadata included) to the image files; Thaw and Resume continue them. The
// copy taken meanwhile is the guest's disks at one instant, which the guest
// recovers like after a power cut. (Freezing the guest's file systems
// through a guest agent is not done.) A node-local marker records a pause
// the driver made, so an agent that died mid-backup continues the VM when
// it starts again; a VM paused by an operator is left paused.
//
// Block backups (cbt.go, nbd.go): the disk images are not copied while the
// VM is stunned. Before the freeze, PrepareBlockBackup adds per disk a
// temporary qcow2 image (in the state directory, handed to QEMU as a
// descriptor) whose backing is the disk, and starts QEMU's NBD server on a
// socket the agent listens on in its private state directory (the
// listening descriptor is handed over, so QEMU's user needs no access).
// During the freeze, Checkpoint runs one QMP transaction for all disks:
// blockdev-backup sync=none into the temporary image (copy-before-write:
// from then on QEMU copies a block there before the guest overwrites it,
// so the temporary node is the disks at that instant), disable of the base
// dirty bitmap, and add of the new generation's persistent bitmap
// (BitmapPrefix+N, N the checkpoint's Unix time in ns), which QEMU keeps in
// the qcow2 image: tracking survives a restart and a move to another node.
// After the release, Open exports each view over NBD with its base bitmap
// and the agent reads, with a small NBD client (fixed newstyle, structured
// replies), the dirty extents (NBD_CMD_BLOCK_STATUS in the
// qemu:dirty-bitmap:<name> meta context) or the whole disk. Finish tears
// the view down; after a stored recovery point the base bitmap is removed,
// otherwise the new bitmap is merged back into the base, which records
// again, so no change is lost. A disk is read whole when its image has no
// usable bitmap: none (first backup, image replaced or restored, bitmap
// removed), marked inconsistent (QEMU did not close the image, e.g. it was
// killed), disabled, busy or not persistent; raw images hold no persistent
// bitmaps and are always read whole, through the same view (so without a
// long stun either). Pulling over NBD was chosen over pushing a
// blockdev-backup sync=incremental into a sparse file: the dirty extents
// come from the bitmap itself, not from the target's data extents, which
// zero writes can turn into holes.
//
// Stop asks the guest to power down (ACPI), waits ShutdownTimeout, then
// quits QEMU (which flushes the images) and at last kills it.
//
// Confinement: QEMU runs as the configured unprivileged user (never root;
// a root agent must name one), started as that user with its groups, a
// minimal environment, and QEMU's seccomp sandbox
// (-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny),
// in the foreground of its own session (-daemonize would fork, which the
// sandbox forbids). The agent creates the QMP socket in its private state
// directory and hands QEMU the listening descriptor, so QEMU's user needs
// no access there; its output goes to the log the agent opened. The state
// directory is the agent's alone (a directory a workload user owned or
// could write is handed back to the agent), and the agent never follows a
// link in it. Before each start the driver checks every disk image: the
// image and its whole backing chain must resolve inside the workload's
// directory, name their formats and be usable by QEMU's user; images with
// an external data file are refused; anything else is refused with the
// reason. The agent opens every image of the chain itself (relative to
// the workload directory, no link followed on the way: openat2
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), checks it through that descriptor
// and hands the same descriptors to QEMU (-add-fd, /dev/fdset/N) in a
// -blockdev tree naming each format and each backing (the last one null):
// QEMU opens no path and reads no backing name or format from an image, so
// an image swapped after the check is not the one QEMU gets.
// The operator gives QEMU's user read and write access to the images on
// every node (same uid everywhere); VMs sharing one user can reach each
// other's images, so give each workload its own user.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/marker"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/runas"
)

// Defaults for an unset Config field.
const (
	DefaultBinary          = "qemu-system-x86_64"
	DefaultMemory          = "512M"
	DefaultShutdownTimeout = 60 * time.Second
	DefaultTimeout         = 30 * time.Second
)

// Config is one VM on one node.
type Config struct {
	Workload string
	// Dir is the workload's first path (absolute, on the shared volume);
	// Disks are relative to it.
	Dir   string
	Disks []string
	// Binary is the QEMU system emulator; default DefaultBinary on PATH.
	Binary string
	Memory string // -m, e.g. "2G"
	CPUs   int    // -smp; default 1
	// Accel is -machine accel=...; default "kvm:tcg" (KVM where available).
	Accel     string
	ExtraArgs []string // appended to QEMU's command line
	// StateDir is node-local: the pid file, the QMP socket and the log.
	StateDir        string
	ShutdownTimeout time.Duration
	Timeout         time.Duration // for start and QMP commands
	// User runs QEMU (a name or uid); required when the agent runs as root.
	User   string
	Logger *slog.Logger
}

// Driver operates one VM.
type Driver struct {
	cfg     Config
	log     *slog.Logger
	user    runas.User          // QEMU's user
	cred    *syscall.Credential // nil: the agent's own user
	qemuImg string
}

// New checks cfg and creates the state directory.
func New(cfg Config) (*Driver, error) {
	if cfg.Dir == "" || !filepath.IsAbs(cfg.Dir) {
		return nil, fmt.Errorf("qemu workload %q: directory %q must be an absolute path", cfg.Workload, cfg.Dir)
	}
	if len(cfg.Disks) == 0 {
		return nil, fmt.Errorf("qemu workload %q: no disks: list the disk images, relative to the workload's first path", cfg.Workload)
	}
	for _, d := range cfg.Disks {
		if filepath.IsAbs(d) || d == ".." || strings.HasPrefix(filepath.Clean(d), ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("qemu workload %q: disk %q must be relative to the workload's first path and stay inside it", cfg.Workload, d)
		}
	}
	if err := CheckExtraArgs(cfg.ExtraArgs); err != nil {
		return nil, fmt.Errorf("qemu workload %q: %w", cfg.Workload, err)
	}
	if cfg.Binary == "" {
		cfg.Binary = DefaultBinary
	}
	bin, err := osexec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("qemu workload %q: %s: %w; install QEMU (Debian: qemu-system-x86) or set binary", cfg.Workload, cfg.Binary, err)
	}
	cfg.Binary = bin
	if cfg.Memory == "" {
		cfg.Memory = DefaultMemory
	}
	if cfg.CPUs <= 0 {
		cfg.CPUs = 1
	}
	if cfg.Accel == "" {
		cfg.Accel = "kvm:tcg"
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := marker.SecureDir(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("qemu workload %q: %w", cfg.Workload, err)
	}
	// A Unix socket path is limited to 107 bytes.
	if len(filepath.Join(cfg.StateDir, "qmp.sock")) > 107 {
		return nil, fmt.Errorf("qemu workload %q: state directory %s is too long for a QMP socket path (107 bytes); use a shorter state_dir", cfg.Workload, cfg.StateDir)
	}
	d := &Driver{cfg: cfg, log: cfg.Logger.With("workload", cfg.Workload, "driver", "qemu")}
	if d.user, err = qemuUser(cfg); err != nil {
		return nil, err
	}
	if d.cred, err = d.user.Credential(); err != nil {
		return nil, fmt.Errorf("qemu workload %q: %w", cfg.Workload, err)
	}
	if d.qemuImg, err = osexec.LookPath("qemu-img"); err != nil {
		return nil, fmt.Errorf("qemu workload %q: qemu-img: %w; install it (Debian: qemu-utils): the driver checks disk images with it before starting", cfg.Workload, err)
	}
	d.thawLeftPaused()
	return d, nil
}

// pausedMarker exists from a QMP stop the driver sent to the next cont, so
// an agent that died in between continues the VM when it starts again (a
// VM paused by someone else is left alone).
func (d *Driver) pausedMarker() marker.Marker { return marker.New(d.cfg.StateDir, "paused-by-agent") }

func (d *Driver) thawLeftPaused() {
	_ = d.pausedMarker().Recover(d.log, d.cfg.Timeout, "paused", d.Resume) // logged; the next thaw tries again
}

func (d *Driver) pidPath() string { return filepath.Join(d.cfg.StateDir, "qemu.pid") }
func (d *Driver) qmpPath() string { return filepath.Join(d.cfg.StateDir, "qmp.sock") }
func (d *Driver) logPath() string { return filepath.Join(d.cfg.StateDir, "qemu.log") }

// Status is active while the VM this node started runs (paused included);
// failed if it died on its own.
func (d *Driver) Status(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return api.StateUnknown, fmt.Errorf("status of %s: %w", d.cfg.Workload, err)
	}
	pid, err := d.recordedPID()
	if err != nil {
		return api.StateUnknown, err
	}
	switch {
	case pid == 0:
		return api.StateInactive, nil
	case d.isOurVM(pid):
		return api.StateActive, nil
	default:
		return api.StateFailed, fmt.Errorf("the VM (QEMU pid %d) exited without being stopped; see %s", pid, d.logPath())
	}
}

// Start boots the VM unless this node runs it already. It first checks
// every disk image (checkDisk), then starts QEMU as its user, sandboxed,
// with the QMP socket the agent listens on handed over as a descriptor, and
// returns once QEMU answers on it.
func (d *Driver) Start(ctx context.Context) error {
	if pid, err := d.recordedPID(); err != nil {
		return err
	} else if pid != 0 && d.isOurVM(pid) {
		return nil
	}
	_ = os.Remove(d.pidPath())
	_ = os.Remove(d.qmpPath())
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	args := []string{
		"-name", "guest=" + d.cfg.Workload,
		"-machine", "accel=" + d.cfg.Accel,
		"-m", d.cfg.Memory, "-smp", strconv.Itoa(d.cfg.CPUs),
		"-display", "none", "-monitor", "none", "-serial", "null", "-parallel", "none",
		"-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control",
		"-sandbox", sandbox,
	}
	// Every image is handed to QEMU as the descriptors the check read
	// (-add-fd, /dev/fdset/N), after the QMP socket (descriptor 3).
	var chains [][]layer
	defer func() { closeChains(chains) }()
	var images []*os.File
	fdset := func(l layer) string {
		set := len(images) + 1 // unique per image: images only grows
		for _, f := range l.files {
			args = append(args, "-add-fd", fmt.Sprintf("fd=%d,set=%d", 4+len(images), set))
			images = append(images, f)
		}
		return fmt.Sprintf("/dev/fdset/%d", set)
	}
	for i, disk := range d.cfg.Disks {
		chain, err := d.checkDisk(ctx, disk)
		if err != nil {
			return fmt.Errorf("start %s: %w", d.cfg.Workload, err)
		}
		node := fmt.Sprintf("disk%d", i)
		bd, err := blockdevArg(node, chain, fdset)
		chains = append(chains, chain)
		if err != nil {
			return fmt.Errorf("start %s: disk %s: %w", d.cfg.Workload, disk, err)
		}
		args = append(args, "-blockdev", bd, "-device", "virtio-blk-pci,drive="+node)
	}
	args = append(args, d.cfg.ExtraArgs...)

	// The agent makes the QMP socket in its own (private) state directory
	// and hands QEMU the listening descriptor: QEMU's user needs no access
	// to the state directory, and only root (the agent) can connect.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: d.qmpPath(), Net: "unix"})
	if err != nil {
		return fmt.Errorf("start %s: QMP socket: %w", d.cfg.Workload, err)
	}
	l.SetUnlinkOnClose(false) // QEMU keeps listening on it
	sock, err := l.File()
	_ = l.Close()
	if err != nil {
		return fmt.Errorf("start %s: QMP socket: %w", d.cfg.Workload, err)
	}
	defer sock.Close()
	logFile, err := os.OpenFile(d.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return fmt.Errorf("start %s: QEMU log: %w", d.cfg.Workload, err)
	}
	defer logFile.Close()

	// Not bound to ctx: the VM outlives the request (and the agent).
	cmd := osexec.Command(d.cfg.Binary, args...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + d.user.Home, vmIDVar + "=" + d.pidPath()}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = append([]*os.File{sock}, images...) // descriptor 3, then the images
	// Its own session, so signals to the agent's group do not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: d.cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %s: %w", d.cfg.Workload, d.cfg.Binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it whenever it ends
	fail := func(err error) error {
		_ = cmd.Process.Kill()
		_ = os.Remove(d.pidPath())
		return fmt.Errorf("start %s: %w; QEMU log %s:\n%s", d.cfg.Workload, err, d.logPath(), tail(d.logPath()))
	}
	if err := marker.WriteFile(d.pidPath(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n")); err != nil {
		return fail(fmt.Errorf("record pid: %w", err))
	}
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		q, err := dialQMP(actx, d.qmpPath())
		if err == nil {
			_, err = q.status()
			_ = q.Close()
		}
		acancel()
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			return fail(fmt.Errorf("QEMU exited before it answered on QMP (%w)", werr))
		case <-ctx.Done():
			return fail(fmt.Errorf("QEMU did not answer on QMP within %v: %w", d.cfg.Timeout, err))
		case <-time.After(20 * time.Millisecond): // QEMU sends no notice when ready
		}
	}
	d.log.Info("vm started", "pid", cmd.Process.Pid, "user", d.user.Name)
	return nil
}

// vmIDVar, in QEMU's environment, names the pid record of the driver that
// started it, so a recycled pid or another workload's VM is never taken for
// this one.
const vmIDVar = "CLUSTERGUARD_QEMU_PIDFILE"

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 2048 {
		data = data[len(data)-2048:]
	}
	return strings.TrimSpace(string(data))
}

// Stop powers the VM down: ACPI first, then QMP quit, then SIGKILL.
func (d *Driver) Stop(ctx context.Context) error {
	pid, err := d.recordedPID()
	if err != nil {
		return err
	}
	if pid != 0 && d.isOurVM(pid) {
		// Once begun, a shutdown runs its course (bounded by the timeouts)
		// even if the caller goes away: cutting it short would skip the
		// clean quit that flushes the images.
		d.stopVM(context.WithoutCancel(ctx), pid)
		if d.isOurVM(pid) {
			return fmt.Errorf("stop %s: QEMU (pid %d) is still running after powerdown, quit and SIGKILL", d.cfg.Workload, pid)
		}
		d.log.Info("vm stopped", "pid", pid)
	}
	_ = d.pausedMarker().Clear() // a stopped VM is not paused
	_ = os.Remove(d.qmpPath())
	if err := os.Remove(d.pidPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stop %s: %w", d.cfg.Workload, err)
	}
	return nil
}

// WatchdogEnv is the environment entry of this VM's QEMU process, by
// which the agent's watchdog finds and kills it.
func (d *Driver) WatchdogEnv() string { return vmIDVar + "=" + d.pidPath() }

// Kill forces the VM down at once, without the guest's powerdown: QMP quit
// (QEMU flushes its images and exits) for at most half a second, then
// SIGKILL; the pid and QMP files are removed as by Stop.
func (d *Driver) Kill(ctx context.Context) error {
	pid, err := d.recordedPID()
	if err != nil {
		return err
	}
	if pid != 0 && d.isOurVM(pid) {
		qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_ = d.qmpDo(qctx, "quit")
		gone := d.waitGone(qctx, pid, 500*time.Millisecond)
		cancel()
		if !gone {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			if !d.waitGone(context.WithoutCancel(ctx), pid, 5*time.Second) {
				return fmt.Errorf("kill %s: QEMU (pid %d) is still running after SIGKILL", d.cfg.Workload, pid)
			}
		}
		d.log.Warn("vm forced down", "pid", pid)
	}
	return d.Stop(ctx) // the VM is gone: Stop only removes its files
}

func (d *Driver) stopVM(ctx context.Context, pid int) {
	_ = d.qmpDo(ctx, "cont") // fails in states like guest-panicked; power down anyway
	if err := d.qmpDo(ctx, "system_powerdown"); err != nil {
		d.log.Warn("powerdown request failed", "error", err.Error())
	}
	if d.waitGone(ctx, pid, d.cfg.ShutdownTimeout) {
		return
	}
	d.log.Warn("the guest did not power down; quitting QEMU", "waited", d.cfg.ShutdownTimeout.String())
	if err := d.qmpDo(ctx, "quit"); err != nil {
		d.log.Warn("quit failed", "error", err.Error())
	}
	if d.waitGone(ctx, pid, d.cfg.Timeout) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	d.waitGone(ctx, pid, 5*time.Second)
}

// Quiesce stops the virtual CPUs; QEMU drains and flushes the disks.
func (d *Driver) Quiesce(ctx context.Context) error { return d.setRunning(ctx, false) }

// Thaw continues the virtual CPUs.
func (d *Driver) Thaw(ctx context.Context) error { return d.setRunning(ctx, true) }

// CanPause: a VM can always be paused.
func (d *Driver) CanPause() bool { return true }

// Pause stops the virtual CPUs (crash consistency, M6).
func (d *Driver) Pause(ctx context.Context) error { return d.setRunning(ctx, false) }

// Resume continues the virtual CPUs.
func (d *Driver) Resume(ctx context.Context) error { return d.setRunning(ctx, true) }

func (d *Driver) setRunning(ctx context.Context, running bool) error {
	pid, err := d.recordedPID()
	if err != nil {
		return err
	}
	if pid == 0 || !d.isOurVM(pid) {
		if running {
			_ = d.pausedMarker().Clear() // nothing of ours to continue
			return nil
		}
		return fmt.Errorf("%s: the VM is not running on this node", d.cfg.Workload)
	}
	cmd, want := "stop", "paused"
	if running {
		cmd, want = "cont", "running"
	} else if err := d.pausedMarker().Set("qemu " + strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("%s: %w", d.cfg.Workload, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	q, err := dialQMP(ctx, d.qmpPath())
	if err != nil {
		return fmt.Errorf("%s: %w", d.cfg.Workload, err)
	}
	defer q.Close() //nolint:errcheck // a read-side session; nothing to flush
	if _, err := q.execute(cmd, nil); err != nil {
		return fmt.Errorf("%s: %w", d.cfg.Workload, err)
	}
	st, err := q.status()
	if err != nil {
		return fmt.Errorf("%s: after QMP %s: %w", d.cfg.Workload, cmd, err)
	}
	if st != want {
		return fmt.Errorf("%s: after QMP %s the VM is %q, want %q", d.cfg.Workload, cmd, st, want)
	}
	if running {
		if err := d.pausedMarker().Clear(); err != nil {
			return fmt.Errorf("%s: %w", d.cfg.Workload, err)
		}
	}
	return nil
}

// RunState is QEMU's run state of this node's VM ("running", "paused", ...).
func (d *Driver) RunState(ctx context.Context) (string, error) {
	q, err := dialQMP(ctx, d.qmpPath())
	if err != nil {
		return "", err
	}
	defer q.Close() //nolint:errcheck // a read-side session; nothing to flush
	return q.status()
}

func (d *Driver) qmpDo(ctx context.Context, commands ...string) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	q, err := dialQMP(ctx, d.qmpPath())
	if err != nil {
		return err
	}
	defer q.Close() //nolint:errcheck // a read-side session; nothing to flush
	for _, c := range commands {
		if _, err := q.execute(c, nil); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) recordedPID() (int, error) {
	data, err := os.ReadFile(d.pidPath())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: read pid file: %w", d.cfg.Workload, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: pid file %s holds %q; remove it if no VM of this workload runs on this node", d.cfg.Workload, d.pidPath(), data)
	}
	return pid, nil
}

// isOurVM: pid is alive (not a zombie) and is the QEMU this driver started
// (its environment names this node's pid record; a QEMU of an earlier
// version of the driver, which daemonised itself, named it on its command
// line).
func (d *Driver) isOurVM(pid int) bool {
	return proc.Alive(pid) && (slices.Contains(proc.Env(pid), vmIDVar+"="+d.pidPath()) || slices.Contains(proc.Args(pid), d.pidPath()))
}

func (d *Driver) waitGone(ctx context.Context, pid int, timeout time.Duration) bool {
	return proc.WaitUntil(ctx, timeout, func() bool { return !d.isOurVM(pid) })
}

// formatOf names an image's format by its extension: qcow2, else raw.
func formatOf(disk string) string {
	if strings.EqualFold(filepath.Ext(disk), ".qcow2") {
		return "qcow2"
	}
	return "raw"
}
