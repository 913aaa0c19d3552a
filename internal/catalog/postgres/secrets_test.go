package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/postgres"
	pgtest "github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
)

// TestRepositoryErrorFromDatabaseHidesSecrets makes the server itself refuse
// a repository with a message quoting the row's secrets (a trigger), the
// worst case of a server error, and checks the store's error does not
// repeat them.
func TestRepositoryErrorFromDatabaseHidesSecrets(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t).CreateDatabase(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	r := catalog.Repository{Name: "offsite", URL: "s3://b/p", Password: "pw-Kx81", SecretAccessKey: "sk/Qq+7=", SessionToken: "tok-Zz0"}
	if _, err := rawDB(t, url).Exec(`
CREATE FUNCTION refuse_repositories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refused row %: % % %', NEW.name, NEW.password, NEW.secret_access_key, NEW.session_token;
END
$$;
CREATE TRIGGER refuse_repositories BEFORE INSERT ON repositories
FOR EACH ROW EXECUTE FUNCTION refuse_repositories();`); err != nil {
		t.Fatalf("create trigger: %v", err)
	}
	err = s.PutRepository(ctx, r)
	if err == nil {
		t.Fatal("PutRepository succeeded despite the trigger")
	}
	msg := err.Error()
	for _, secret := range []string{r.Password, r.SecretAccessKey, r.SessionToken} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains the secret %q", msg, secret)
		}
	}
	for _, want := range []string{"refused row offsite", catalog.Redacted} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if _, err := s.GetRepository(ctx, "offsite"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("GetRepository after the refused put: err = %v, want ErrNotFound", err)
	}
}
