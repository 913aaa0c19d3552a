//go:build !linux

package repository

import (
	"os"
	"time"
)

// setFileTimes falls back to a path-based call.
func setFileTimes(f *os.File, ns int64) error {
	t := time.Unix(0, ns)
	return os.Chtimes(f.Name(), t, t)
}
