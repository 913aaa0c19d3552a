package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/marker"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/proc"
)

// workDir is the commands' own directory (CLUSTERGUARD_STATE_DIR, their
// working directory), inside the agent's state directory of the workload.
func workDir(cfg Config) string { return WorkDir(cfg.StateDir) }

// WorkDir is the commands' directory (CLUSTERGUARD_STATE_DIR) of the
// workload whose state directory is stateDir.
func WorkDir(stateDir string) string { return filepath.Join(stateDir, "work") }

// prepareDirs (re)creates the agent's state directory (owned by the agent,
// writable by nobody else) and the commands' work directory (handed to
// their user).
func (d *Driver) prepareDirs() error {
	if err := marker.SecureDir(d.cfg.StateDir, 0o711); err != nil {
		return err
	}
	return userDir(workDir(d.cfg), d.cred)
}

// userDir creates dir and hands it to cred's user (nil: the agent's). It
// never follows a link at dir's name: one planted there while the user
// owned the parent is refused.
func userDir(dir string, cred *syscall.Credential) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create the commands' directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open the commands' directory %s: %w; if it is a link or a file, remove it (the agent creates it)", dir, err)
	}
	defer f.Close()
	if cred != nil {
		if err := f.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("hand the commands' directory %s to uid %d: %w", dir, cred.Uid, err)
		}
	}
	return nil
}

// lookPath finds a program name without '/' in the PATH of the command's
// environment env (the last PATH= wins, as for the command), using only
// absolute entries: the agent's own PATH is not the command's.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %q not found in the command's PATH %q (absolute entries only); give its absolute path or set PATH in the workload's exec env", name, path)
}

const pgidPrefix = "pgid="

// started records the process group of a quiesce or pause command in its
// marker, so a next agent can end it if this agent dies first.
func (d *Driver) started(name string, pid int) {
	var m marker.Marker
	switch name {
	case Quiesce:
		m = d.quiescedMarker()
	case Pause:
		m = d.pausedMarker()
	default:
		return
	}
	if err := m.Set(name + " " + pgidPrefix + strconv.Itoa(pid)); err != nil {
		d.logger.Warn("could not record the command's process group; a later agent cannot end it if this one dies", "action", name, "error", err.Error())
	}
}

// afterLeftover wraps a recovery thaw: a quiesce (or pause) command the
// dead agent started may still run (it was not killed with the agent); it
// is killed with its process group, and the thaw waits until the group is
// gone, so the freeze cannot land after the thaw. A group is only killed
// when one of its processes is this workload's command (its environment),
// never a recycled group id.
func (d *Driver) afterLeftover(m marker.Marker, thaw func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		detail := m.Detail()
		i := strings.Index(detail, pgidPrefix)
		if i < 0 {
			return thaw(ctx)
		}
		pgid, err := strconv.Atoi(strings.Fields(detail[i+len(pgidPrefix):])[0])
		if err != nil || pgid <= 1 {
			return thaw(ctx)
		}
		if !d.ownsGroup(pgid) {
			return thaw(ctx)
		}
		d.logger.Warn("killing what is left of the command the previous agent started", "pgid", pgid, "marker", detail)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if !proc.WaitUntil(ctx, 10*time.Second, func() bool { return len(proc.Group(pgid)) == 0 }) {
			return fmt.Errorf("the command the previous agent started (process group %d) is still running after SIGKILL; thaw refused so its freeze cannot land afterwards", pgid)
		}
		return thaw(ctx)
	}
}

func (d *Driver) ownsGroup(pgid int) bool {
	want := "CLUSTERGUARD_STATE_DIR=" + workDir(d.cfg)
	for _, pid := range proc.Group(pgid) {
		for _, kv := range proc.Env(pid) {
			if kv == want {
				return true
			}
		}
	}
	return false
}
