package qemu

// PID is the pid of this node's VM, for tests.
func (d *Driver) PID() (int, error) { return d.recordedPID() }
