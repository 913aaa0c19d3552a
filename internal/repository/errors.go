package repository

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrWrongPassword: no key file in the repository opens with the password.
	ErrWrongPassword = errors.New("wrong password: no key in the repository matches it")
	// ErrNoRepository: the location holds no repository (no key files or config).
	ErrNoRepository = errors.New("no repository here")
	// ErrAlreadyInitialized: Init found an existing repository.
	ErrAlreadyInitialized = errors.New("repository already initialized")
	// ErrLocked: a conflicting lock is held (see *LockedError for who holds it).
	ErrLocked = errors.New("repository is locked")
	// ErrSnapshotNotFound: no snapshot matches the id or prefix.
	ErrSnapshotNotFound = errors.New("snapshot not found")
	// ErrFileNotFound: the path is not in the snapshot.
	ErrFileNotFound = errors.New("file not found in snapshot")
	// ErrDamaged: some data could not be read back; see *DamageError.
	ErrDamaged = errors.New("repository data is damaged")
)

// DamagedFile names one file a restore or read could not reproduce.
type DamagedFile struct {
	Snapshot string `json:"snapshot"`
	Path     string `json:"path"`
	Reason   string `json:"reason"`
}

// DamageError lists the files that could not be restored because chunks
// they need are missing or corrupt; everything else was restored.
// errors.Is(err, ErrDamaged) holds.
type DamageError struct {
	Files []DamagedFile
}

func (e *DamageError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d file(s) could not be restored because repository data is damaged (run verify --read-data for details):", len(e.Files))
	for i, f := range e.Files {
		if i == 20 {
			fmt.Fprintf(&b, " ... and %d more", len(e.Files)-i)
			break
		}
		fmt.Fprintf(&b, " %s (%s);", f.Path, f.Reason)
	}
	return strings.TrimSuffix(b.String(), ";")
}

func (e *DamageError) Is(target error) bool { return target == ErrDamaged }

// objectError is a failure to read one repository object, naming it.
type objectError struct {
	Type FileType
	Name string
	Err  error
}

func (e *objectError) Error() string {
	kind := map[FileType]string{IndexFile: "index", SnapshotFile: "snapshot", PackFile: "pack", LockFile: "lock", KeyFile: "key"}[e.Type]
	if kind == "" {
		kind = string(e.Type)
	}
	return fmt.Sprintf("%s %s: %v", kind, short(e.Name), e.Err)
}

func (e *objectError) Unwrap() error { return e.Err }
