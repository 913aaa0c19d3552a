package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

const pointColumns = `id, repository, cluster, group_name, workload, node, run_id, consistency, size, created_at`

// PutRecoveryPoint inserts p or replaces the recovery point with its id.
func (s *Store) PutRecoveryPoint(ctx context.Context, p catalog.RecoveryPoint) error {
	if err := catalog.ValidateRecoveryPoint(p); err != nil {
		return fmt.Errorf("%s: put recovery point: %w", s.name, err)
	}
	err := s.write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO recovery_points (`+pointColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    repository = excluded.repository,
    cluster = excluded.cluster,
    group_name = excluded.group_name,
    workload = excluded.workload,
    node = excluded.node,
    run_id = excluded.run_id,
    consistency = excluded.consistency,
    size = excluded.size,
    created_at = excluded.created_at`,
			p.ID, p.Repository, p.Cluster, p.Group, p.Workload, p.Node, p.RunID, p.Consistency, p.Size, toNanos(p.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: put recovery point %q: %w", s.name, p.ID, err)
	}
	return nil
}

// RecoveryPoints returns the recovery points matching f, newest first by
// CreatedAt (ties by id, descending). Empty fields of f match everything;
// From is inclusive and To exclusive.
func (s *Store) RecoveryPoints(ctx context.Context, f catalog.RecoveryPointFilter) ([]catalog.RecoveryPoint, error) {
	if err := catalog.ValidateRecoveryPointFilter(f); err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	var where []string
	var args []any
	for _, eq := range []struct{ column, value string }{
		{"cluster", f.Cluster}, {"group_name", f.Group}, {"workload", f.Workload}, {"repository", f.Repository},
	} {
		if eq.value != "" {
			where, args = append(where, eq.column+` = ?`), append(args, eq.value)
		}
	}
	if !f.From.IsZero() {
		where, args = append(where, `created_at >= ?`), append(args, f.From.UnixNano())
	}
	if !f.To.IsZero() {
		where, args = append(where, `created_at < ?`), append(args, f.To.UnixNano())
	}
	q := `SELECT ` + pointColumns + ` FROM recovery_points`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_at DESC, id COLLATE {bytes} DESC`

	out := []catalog.RecoveryPoint{}
	err := s.read(ctx, func(tx *Tx) error {
		var err error
		out, err = collect(ctx, tx, scanPoint, q, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list recovery points (%+v): %w", s.name, f, err)
	}
	return out, nil
}

// DeleteRecoveryPoint removes the recovery point with id or returns an error
// wrapping catalog.ErrNotFound.
func (s *Store) DeleteRecoveryPoint(ctx context.Context, id string) error {
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `DELETE FROM recovery_points WHERE id = ?`, id))
		if err == nil && n == 0 {
			err = catalog.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: delete recovery point %q: %w", s.name, id, err)
	}
	return nil
}

func scanPoint(r scanner) (catalog.RecoveryPoint, error) {
	var p catalog.RecoveryPoint
	var created sql.NullInt64
	err := r.Scan(&p.ID, &p.Repository, &p.Cluster, &p.Group, &p.Workload, &p.Node, &p.RunID, &p.Consistency, &p.Size, &created)
	p.CreatedAt = fromNanos(created)
	return p, err
}
