// Package catalogopen opens the engine's catalog the same way for every
// process that runs the engine (the Terraform provider, `engine serve`,
// `engine check`): PostgreSQL for postgres:// URLs, else a SQLite file, with
// the repository secrets it keeps sealed by the catalog key.
package catalogopen

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/postgres"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/secretbox"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlite"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

// The catalog key seals the repository passwords and S3 secrets the catalog
// keeps, so a copy of the catalog alone reveals none of them.
const (
	EnvCatalogKey     = "CLUSTERGUARD_CATALOG_KEY"      // the key itself, base64 or hex of 32 bytes
	EnvCatalogKeyFile = "CLUSTERGUARD_CATALOG_KEY_FILE" // a file holding it (mode 0600)
)

// Options say where the catalog key comes from.
type Options struct {
	// KeyFile names the file holding the catalog key. Empty: the
	// environment (EnvCatalogKey, then EnvCatalogKeyFile) unless NoEnv,
	// then, for SQLite only, "<catalog>.key" beside the catalog.
	KeyFile string
	// NoEnv ignores the environment, for processes whose secrets come only
	// from files named in their config.
	NoEnv bool
}

// IsPostgres reports whether where is a PostgreSQL URL rather than a SQLite path.
func IsPostgres(where string) bool { return postgres.IsURL(where) }

// Open opens the catalog at where (a SQLite path or a PostgreSQL URL) with
// its repository secrets sealed by the catalog key, sealing the rows an
// older release wrote in plaintext.
func Open(ctx context.Context, where string, o Options) (engine.Store, error) {
	box, err := SecretBox(where, o)
	if err != nil {
		return nil, err
	}
	var store engine.Store
	if IsPostgres(where) {
		store, err = postgres.Open(ctx, where, postgres.Options{})
	} else {
		store, err = sqlite.Open(ctx, where, sqlite.Options{})
	}
	if err != nil {
		return nil, err
	}
	if err := sealSecrets(ctx, store, box); err != nil {
		_ = store.Close()
		return nil, err
	}
	return store, nil
}

// SecretBox finds the catalog key: o.KeyFile; else CLUSTERGUARD_CATALOG_KEY,
// else the file CLUSTERGUARD_CATALOG_KEY_FILE names (unless o.NoEnv); else
// (SQLite only) the file "<catalog>.key" beside the catalog, created with a
// new random key and mode 0600 on first use. A PostgreSQL catalog requires
// an explicit key: the database is shared and often backed up elsewhere, so
// no default key could be kept apart from it.
func SecretBox(where string, o Options) (*secretbox.Box, error) {
	var key []byte
	var err error
	switch {
	case o.KeyFile != "":
		if key, err = secretbox.LoadKeyFile(o.KeyFile); err != nil {
			return nil, fmt.Errorf("catalog key file: %w", err)
		}
	case !o.NoEnv && os.Getenv(EnvCatalogKey) != "":
		if key, err = secretbox.ParseKey(os.Getenv(EnvCatalogKey)); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvCatalogKey, err)
		}
	case !o.NoEnv && os.Getenv(EnvCatalogKeyFile) != "":
		if key, err = secretbox.LoadKeyFile(os.Getenv(EnvCatalogKeyFile)); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvCatalogKeyFile, err)
		}
	case IsPostgres(where) && o.NoEnv:
		return nil, errors.New("a PostgreSQL catalog needs a catalog key to seal the repository secrets it keeps: set catalog_key_file to a file (mode 0600) holding 32 random bytes as base64 (e.g. from `head -c 32 /dev/urandom | base64`), the same key on every engine sharing the catalog")
	case IsPostgres(where):
		return nil, fmt.Errorf("a PostgreSQL catalog needs a catalog key to seal the repository secrets it keeps: set %s (32 random bytes as base64, e.g. from `head -c 32 /dev/urandom | base64`) or %s to a file holding it, the same on every engine sharing the catalog",
			EnvCatalogKey, EnvCatalogKeyFile)
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

// sealSecrets makes store seal repository secrets with box and seals the
// rows an older release wrote in plaintext.
func sealSecrets(ctx context.Context, store engine.Store, box *secretbox.Box) error {
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

// RedactURL drops a password from a catalog URL before it is shown.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.String()
}
