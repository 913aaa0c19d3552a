package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Owner names (Options.Owner's default) identify one process uniquely:
//
//	<host>/<pid>@<boot id>:<pid namespace inode>:<start time>#<random>
//
// Host and pid alone are not unique: containers with host networking share
// a host name but not a pid namespace (two of them may both be pid 1),
// cloned machines share names. The boot id and pid namespace say whether
// the pid can be looked up from here at all; the start time (clock ticks
// since boot, /proc/<pid>/stat) tells a reused pid; the random suffix keeps
// names distinct where none of this can be read (then "-" stands for it).
//
// ownerProcessGone takes an owner for dead without waiting for its
// heartbeat to age only when the name is in this format, its host, boot id
// and pid namespace are this process's, and the pid does not exist, is a
// zombie, or was started at another time. Any other name (the old
// "<host>/<pid>", an explicit Options.Owner) waits for the heartbeat bound.

// processOwner returns this process's owner name.
func processOwner() string {
	host, _ := os.Hostname()
	pid := os.Getpid()
	start, _ := procStartTime(pid)
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d@%s:%s:%s#%s", host, pid, orDash(bootID()), orDash(pidNamespace()), orDash(start), hex.EncodeToString(b[:]))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// bootID is the kernel's random id of this boot ("" if unknown).
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// pidNamespace is the inode of this process's pid namespace ("" if unknown).
func pidNamespace() string {
	l, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	// "pid:[4026531836]"
	return strings.TrimSuffix(strings.TrimPrefix(l, "pid:["), "]")
}

// procStartTime returns a process's start time in clock ticks since boot
// (field 22 of /proc/<pid>/stat) and whether it is a zombie.
func procStartTime(pid int) (start string, zombie bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", false
	}
	j := strings.LastIndexByte(string(stat), ')')
	if j < 0 {
		return "", false
	}
	// After the command: state (field 3), ..., starttime (field 22).
	f := strings.Fields(string(stat[j+1:]))
	if len(f) < 20 {
		return "", false
	}
	return f[19], f[0] == "Z"
}

type ownerName struct {
	host, bootID, pidNS, start string
	pid                        int
}

// parseOwner parses an owner name in processOwner's format.
func parseOwner(owner string) (ownerName, bool) {
	var o ownerName
	slash := strings.LastIndexByte(owner, '/')
	at := strings.LastIndexByte(owner, '@')
	hash := strings.LastIndexByte(owner, '#')
	if slash <= 0 || at < slash || hash < at {
		return o, false
	}
	pid, err := strconv.Atoi(owner[slash+1 : at])
	if err != nil || pid <= 0 {
		return o, false
	}
	parts := strings.Split(owner[at+1:hash], ":")
	if len(parts) != 3 {
		return o, false
	}
	o = ownerName{host: owner[:slash], pid: pid, bootID: parts[0], pidNS: parts[1], start: parts[2]}
	return o, true
}

// ownerProcessGone reports whether owner names a process that certainly
// no longer runs: see the format above. A wrong "gone" would let another
// engine take over a live run, so every doubt answers false.
func ownerProcessGone(owner string) bool {
	o, ok := parseOwner(owner)
	if !ok || o.bootID == "-" || o.pidNS == "-" || o.start == "-" {
		return false
	}
	host, _ := os.Hostname()
	if o.host != host || o.bootID != bootID() || o.pidNS != pidNamespace() || o.pid == os.Getpid() {
		return false
	}
	if errors.Is(syscall.Kill(o.pid, 0), syscall.ESRCH) {
		return true
	}
	start, zombie := procStartTime(o.pid)
	if start == "" {
		return false // not readable: unknown
	}
	// A zombie exited (not yet reaped); another start time is another
	// process that reused the pid.
	return zombie || start != o.start
}

// ownerIsThisProcess reports whether owner names this very process (any
// engine in it).
func ownerIsThisProcess(owner string) bool {
	o, ok := parseOwner(owner)
	if !ok || o.pid != os.Getpid() {
		return false
	}
	host, _ := os.Hostname()
	start, _ := procStartTime(o.pid)
	return o.host == host && o.bootID == orDash(bootID()) && o.pidNS == orDash(pidNamespace()) && o.start == orDash(start)
}

// ownerOf returns the owner name processOwner would give the process pid
// (of this boot and pid namespace); for tests.
func ownerOf(pid int) string {
	host, _ := os.Hostname()
	start, _ := procStartTime(pid)
	return fmt.Sprintf("%s/%d@%s:%s:%s#test", host, pid, orDash(bootID()), orDash(pidNamespace()), orDash(start))
}
