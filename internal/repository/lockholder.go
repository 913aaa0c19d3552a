package repository

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Lock timing. A held lock is rewritten every StaleLockAge/lockRefreshDivisor
// (1 minute with the default 5-minute StaleLockAge), so a holder that misses
// up to four refreshes in a row (a slow or briefly unreachable backend) still
// keeps its lock, while the lock of a process that died on another host is
// ignored five minutes after its last refresh. A lock whose holder is known
// to be dead (same boot of this machine, same PID namespace, and its process
// is gone or is another process now) is stale at once.
const (
	defaultStaleLockAge = 5 * time.Minute
	lockRefreshDivisor  = 5
)

// processIdentity says which process on which boot of which host holds a
// lock, so a later process on the same host can tell that the holder died.
// Every field is empty where the platform does not say (then only the
// lock's age decides).
type processIdentity struct {
	BootID   string // /proc/sys/kernel/random/boot_id: differs after every reboot
	PIDNS    string // the PID namespace: PIDs compare only within one
	PIDStart uint64 // the process's start time in clock ticks since boot (tells a reused PID)
}

var selfIdentity = sync.OnceValue(func() processIdentity {
	var id processIdentity
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		id.BootID = strings.TrimSpace(string(b))
	}
	if ns, err := os.Readlink("/proc/self/ns/pid"); err == nil {
		id.PIDNS = ns
	}
	if st, _, err := processStat(os.Getpid()); err == nil {
		id.PIDStart = st
	}
	return id
})

// processStat reads the start time and state of process pid from
// /proc/<pid>/stat. The error wraps fs.ErrNotExist when there is no such
// process.
func processStat(pid int) (start uint64, state byte, err error) {
	if pid <= 0 {
		return 0, 0, fs.ErrNotExist
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces and
	// parentheses itself: the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, errors.New("unexpected /proc stat format")
	}
	fields := strings.Fields(string(raw[i+1:]))
	// fields[0] is field 3 (state); field 22 (starttime) is fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, errors.New("unexpected /proc stat format")
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, errors.New("unexpected /proc stat format")
	}
	return start, fields[0][0], nil
}

// holderDead reports whether the process that wrote rec is known to be gone:
// it ran in this boot of this machine and in this PID namespace (the boot
// id is random per boot, and PID namespace ids are unique within a kernel,
// so together they name one PID space; the hostname, which an operator may
// override or reuse, is not relied on), and its PID is now unused, a
// zombie, or a different process (another start time). Anything unknown
// answers false: a lock of another host, or one written without the
// identity, only expires by age.
func (rec lockRecord) holderDead() bool {
	self := selfIdentity()
	if rec.BootID == "" || rec.PIDNS == "" || rec.PIDStart == 0 || self.BootID == "" || self.PIDNS == "" {
		return false
	}
	if rec.BootID != self.BootID || rec.PIDNS != self.PIDNS {
		return false
	}
	start, state, err := processStat(rec.PID)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	return state == 'Z' || state == 'X' || start != rec.PIDStart
}
