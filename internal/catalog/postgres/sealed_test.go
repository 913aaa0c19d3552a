package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/postgres"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/secretbox"
	pgtest "github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
)

// A URL without sslmode connects with verify-full: against the test server,
// which has no TLS, the connection is refused rather than made in
// plaintext; the same URL with sslmode=disable connects.
func TestOpenWithoutSSLModeRequiresVerifiedTLS(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	ctx := context.Background()
	url := pgtest.Start(t).CreateDatabase(t)
	plain := strings.Replace(strings.Replace(url, "sslmode=disable&", "", 1), "?sslmode=disable", "", 1)
	if strings.Contains(plain, "sslmode") {
		t.Fatalf("could not strip sslmode from %s", url)
	}
	if s, err := postgres.Open(ctx, plain, postgres.Options{}); err == nil {
		s.Close()
		t.Fatal("Open without sslmode connected to a server without TLS")
	} else if !strings.Contains(strings.ToLower(err.Error()), "tls") || !strings.Contains(err.Error(), "sslmode") {
		t.Fatalf("Open without sslmode: %v, want a TLS refusal that names sslmode", err)
	}
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("Open with sslmode=disable: %v", err)
	}
	s.Close()
}

// With a secret box the repositories table holds no secret in plaintext;
// rows written before (plaintext) still read, and SealExisting seals them;
// another key does not open them.
func TestRepositorySecretsSealedInTable(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t).CreateDatabase(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	legacy := catalog.Repository{Name: "legacy", URL: "/r1", Password: "legacy-password-Q7", SecretAccessKey: "legacy-sk-Q7"}
	if err := s.PutRepository(ctx, legacy); err != nil { // no box yet: an older release
		t.Fatal(err)
	}
	box, err := secretbox.New(make([]byte, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	s.SetSecretBox(box)
	r := catalog.Repository{Name: "offsite", URL: "s3://b/p", AccessKeyID: "AK", Password: "new-password-Z9x", SecretAccessKey: "new-sk-Z9x", SessionToken: "new-tok-Z9x"}
	if err := s.PutRepository(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetRepository(ctx, "legacy"); err != nil || got.Password != legacy.Password {
		t.Fatalf("legacy plaintext row: %+v, %v", got, err)
	}
	if n, err := s.SealExisting(ctx); err != nil || n != 1 {
		t.Fatalf("SealExisting = %d, %v; want 1 row sealed", n, err)
	}
	var dump string
	if err := rawDB(t, url).QueryRow(`SELECT string_agg(name || password || secret_access_key || session_token, '|') FROM repositories`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{legacy.Password, legacy.SecretAccessKey, r.Password, r.SecretAccessKey, r.SessionToken} {
		if strings.Contains(dump, secret) {
			t.Errorf("repositories table holds %q in plaintext", secret)
		}
	}
	for _, want := range []catalog.Repository{legacy, r} {
		got, err := s.GetRepository(ctx, want.Name)
		if err != nil || got.Password != want.Password || got.SecretAccessKey != want.SecretAccessKey || got.SessionToken != want.SessionToken {
			t.Errorf("GetRepository(%s) = %+v, %v", want.Name, got, err)
		}
	}
	other := make([]byte, secretbox.KeySize)
	other[0] = 1
	box2, _ := secretbox.New(other)
	s.SetSecretBox(box2)
	if _, err := s.GetRepository(ctx, "offsite"); !errors.Is(err, secretbox.ErrWrongKey) {
		t.Fatalf("GetRepository with another key: %v, want ErrWrongKey", err)
	}
}
