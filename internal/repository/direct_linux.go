package repository

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directReader reads a large file with O_DIRECT: the device writes straight
// into our buffer, skipping the page cache and the kernel's copy out of it
// (a large share of a backup's CPU for big images), and a backup does not
// evict the host's cached data. Anything it cannot do (filesystems without
// O_DIRECT, misaligned buffers or offsets) falls back to ordinary reads.
type directReader struct {
	f *os.File
}

const directAlign = 4096

func openDirect(path string) *directReader {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	return &directReader{f: f}
}

func (d *directReader) Close() {
	if d != nil {
		_ = d.f.Close() // read-only
	}
}

// readAt reads len(b) bytes at off (fewer at end of file). ok is false when
// the read could not be done directly and the caller should read normally.
func (d *directReader) readAt(b []byte, off int64) (n int, ok bool) {
	if d == nil || off%directAlign != 0 || len(b) == 0 || uintptr(unsafe.Pointer(&b[0]))%directAlign != 0 {
		return 0, false
	}
	want := len(b)
	full := (want + directAlign - 1) / directAlign * directAlign
	if cap(b) < full {
		return 0, false
	}
	buf := b[:full]
	for n < want {
		m, err := unix.Pread(int(d.f.Fd()), buf[n:], off+int64(n))
		if err != nil {
			return 0, false
		}
		if m == 0 {
			break // end of file
		}
		n += m
		if m%directAlign != 0 {
			break // short read: end of file
		}
	}
	return min(n, want), true
}
