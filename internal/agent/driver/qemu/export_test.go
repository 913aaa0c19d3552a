package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// PID is the pid of this node's VM, for tests.
func (d *Driver) PID() (int, error) { return d.recordedPID() }

// Config is the driver's configuration, for tests that build a second
// driver as a restarted agent would.
func (d *Driver) Config() Config { return d.cfg }

// QMP runs QMP commands as an operator would, for tests.
func (d *Driver) QMP(ctx context.Context, commands ...string) error { return d.qmpDo(ctx, commands...) }

// HMP runs a human monitor command (e.g. qemu-io) for tests.
func (d *Driver) HMP(ctx context.Context, line string) (string, error) {
	q, err := dialQMP(ctx, d.qmpPath())
	if err != nil {
		return "", err
	}
	defer q.Close() //nolint:errcheck // test helper
	raw, err := q.execute("human-monitor-command", map[string]any{"command-line": line})
	if err != nil {
		return "", err
	}
	var out string
	err = json.Unmarshal(raw, &out)
	return out, err
}

// DiskDevice is the QOM path of the device disk0 is attached to, for
// qemu-io -d in tests.
func (d *Driver) DiskDevice(ctx context.Context) (string, error) {
	q, err := dialQMP(ctx, d.qmpPath())
	if err != nil {
		return "", err
	}
	defer q.Close() //nolint:errcheck // test helper
	raw, err := q.execute("query-block", nil)
	if err != nil {
		return "", err
	}
	var bl []struct {
		Qdev     string `json:"qdev"`
		Inserted struct {
			NodeName string `json:"node-name"`
		} `json:"inserted"`
	}
	if err := json.Unmarshal(raw, &bl); err != nil {
		return "", err
	}
	for _, b := range bl {
		// During a backup a copy-before-write filter sits above disk0.
		if strings.HasSuffix(b.Qdev, "/virtio-backend") {
			return b.Qdev, nil
		}
	}
	return "", fmt.Errorf("no device holds disk0: %s", raw)
}
