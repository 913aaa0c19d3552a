package qemu

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openBeneath opens the image at real (resolved, inside root) for the
// check and for QEMU: relative to root, refusing any symbolic link or a
// step out of root on the way (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS),
// so a directory or file swapped for a link after the path was resolved is
// refused rather than followed. It returns a read-write and a read-only
// descriptor of the same file (QEMU may reopen an image either way) when
// writable, else a read-only one.
func openBeneath(root, real string, writable bool) ([]*os.File, error) {
	rel, err := filepath.Rel(root, real)
	if err != nil {
		return nil, err
	}
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the workload directory %s: %w", root, err)
	}
	defer func() { _ = unix.Close(dir) }()
	modes := []uint64{unix.O_RDONLY}
	if writable {
		modes = []uint64{unix.O_RDWR, unix.O_RDONLY}
	}
	var files []*os.File
	for _, mode := range modes {
		fd, err := unix.Openat2(dir, rel, &unix.OpenHow{
			Flags:   mode | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != nil {
			closeAll(files)
			return nil, fmt.Errorf("open %s inside the workload directory without following links: %w (was it replaced?)", real, err)
		}
		f := os.NewFile(uintptr(fd), real)
		files = append(files, f)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			closeAll(files)
			return nil, fmt.Errorf("%s is not a regular file; disk images are files", real)
		}
	}
	if len(files) == 2 { // both must be the one file
		var a, b unix.Stat_t
		if unix.Fstat(int(files[0].Fd()), &a) != nil || unix.Fstat(int(files[1].Fd()), &b) != nil || a.Dev != b.Dev || a.Ino != b.Ino {
			closeAll(files)
			return nil, fmt.Errorf("%s changed while it was opened; try again", real)
		}
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// closeChains closes the descriptors of checked chains.
func closeChains(chains [][]layer) {
	for _, c := range chains {
		for _, l := range c {
			closeAll(l.files)
		}
	}
}
