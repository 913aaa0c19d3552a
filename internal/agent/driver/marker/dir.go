package marker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// writeNew writes data to a new file beside path (O_CREAT|O_EXCL with a
// random name, so nothing planted there is followed) and renames it over
// path (which replaces a symbolic link rather than writing through it).
func writeNew(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
	}
	return werr
}

// WriteFile writes a file the agent owns in a state directory without
// following a link planted at its name (see Set).
func WriteFile(path string, data []byte) error { return writeNew(path, data) }

// SecureDir makes dir (a workload's node-local state directory) safe for the
// agent to write its records in: created with perm if missing; a directory
// (not a link); owned by the agent's user; writable by nobody else. A
// directory left owned by a workload's user (an exec workload's commands
// owned it before they got a sub-directory of their own, or the workload
// changed driver) is handed back to the agent and its group and other write
// bits are cleared: anyone else who can create entries there could plant a
// link at the name of a file the agent writes. Entries such a user left
// behind are not followed by the agent (Set and WriteFile replace them).
func SecureDir(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("create the state directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("state directory %s is not a directory (a symbolic link or a file): %w; remove it, the agent creates it", dir, err)
		}
		return fmt.Errorf("open the state directory %s: %w", dir, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("state directory %s: no owner information", dir)
	}
	uid, gid := os.Geteuid(), os.Getegid()
	if int(st.Uid) != uid {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("state directory %s is owned by uid %d, not the agent (uid %d), and could not be handed back: %w; chown it to the agent's user", dir, st.Uid, uid, err)
		}
	}
	if mode := fi.Mode(); mode&0o022 != 0 || mode&fs.ModeSticky != 0 || mode&fs.ModeSetgid != 0 {
		if err := f.Chmod(mode.Perm() &^ 0o022); err != nil {
			return fmt.Errorf("state directory %s is writable by other users (mode %v) and could not be restricted: %w; chmod go-w it", dir, mode, err)
		}
	}
	return nil
}
