package serve

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockSuffix names, beside a SQLite catalog, the file the one daemon on it
// holds (flock) while it runs. SQLite has no leadership across machines and
// two schedulers on one file would both run every slot, so a second daemon
// is refused; PostgreSQL catalogs elect a leader instead.
const lockSuffix = ".daemon.lock"

// errLocked reports a SQLite catalog another daemon serves.
var errLocked = errors.New("catalog in use by another engine daemon")

// lockCatalog takes the exclusive lock of a SQLite catalog for the life of
// the process (until release) and records the pid in it.
func lockCatalog(catalog string) (release func(), err error) {
	path := catalog + lockSuffix
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the daemon lock %s: %w; the directory of the catalog must be writable by the daemon's user", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by %s; a SQLite catalog is served by one daemon only: stop that daemon, or move the catalog to PostgreSQL to run several (they elect a leader)", errLocked, path, lockHolder(path))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { _ = f.Close() }, nil // closing releases the lock
}

// lockHolder names the process the lock file says holds it.
func lockHolder(path string) string {
	if data, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			return "the daemon with pid " + strconv.Itoa(pid)
		}
	}
	return "another process"
}
