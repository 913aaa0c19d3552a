package postgresql

import (
	"os"
	"path/filepath"
)

// PID is the pid of the postmaster this node started, for tests.
func (d *Driver) PID() (int, error) { return d.recordedPID() }

// Config is the driver's configuration, for tests that build a second
// driver as a restarted agent would.
func (d *Driver) Config() Config { return d.cfg }

// ForgetPID removes the record of the postmaster this node started, as a
// lost state directory or an agent restarted on a fresh one would.
func (d *Driver) ForgetPID() error { return os.Remove(filepath.Join(d.cfg.StateDir, pidRecord)) }
