package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Format prints "(redacted)" under every verb (%d, %x, %q...): without it,
// fmt prints a string type's value for the verbs String does not cover.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "(redacted)") }

// maxSecretFile bounds what a secret file may hold; a password or token is
// short, so a larger file is a mistake (a log, a device) and is not read.
const maxSecretFile = 64 << 10

// secretFileError is a refusal of a secret file; Title is the diagnostic's
// summary. Messages name the file, never its contents.
type secretFileError struct {
	Title string
	Err   error
}

func (e *secretFileError) Error() string { return e.Err.Error() }
func (e *secretFileError) Unwrap() error { return e.Err }

// readSecretFile reads a secret from path, which must be a regular file,
// not a symlink, owned by root or by the agent's user, that no one else can
// read or write. It opens the file once and checks and reads that open
// file, so the file checked is the file read (no swap between a stat and
// a read by name). attr names the config attribute, for messages.
func readSecretFile(path, attr string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &secretFileError{"Invalid " + attr, fmt.Errorf("%s is a symbolic link; point %s at the file itself, so that no one who can change the link can swap the secret", path, attr)}
		}
		return nil, &secretFileError{"Cannot read " + attr, fmt.Errorf("open %s: %w", path, err)}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &secretFileError{"Cannot read " + attr, fmt.Errorf("stat %s: %w", path, err)}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, &secretFileError{"Invalid " + attr, fmt.Errorf("%s is not a regular file; point %s at the file holding the secret", path, attr)}
	}
	if euid := os.Geteuid(); st.Uid != 0 && int(st.Uid) != euid {
		return nil, &secretFileError{"Secret file owned by another user", fmt.Errorf(
			"%s is owned by uid %d, so that user can change the secret; make root or the agent's user (uid %d) its owner (`chown %d %s`)", path, st.Uid, euid, euid, path)}
	}
	if perm := st.Mode & 0o777; perm&0o077 != 0 {
		return nil, &secretFileError{"Secret file readable by others", fmt.Errorf(
			"%s has mode %04o; anyone who can read it can use the secret, so run `chmod 600 %s`", path, perm, path)}
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, &secretFileError{"Cannot read " + attr, fmt.Errorf("read %s: %w; make it readable by the user running the agent", path, err)}
	}
	if len(raw) > maxSecretFile {
		return nil, &secretFileError{"Invalid " + attr, fmt.Errorf("%s is larger than %d bytes; a secret file holds one password or token", path, maxSecretFile)}
	}
	return raw, nil
}
