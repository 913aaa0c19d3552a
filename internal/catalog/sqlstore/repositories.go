package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// PutRepository inserts r or replaces the repository of the same name. Its
// secrets are sealed with the store's catalog key when it has one (see
// SetSecretBox) and never appear in the errors it returns.
func (s *Store) PutRepository(ctx context.Context, r catalog.Repository) error {
	if err := catalog.ValidateRepository(r); err != nil {
		return catalog.RedactRepositoryError(fmt.Errorf("%s: put repository: %w", s.name, err), r)
	}
	plain := r
	r, err := s.sealRepository(r)
	if err != nil {
		return catalog.RedactRepositoryError(fmt.Errorf("%s: put repository %q: %w", s.name, r.Name, err), plain)
	}
	err = s.write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO repositories (name, url, endpoint, region, access_key_id, secret_access_key, session_token,
    path_style, insecure, password, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    url = excluded.url,
    endpoint = excluded.endpoint,
    region = excluded.region,
    access_key_id = excluded.access_key_id,
    secret_access_key = excluded.secret_access_key,
    session_token = excluded.session_token,
    path_style = excluded.path_style,
    insecure = excluded.insecure,
    password = excluded.password,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at`,
			r.Name, r.URL, r.Endpoint, r.Region, r.AccessKeyID, r.SecretAccessKey, r.SessionToken,
			r.PathStyle, r.Insecure, r.Password, toNanos(r.CreatedAt), toNanos(r.UpdatedAt))
		return err
	})
	if err != nil {
		return catalog.RedactRepositoryError(fmt.Errorf("%s: put repository %q: %w", s.name, r.Name, err), plain)
	}
	return nil
}

// GetRepository returns the named repository, secrets included, or an error
// wrapping catalog.ErrNotFound.
func (s *Store) GetRepository(ctx context.Context, name string) (catalog.Repository, error) {
	var r catalog.Repository
	var created, updated sql.NullInt64
	err := s.read(ctx, func(tx *Tx) error {
		return tx.QueryRowContext(ctx, `
SELECT name, url, endpoint, region, access_key_id, secret_access_key, session_token,
    path_style, insecure, password, created_at, updated_at
FROM repositories WHERE name = ?`, name).Scan(
			&r.Name, &r.URL, &r.Endpoint, &r.Region, &r.AccessKeyID, &r.SecretAccessKey, &r.SessionToken,
			&r.PathStyle, &r.Insecure, &r.Password, &created, &updated)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Repository{}, fmt.Errorf("%s: repository %q: %w", s.name, name, catalog.ErrNotFound)
	}
	if err != nil {
		return catalog.Repository{}, catalog.RedactRepositoryError(fmt.Errorf("%s: get repository %q: %w", s.name, name, err), r)
	}
	r.CreatedAt, r.UpdatedAt = fromNanos(created), fromNanos(updated)
	if r, err = s.openRepository(r); err != nil {
		return catalog.Repository{}, fmt.Errorf("%s: get repository %q: %w", s.name, name, err)
	}
	return r, nil
}

// DeleteRepository removes the named repository or returns an error wrapping
// catalog.ErrNotFound. Groups and recovery points naming it are kept.
func (s *Store) DeleteRepository(ctx context.Context, name string) error {
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `DELETE FROM repositories WHERE name = ?`, name))
		if err == nil && n == 0 {
			err = catalog.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: delete repository %q: %w", s.name, name, err)
	}
	return nil
}
