package provider

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/postgres"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/secretbox"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

// The catalog key seals the repository passwords and S3 secrets the catalog
// keeps, so a copy of the catalog alone reveals none of them.
const (
	envCatalogKey     = "CLUSTERGUARD_CATALOG_KEY"      // the key itself, base64 or hex of 32 bytes
	envCatalogKeyFile = "CLUSTERGUARD_CATALOG_KEY_FILE" // a file holding it (mode 0600)
)

func isPostgresCatalog(where string) bool { return postgres.IsURL(where) }

// catalogSecretBox finds the catalog key: CLUSTERGUARD_CATALOG_KEY, else the
// file CLUSTERGUARD_CATALOG_KEY_FILE names, else (SQLite only) the file
// "<catalog>.key" beside the catalog, created with a new random key and mode
// 0600 on first use. A PostgreSQL catalog requires one of the first two:
// the database is shared and often backed up elsewhere, so no default key
// could be kept apart from it.
func catalogSecretBox(where string) (*secretbox.Box, error) {
	var key []byte
	var err error
	switch {
	case os.Getenv(envCatalogKey) != "":
		if key, err = secretbox.ParseKey(os.Getenv(envCatalogKey)); err != nil {
			return nil, fmt.Errorf("%s: %w", envCatalogKey, err)
		}
	case os.Getenv(envCatalogKeyFile) != "":
		if key, err = secretbox.LoadKeyFile(os.Getenv(envCatalogKeyFile)); err != nil {
			return nil, fmt.Errorf("%s: %w", envCatalogKeyFile, err)
		}
	case isPostgresCatalog(where):
		return nil, fmt.Errorf("a PostgreSQL catalog needs a catalog key to seal the repository secrets it keeps: set %s (32 random bytes as base64, e.g. from `head -c 32 /dev/urandom | base64`) or %s to a file holding it, the same on every engine sharing the catalog",
			envCatalogKey, envCatalogKeyFile)
	default:
		if key, err = secretbox.LoadOrCreateKeyFile(where + ".key"); err != nil {
			return nil, err
		}
	}
	return secretbox.New(key)
}

// secretSealer is what the SQL catalogs offer for sealing secrets.
type secretSealer interface {
	SetSecretBox(*secretbox.Box)
	SealExisting(context.Context) (int, error)
}

// sealCatalogSecrets makes store seal repository secrets with box and
// seals the rows an older release wrote in plaintext.
func sealCatalogSecrets(ctx context.Context, store engine.Store, box *secretbox.Box) error {
	s, ok := store.(secretSealer)
	if !ok {
		return errors.New("this catalog cannot seal repository secrets")
	}
	s.SetSecretBox(box)
	n, err := s.SealExisting(ctx)
	if err != nil {
		return err
	}
	// The plaintext just sealed is still in free pages and the WAL of a
	// SQLite file: rewrite it once, on the upgrade that sealed the rows.
	if c, ok := store.(interface{ Compact(context.Context) error }); ok && n > 0 {
		return c.Compact(ctx)
	}
	return nil
}
