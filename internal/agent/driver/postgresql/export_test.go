package postgresql

// PID is the pid of the postmaster this node started, for tests.
func (d *Driver) PID() (int, error) { return d.recordedPID() }

// Config is the driver's configuration, for tests that build a second
// driver as a restarted agent would.
func (d *Driver) Config() Config { return d.cfg }
