// Package racy marks copies whose modification time cannot be trusted: a
// copy of a file modified at or after a point (a backup's start, less a
// margin for coarse file system clocks) gets its time set back by one
// nanosecond, so the next size-and-time comparison copies it again. A file
// rewritten in place at the same size within one timestamp tick of a copy
// would otherwise keep the stale copy for good.
package racy

import (
	"io/fs"
	"os"
	"time"
)

// Margin covers coarse file system timestamps and the time a copy takes to
// stat a file.
const Margin = time.Second

// Mark sets back by 1 ns the modification time of every regular file under
// dir modified at or after since. It works through an os.Root, so links in
// dir are never followed out of it.
func Mark(dir string, since time.Time) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }() // a directory handle
	return fs.WalkDir(root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if m := info.ModTime(); !m.Before(since) {
			return root.Chtimes(p, m, m.Add(-time.Nanosecond))
		}
		return nil
	})
}
