package catalogopen

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlite"
)

// A SQLite catalog an older release wrote (secrets in plaintext) is sealed
// when it is opened: afterwards no byte of its files holds a
// secret, the key file beside it is 0600, and the repository reads back
// unchanged through the opened store.
func TestOpenCatalogSealsPlaintextSecretsOfOlderRelease(t *testing.T) {
	t.Setenv(EnvCatalogKey, "")
	t.Setenv(EnvCatalogKeyFile, "")
	ctx := context.Background()
	where := filepath.Join(t.TempDir(), "catalog.db")
	old, err := sqlite.Open(ctx, where, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := catalog.Repository{Name: "offsite", URL: "s3://b/p", AccessKeyID: "AK", Password: "old-release-password-P4", SecretAccessKey: "old-release-sk-P4", SessionToken: "old-release-tok-P4"}
	if err := old.PutRepository(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := Open(ctx, where, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	got, err := store.GetRepository(ctx, "offsite")
	if err != nil || got.Password != r.Password || got.SecretAccessKey != r.SecretAccessKey || got.SessionToken != r.SessionToken {
		t.Fatalf("GetRepository after sealing: %+v, %v", got, err)
	}
	files, _ := filepath.Glob(where + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{r.Password, r.SecretAccessKey, r.SessionToken} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s still holds %q in plaintext", filepath.Base(f), secret)
			}
		}
	}
	if fi, err := os.Stat(where + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("catalog key file: %v, %v; want mode 0600", fi, err)
	}
}

func TestRedactURL(t *testing.T) {
	if got := RedactURL("postgres://cg:s3cret@db:5432/cat"); strings.Contains(got, "s3cret") {
		t.Errorf("RedactURL kept the password: %s", got)
	}
	if got := RedactURL("/var/lib/clusterguard/catalog.db"); got != "/var/lib/clusterguard/catalog.db" {
		t.Errorf("RedactURL changed a path: %s", got)
	}
}

// With NoEnv a PostgreSQL catalog without key_file is refused even when
// the environment holds a key: the daemon's secrets come from its config.
func TestSecretBoxNoEnvIgnoresEnvironment(t *testing.T) {
	t.Setenv(EnvCatalogKey, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	if _, err := SecretBox("postgres://u@h/db", Options{NoEnv: true}); err == nil || !strings.Contains(err.Error(), "catalog_key_file") {
		t.Fatalf("SecretBox(NoEnv) = %v; want a refusal naming catalog_key_file", err)
	}
	if _, err := SecretBox("postgres://u@h/db", Options{}); err != nil {
		t.Fatalf("SecretBox from the environment: %v", err)
	}
}
