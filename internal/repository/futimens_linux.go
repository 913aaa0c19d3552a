package repository

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setFileTimes sets a file's access and modification times through its
// descriptor (futimens: no path lookup, which matters when restoring
// thousands of small files).
func setFileTimes(f *os.File, ns int64) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno unix.Errno
	if err := rc.Control(func(fd uintptr) {
		// utimensat(fd, NULL, ts, 0) is futimens(fd, ts).
		_, _, errno = unix.Syscall6(unix.SYS_UTIMENSAT, fd, 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}
