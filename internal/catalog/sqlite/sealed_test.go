package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/secretbox"
)

// With a secret box no byte of the catalog's files (database, WAL) holds a
// repository secret; a row written in plaintext before is sealed by
// SealExisting and reads back the same.
func TestRepositorySecretsNotInCatalogFile(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	t.Cleanup(func() { s.Close() })
	legacy := catalog.Repository{Name: "legacy", URL: "/r1", Password: "legacy-password-Q7", SecretAccessKey: "legacy-sk-Q7"}
	if err := s.PutRepository(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	key, err := secretbox.LoadOrCreateKeyFile(s.Path() + ".key")
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	s.SetSecretBox(box)
	if n, err := s.SealExisting(ctx); err != nil || n != 1 {
		t.Fatalf("SealExisting = %d, %v; want 1", n, err)
	}
	r := catalog.Repository{Name: "offsite", URL: "s3://b/p", AccessKeyID: "AK", Password: "new-password-Z9x", SecretAccessKey: "new-sk-Z9x", SessionToken: "new-tok-Z9x"}
	if err := s.PutRepository(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []catalog.Repository{legacy, r} {
		got, err := s.GetRepository(ctx, want.Name)
		if err != nil || got.Password != want.Password || got.SecretAccessKey != want.SecretAccessKey || got.SessionToken != want.SessionToken {
			t.Errorf("GetRepository(%s) = %+v, %v", want.Name, got, err)
		}
	}
	// Compact so the plaintext the legacy row left in free pages or the WAL
	// is gone too, as the provider does after sealing.
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(s.Path() + "*")
	for _, f := range files {
		if strings.HasSuffix(f, ".key") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{legacy.Password, legacy.SecretAccessKey, r.Password, r.SecretAccessKey, r.SessionToken} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s holds %q in plaintext", filepath.Base(f), secret)
			}
		}
	}
	fi, err := os.Stat(s.Path() + ".key")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
}
