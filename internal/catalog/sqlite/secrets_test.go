package sqlite_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// TestRepositoryErrorFromDatabaseHidesSecrets makes the database itself
// refuse a repository with a message quoting the row's secrets (a trigger),
// the worst case of a driver error, and checks the store's error does not
// repeat them.
func TestRepositoryErrorFromDatabaseHidesSecrets(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	t.Cleanup(func() { s.Close() })
	r := catalog.Repository{Name: "offsite", URL: "s3://b/p", Password: "pw-Kx81", SecretAccessKey: "sk/Qq+7=", SessionToken: "tok-Zz0"}
	// RAISE with an expression quotes the actual values, as a constraint
	// message or driver detail could.
	if _, err := rawDB(t, s.Path()).Exec(`
CREATE TRIGGER refuse_repositories BEFORE INSERT ON repositories
BEGIN
    SELECT RAISE(ABORT, 'refused row ' || NEW.name || ': ' || NEW.password || ' ' || NEW.secret_access_key || ' ' || NEW.session_token);
END`); err != nil {
		t.Fatalf("create trigger: %v", err)
	}
	err := s.PutRepository(ctx, r)
	if err == nil {
		t.Fatal("PutRepository succeeded despite the trigger")
	}
	msg := err.Error()
	for _, secret := range []string{r.Password, r.SecretAccessKey, r.SessionToken} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains the secret %q", msg, secret)
		}
	}
	// The rest of the database's message is still there to diagnose.
	for _, want := range []string{"refused row offsite", catalog.Redacted, s.Path()} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if _, err := s.GetRepository(ctx, "offsite"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("GetRepository after the refused put: err = %v, want ErrNotFound", err)
	}
}
