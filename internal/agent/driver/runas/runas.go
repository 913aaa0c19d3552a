// Package runas resolves the operating-system user a driver runs a
// workload's programs as, and checks what that user can reach. Programs are
// started with the user's uid, primary gid and supplementary groups (never
// the agent's groups), and with an environment built for them rather than
// the agent's own.
package runas

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// User is a resolved operating-system user.
type User struct {
	Name   string
	UID    int
	GID    int
	Groups []int // supplementary groups, the primary one included
	Home   string
}

// Lookup resolves name (a user name or a numeric uid).
func Lookup(name string) (User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var uerr error
		if u, uerr = user.LookupId(name); uerr != nil {
			return User{}, fmt.Errorf("user %q: %w", name, err)
		}
	}
	return fromOS(u)
}

// Current is the user the agent runs as.
func Current() (User, error) {
	u, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		// A uid without a passwd entry (containers): still a user.
		return User{Name: strconv.Itoa(os.Getuid()), UID: os.Getuid(), GID: os.Getgid(), Home: "/"}, nil
	}
	return fromOS(u)
}

func fromOS(u *user.User) (User, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return User{}, fmt.Errorf("user %q: uid %q is not a number", u.Username, u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return User{}, fmt.Errorf("user %q: gid %q is not a number", u.Username, u.Gid)
	}
	out := User{Name: u.Username, UID: uid, GID: gid, Home: u.HomeDir, Groups: []int{gid}}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.Atoi(id); err == nil && !slices.Contains(out.Groups, g) {
				out.Groups = append(out.Groups, g)
			}
		}
	}
	if out.Home == "" {
		out.Home = "/"
	}
	return out, nil
}

// IsAgent reports whether u is the user the agent runs as: its programs
// need no change of credentials.
func (u User) IsAgent() bool { return u.UID == os.Getuid() }

// Credential is what exec.Cmd's SysProcAttr needs to start a program as u:
// nil when u is the agent's own user. Changing to another user needs the
// agent to run as root.
func (u User) Credential() (*syscall.Credential, error) {
	if u.IsAgent() {
		return nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("cannot run programs as %s (uid %d): the agent runs as uid %d, and only root can change user; run the agent as root or remove user", u.Name, u.UID, os.Geteuid())
	}
	id := func(n int) (uint32, error) {
		if n < 0 || n > math.MaxUint32 {
			return 0, fmt.Errorf("user %s: id %d is not a valid uid or gid", u.Name, n)
		}
		return uint32(n), nil
	}
	groups := make([]uint32, len(u.Groups))
	for i, g := range u.Groups {
		var err error
		if groups[i], err = id(g); err != nil {
			return nil, err
		}
	}
	uid, err := id(u.UID)
	if err != nil {
		return nil, err
	}
	gid, err := id(u.GID)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}, nil
}

// Access bits for Can.
const (
	Read    = 4
	Write   = 2
	Execute = 1
)

// Can reports whether u may access path with the given bits (Read, Write,
// Execute, or'ed), judged by the permission bits and owners of path and of
// every directory above it, which u must be able to search. Root may do
// anything. ACLs are not read: a grant by ACL alone is not seen, a denial
// is reported instead (never the other way round).
func (u User) Can(path string, bits uint32) error {
	if u.UID == 0 {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	var dirs []string
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for _, d := range slices.Backward(dirs) {
		if err := u.check(d, Execute); err != nil {
			return err
		}
	}
	return u.check(abs, bits)
}

func (u User) check(path string, bits uint32) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	perm := uint32(info.Mode().Perm())
	var have uint32
	switch {
	case int(st.Uid) == u.UID:
		have = perm >> 6
	case slices.Contains(u.Groups, int(st.Gid)):
		have = perm >> 3
	default:
		have = perm
	}
	if have&bits != bits {
		return &fs.PathError{Op: "access as " + u.Name + " (" + describe(bits) + ")", Path: path, Err: fs.ErrPermission}
	}
	return nil
}

func describe(bits uint32) string {
	s := ""
	for _, b := range []struct {
		bit  uint32
		name string
	}{{Read, "read"}, {Write, "write"}, {Execute, "search"}} {
		if bits&b.bit != 0 {
			if s != "" {
				s += "+"
			}
			s += b.name
		}
	}
	return s
}
