//go:build !linux

package repository

func (d *directReader) readvAt([][]byte, int64) (int, bool) { return 0, false }
