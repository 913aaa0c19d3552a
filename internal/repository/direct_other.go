//go:build !linux

package repository

type directReader struct{}

func openDirect(string) *directReader                          { return nil }
func (d *directReader) Close()                                 {}
func (d *directReader) readAt(b []byte, off int64) (int, bool) { return 0, false }
