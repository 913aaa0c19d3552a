package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

type detailError struct{ detail string }

func (e *detailError) Error() string { return "refused row: " + e.detail }

func TestRedactRepositoryError(t *testing.T) {
	r := catalog.Repository{Name: "offsite", Password: "pw-123", SecretAccessKey: "sk/ABC+def", SessionToken: "tok=="}
	inner := &detailError{detail: "(offsite, pw-123, sk/ABC+def, tok==)"}
	err := fmt.Errorf("put repository %q: %w: %w", r.Name, inner, context.Canceled)

	got := catalog.RedactRepositoryError(err, r)
	msg := got.Error()
	for _, secret := range []string{r.Password, r.SecretAccessKey, r.SessionToken} {
		if strings.Contains(msg, secret) {
			t.Errorf("redacted message %q still contains %q", msg, secret)
		}
	}
	if want := `put repository "offsite": refused row: (offsite, [redacted], [redacted], [redacted])`; !strings.HasPrefix(msg, want) {
		t.Errorf("redacted message = %q, want it to start %q", msg, want)
	}
	if !errors.Is(got, context.Canceled) {
		t.Error("redacted error no longer matches context.Canceled")
	}
	var d *detailError
	if errors.As(got, &d) {
		t.Error("errors.As reaches the unredacted inner error")
	}
}

func TestRedactRepositoryErrorLeavesCleanErrorsAlone(t *testing.T) {
	r := catalog.Repository{Name: "offsite", Password: "pw-123"}
	err := fmt.Errorf("repository %q: %w", r.Name, catalog.ErrNotFound)
	if got := catalog.RedactRepositoryError(err, r); got != err {
		t.Errorf("RedactRepositoryError changed an error without secrets: %v", got)
	}
	if catalog.RedactRepositoryError(nil, r) != nil {
		t.Error("RedactRepositoryError(nil) is not nil")
	}
	// Empty secrets are not "contained" in every message.
	if got := catalog.RedactRepositoryError(err, catalog.Repository{Name: "x"}); got != err {
		t.Errorf("empty secrets changed the error: %v", got)
	}
}
