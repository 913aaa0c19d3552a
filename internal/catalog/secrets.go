package catalog

import (
	"errors"
	"strings"
)

// Redacted replaces a secret in error messages.
const Redacted = "[redacted]"

// RedactRepositoryError returns err unchanged unless its message contains one
// of r's secrets (Password, SecretAccessKey, SessionToken); then it returns
// an error whose message has each of them replaced by Redacted.
//
// Stores apply it to every error about a repository they return, because a
// database error may quote the row it refused (a trigger, a constraint
// message, a driver's detail). The redacted error still matches the
// original's sentinels with errors.Is (ErrNotFound, context.Canceled) but
// hides its chain from errors.As, which could otherwise reach the unredacted
// text.
func RedactRepositoryError(err error, r Repository) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	redacted := msg
	for _, secret := range []string{r.Password, r.SecretAccessKey, r.SessionToken} {
		if secret != "" {
			redacted = strings.ReplaceAll(redacted, secret, Redacted)
		}
	}
	if redacted == msg {
		return err
	}
	return &redactedError{msg: redacted, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Is, not Unwrap: errors.Is sees through, errors.As does not.
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }
