// Package proc reads what the drivers need to know about processes from
// Linux's /proc: whether a pid is alive, its command line, its state and
// its children. Drivers identify their own workload processes by these,
// never by pid files on the shared volume (which name processes of
// whichever node wrote them).
package proc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// State is the one-letter scheduler state of pid ("R", "S", "D", "T", "Z",
// ...), or "" if there is no such process.
func State(pid int) string {
	_, rest, ok := stat(pid)
	if !ok || len(rest) < 1 {
		return ""
	}
	return rest[0]
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	s := State(pid)
	return s != "" && s != "Z"
}

// Stopped reports whether pid is stopped by a signal (or traced).
func Stopped(pid int) bool {
	s := State(pid)
	return s == "T" || s == "t"
}

// Args returns pid's command line, or nil.
func Args(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

// Parent returns pid's parent pid, or 0.
func Parent(pid int) int {
	_, rest, ok := stat(pid)
	if !ok || len(rest) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(rest[1])
	return ppid
}

// Children returns the pids whose parent is pid.
func Children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err == nil && Parent(c) == pid {
			out = append(out, c)
		}
	}
	return out
}

// Descendants returns every process below pid: children, theirs, and so on
// (parents before their children).
func Descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	kids := map[int][]int{}
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err == nil {
			if p := Parent(c); p != 0 {
				kids[p] = append(kids[p], c)
			}
		}
	}
	var out []int
	for queue := kids[pid]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, kids[queue[0]]...)
	}
	return out
}

// WaitUntil polls cond every few milliseconds until it holds (true) or
// timeout passes or ctx ends (false). It is for waiting on other
// processes, which send no notice.
func WaitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// stat returns the fields of /proc/pid/stat after the command name (which
// may hold spaces and parentheses, so it is cut at the last ')').
func stat(pid int) (comm string, rest []string, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", nil, false
	}
	open, closing := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || closing < open {
		return "", nil, false
	}
	return string(data[open+1 : closing]), strings.Fields(string(data[closing+1:])), true
}

// Env returns pid's environment ("KEY=value" entries), or nil when it
// cannot be read (no such process, or another user's without privilege).
func Env(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}
