// Package marker is the node-local record of a freeze (quiesce or pause) a
// driver made, kept from just before the freeze until the thaw that ends it.
// The agent's own thaw deadline lives in its memory, so an agent killed while
// a workload is frozen would leave it frozen; a driver built by the next
// agent on the node finds the marker and thaws the workload (Recover). A
// workload frozen by someone else (an operator) has no marker and is left
// alone. Every driver that can freeze uses one.
package marker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Marker is one file in a workload's node-local state directory.
type Marker struct{ path string }

// New returns the marker called name in stateDir.
func New(stateDir, name string) Marker { return Marker{path: filepath.Join(stateDir, name)} }

// Path is the marker file.
func (m Marker) Path() string { return m.path }

// Set records a freeze. Call it before freezing: an agent killed half-way
// through the freeze must still thaw at its next start. It writes a new
// file (O_EXCL, random name) and renames it over the marker, so a symbolic
// link planted at the marker's name is replaced, never followed.
func (m Marker) Set(detail string) error {
	if err := writeNew(m.path, []byte(detail+"\n")); err != nil {
		return fmt.Errorf("record the freeze in %s: %w; check that the state directory is writable", m.path, err)
	}
	return nil
}

// Detail is what the last Set recorded ("" when unset). It reads a regular
// file only (O_NOFOLLOW).
func (m Marker) Detail() string {
	f, err := os.OpenFile(m.path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := f.Read(buf)
	return strings.TrimSpace(string(buf[:n]))
}

// Clear removes the record once the workload is thawed (or stopped);
// clearing an absent marker is fine.
func (m Marker) Clear() error {
	if err := os.Remove(m.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the freeze record %s: %w", m.path, err)
	}
	return nil
}

// IsSet reports whether a freeze is recorded: the marker's name is a
// regular file (not followed when it is a link).
func (m Marker) IsSet() bool {
	fi, err := os.Lstat(m.path)
	return err == nil && fi.Mode().IsRegular()
}

// Recover thaws a workload a previous agent left frozen: when the marker is
// set it calls thaw (bounded by timeout) and clears the marker once thaw
// succeeded. what names the freeze in logs ("quiesced", "paused"). A failed
// thaw keeps the marker, so the next start (or the next thaw) tries again;
// the error is logged and returned.
func (m Marker) Recover(log *slog.Logger, timeout time.Duration, what string, thaw func(context.Context) error) error {
	if !m.IsSet() {
		return nil
	}
	log.Warn("the workload was left "+what+" by an agent that stopped before releasing it; releasing it now", "marker", m.path)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := thaw(ctx); err != nil {
		err = fmt.Errorf("release the workload left %s by a previous agent (marker %s): %w; release it by hand (thaw) or it stays %s until a later thaw of this workload succeeds (the next start of the agent or the end of the next backup retries it)", what, m.path, err, what)
		log.Error("releasing a workload left frozen failed", "error", err.Error())
		return err
	}
	if err := m.Clear(); err != nil {
		log.Error("releasing a workload left frozen", "error", err.Error())
		return err
	}
	log.Info("released the workload left " + what)
	return nil
}
