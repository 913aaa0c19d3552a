package repository

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MinPasswordLength is the fewest characters a new repository password may
// have. The password is the only secret between whoever can read the
// repository's storage and its data, and argon2id only slows guessing: a
// short password falls to an offline search. Twelve characters of a
// passphrase (several words) keep that search out of reach. Existing
// passwords are not checked: a repository made with a shorter one still
// opens.
const MinPasswordLength = 12

// ErrPasswordTooShort: a new password has fewer than MinPasswordLength
// characters.
var ErrPasswordTooShort = errors.New("password too short")

// ErrKeyDamaged: the repository's key files exist but none can be read, so
// no password can open it. It is not ErrNoRepository: initialising a new
// repository there would be wrong.
var ErrKeyDamaged = errors.New("repository key files are damaged")

// CheckNewPassword says whether password may protect a new repository or
// become a new password of one (init, key add, key passwd). Open accepts any
// password that opens a key.
func CheckNewPassword(password string) error {
	if n := utf8.RuneCountInString(password); n < MinPasswordLength {
		return fmt.Errorf("%w: it has %d characters, at least %d are required (a passphrase of several words is easy to remember)",
			ErrPasswordTooShort, n, MinPasswordLength)
	}
	return nil
}

// noUsableKey explains why a location with no readable key file cannot be
// opened. Only a location with neither key files nor config holds no
// repository (ErrNoRepository, which callers may answer with Init); damaged
// key files, or a config without keys, are a repository that lost its keys.
// cfgErr is the result of loading the config.
func noUsableKey(be Backend, damaged []string, cfgErr error) error {
	switch {
	case len(damaged) > 0:
		return fmt.Errorf("open repository at %s: %w: %d key files cannot be read (%s), so no password can open it; restore the keys directory from a copy of the repository (do not initialise a new one here)",
			be.Location(), ErrKeyDamaged, len(damaged), shortNames(damaged))
	case cfgErr == nil:
		return fmt.Errorf("open repository at %s: %w: the repository config is present but there are no key files; restore the keys directory from a copy of the repository (do not initialise a new one here)",
			be.Location(), ErrKeyDamaged)
	case errors.Is(cfgErr, ErrNotExist):
		return fmt.Errorf("open repository at %s: %w (no key files and no config; initialise one first)", be.Location(), ErrNoRepository)
	default:
		return fmt.Errorf("open repository at %s: no key files, and loading the config failed: %w", be.Location(), cfgErr)
	}
}

func shortNames(names []string) string {
	out := make([]byte, 0, 9*len(names))
	for i, n := range names {
		if i > 0 {
			out = append(out, ", "...)
		}
		out = append(out, short(n)...)
	}
	return string(out)
}
