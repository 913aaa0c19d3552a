package repository

import (
	"os"

	"golang.org/x/sys/unix"
)

// dataExtents returns the regions of f that may hold data, using
// SEEK_DATA/SEEK_HOLE, so that blocks lying wholly in a hole of a sparse
// source file (a thin disk image) are recorded as holes without reading
// them. ok is false when the filesystem cannot tell (then read everything).
func dataExtents(f *os.File, size int64) (ext []Range, ok bool) {
	fd := int(f.Fd())
	var off int64
	for off < size {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // only a hole up to EOF
		}
		if err != nil {
			return nil, false
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, false
		}
		if hole > size {
			hole = size
		}
		if hole > data {
			ext = append(ext, Range{Offset: data, Length: hole - data})
		}
		off = hole
	}
	return ext, true
}
