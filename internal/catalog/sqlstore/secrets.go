package sqlstore

import (
	"context"
	"fmt"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/secretbox"
)

// SetSecretBox makes the store seal repository secrets (password, S3
// secret key, session token) with box from now on, and open sealed ones.
// Call it before using the store. Without it secrets are stored as given.
func (s *Store) SetSecretBox(box *secretbox.Box) { s.box = box }

// secretAD binds a sealed value to its row and column.
func secretAD(repo, column string) string {
	return "clusterguard catalog repositories/" + repo + "/" + column
}

func (s *Store) sealRepository(r catalog.Repository) (catalog.Repository, error) {
	var err error
	for _, f := range repositorySecrets(&r) {
		if *f.v, err = s.box.Seal(*f.v, secretAD(r.Name, f.column)); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (s *Store) openRepository(r catalog.Repository) (catalog.Repository, error) {
	var err error
	for _, f := range repositorySecrets(&r) {
		if *f.v, err = s.box.Open(*f.v, secretAD(r.Name, f.column)); err != nil {
			return catalog.Repository{}, err
		}
	}
	return r, nil
}

type secretField struct {
	column string
	v      *string
}

func repositorySecrets(r *catalog.Repository) []secretField {
	return []secretField{{"password", &r.Password}, {"secret_access_key", &r.SecretAccessKey}, {"session_token", &r.SessionToken}}
}

// SealExisting seals the secrets of repositories written in plaintext (by a
// release before catalog keys, or without a key) and returns how many rows
// it rewrote. With no secret box it does nothing.
func (s *Store) SealExisting(ctx context.Context) (int, error) {
	if s.box == nil {
		return 0, nil
	}
	n := 0
	err := s.write(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name, password, secret_access_key, session_token FROM repositories`)
		if err != nil {
			return err
		}
		var plain []catalog.Repository
		for rows.Next() {
			var r catalog.Repository
			if err := rows.Scan(&r.Name, &r.Password, &r.SecretAccessKey, &r.SessionToken); err != nil {
				rows.Close()
				return err
			}
			for _, f := range repositorySecrets(&r) {
				if *f.v != "" && !secretbox.Sealed(*f.v) {
					plain = append(plain, r)
					break
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range plain {
			for _, f := range repositorySecrets(&r) {
				if !secretbox.Sealed(*f.v) {
					if *f.v, err = s.box.Seal(*f.v, secretAD(r.Name, f.column)); err != nil {
						return err
					}
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE repositories SET password = ?, secret_access_key = ?, session_token = ? WHERE name = ?`,
				r.Password, r.SecretAccessKey, r.SessionToken, r.Name); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("%s: seal repository secrets: %w", s.name, err)
	}
	return n, nil
}
