//go:build !linux

package repository

import "os"

// dataExtents is unavailable here; callers read every block.
func dataExtents(f *os.File, size int64) ([]Range, bool) { return nil, false }
