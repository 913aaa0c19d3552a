package qemu

import "context"

// PID is the pid of this node's VM, for tests.
func (d *Driver) PID() (int, error) { return d.recordedPID() }

// Config is the driver's configuration, for tests that build a second
// driver as a restarted agent would.
func (d *Driver) Config() Config { return d.cfg }

// QMP runs QMP commands as an operator would, for tests.
func (d *Driver) QMP(ctx context.Context, commands ...string) error { return d.qmpDo(ctx, commands...) }
