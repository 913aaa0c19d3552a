package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// qmp is a QEMU Machine Protocol session on the VM's control socket. The
// protocol is small (a greeting, capability negotiation, then one JSON
// command and one JSON answer at a time, with events interleaved), so a
// few lines here replace a dependency: no QMP module for Go has a release.
type qmp struct {
	conn net.Conn
	dec  *json.Decoder
}

// qmpTimeout bounds a session when the caller's context has no deadline.
const qmpTimeout = 30 * time.Second

func dialQMP(ctx context.Context, path string) (*qmp, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to QMP socket %s: %w", path, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(qmpTimeout)
	}
	_ = conn.SetDeadline(deadline)
	q := &qmp{conn: conn, dec: json.NewDecoder(conn)}
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := q.dec.Decode(&greeting); err != nil || greeting.QMP == nil {
		_ = conn.Close()
		return nil, fmt.Errorf("QMP greeting on %s: %w", path, errOr(err, "not a QMP server"))
	}
	if _, err := q.execute("qmp_capabilities", nil); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmp) Close() error { return q.conn.Close() }

// execute runs one command and returns its "return" value; QMP errors come
// back as errors naming the command and QEMU's description.
func (q *qmp) execute(command string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	if err := json.NewEncoder(q.conn).Encode(req); err != nil {
		return nil, fmt.Errorf("QMP %s: %w", command, err)
	}
	return q.answer(command)
}

// answer reads the answer to command, skipping events.
func (q *qmp) answer(command string) (json.RawMessage, error) {
	for {
		var msg struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := q.dec.Decode(&msg); err != nil {
			return nil, fmt.Errorf("QMP %s: %w", command, err)
		}
		switch {
		case msg.Event != "":
			continue // asynchronous events are not answers
		case msg.Error != nil:
			return nil, fmt.Errorf("QMP %s: %s: %s", command, msg.Error.Class, msg.Error.Desc)
		default:
			return msg.Return, nil
		}
	}
}

// status returns QEMU's run state: "running", "paused", "shutdown", ...
func (q *qmp) status() (string, error) {
	raw, err := q.execute("query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", fmt.Errorf("QMP query-status: %w", err)
	}
	return st.Status, nil
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// executeFD runs one command with a descriptor attached (SCM_RIGHTS), as
// QMP's getfd and add-fd expect: QEMU gets an open file or socket without
// needing access to its path.
func (q *qmp) executeFD(command string, args any, f *os.File) (json.RawMessage, error) {
	uc, ok := q.conn.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("QMP %s: descriptors need a Unix socket", command)
	}
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("QMP %s: %w", command, err)
	}
	if _, _, err := uc.WriteMsgUnix(b, syscall.UnixRights(int(f.Fd())), nil); err != nil {
		return nil, fmt.Errorf("QMP %s: send descriptor: %w", command, err)
	}
	return q.answer(command)
}
