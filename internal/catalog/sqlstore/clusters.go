package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// PutCluster inserts c or replaces the cluster of the same name, nodes
// included, in one transaction.
func (s *Store) PutCluster(ctx context.Context, c catalog.Cluster) error {
	if err := catalog.ValidateCluster(c); err != nil {
		return fmt.Errorf("%s: put cluster: %w", s.name, err)
	}
	err := s.write(ctx, func(tx *Tx) error {
		// An upsert, not a delete and insert: deleting would cascade to
		// everything that references the cluster. It also locks the row
		// (PostgreSQL), so concurrent puts of one cluster replace its nodes
		// one after the other, never interleaved.
		_, err := tx.ExecContext(ctx, `
INSERT INTO clusters (name, shared_volume, shared_volume_id, master_policy, master_node, join_order, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    shared_volume = excluded.shared_volume,
    shared_volume_id = excluded.shared_volume_id,
    master_policy = excluded.master_policy,
    master_node = excluded.master_node,
    join_order = excluded.join_order,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at`,
			c.Name, c.SharedVolume, c.SharedVolumeID, c.MasterPolicy, c.MasterNode, c.JoinOrder,
			toNanos(c.CreatedAt), toNanos(c.UpdatedAt))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM cluster_nodes WHERE cluster_name = ?`, c.Name); err != nil {
			return err
		}
		for i, n := range c.Nodes {
			_, err := tx.ExecContext(ctx, `
INSERT INTO cluster_nodes (cluster_name, ordinal, name, endpoint, position) VALUES (?, ?, ?, ?, ?)`,
				c.Name, i, n.Name, n.Endpoint, n.Position)
			if err != nil {
				return fmt.Errorf("node %q: %w", n.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: put cluster %q: %w", s.name, c.Name, err)
	}
	return nil
}

// GetCluster returns the named cluster with its nodes in listed order, or an
// error wrapping catalog.ErrNotFound.
func (s *Store) GetCluster(ctx context.Context, name string) (catalog.Cluster, error) {
	var c catalog.Cluster
	err := s.read(ctx, func(tx *Tx) error {
		row := tx.QueryRowContext(ctx, `
SELECT name, shared_volume, shared_volume_id, master_policy, master_node, join_order, created_at, updated_at
FROM clusters WHERE name = ?`, name)
		var err error
		if c, err = scanCluster(row); err != nil {
			return err
		}
		nodes, err := loadNodes(ctx, tx, `WHERE cluster_name = ?`, name)
		c.Nodes = nodes[name]
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Cluster{}, fmt.Errorf("%s: cluster %q: %w", s.name, name, catalog.ErrNotFound)
	}
	if err != nil {
		return catalog.Cluster{}, fmt.Errorf("%s: get cluster %q: %w", s.name, name, err)
	}
	return c, nil
}

// ListClusters returns every cluster, sorted by name (byte order), with
// their nodes.
func (s *Store) ListClusters(ctx context.Context) ([]catalog.Cluster, error) {
	out := []catalog.Cluster{}
	err := s.read(ctx, func(tx *Tx) error {
		// Byte order, as the other catalogs sort, whatever the database's
		// locale.
		rows, err := tx.QueryContext(ctx, `
SELECT name, shared_volume, shared_volume_id, master_policy, master_node, join_order, created_at, updated_at
FROM clusters ORDER BY name COLLATE {bytes}`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanCluster(rows)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		nodes, err := loadNodes(ctx, tx, "")
		if err != nil {
			return err
		}
		for i := range out {
			out[i].Nodes = nodes[out[i].Name]
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list clusters: %w", s.name, err)
	}
	return out, nil
}

// DeleteCluster removes the named cluster and its nodes, or returns an error
// wrapping catalog.ErrNotFound. Its lease epoch is kept.
func (s *Store) DeleteCluster(ctx context.Context, name string) error {
	err := s.write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM clusters WHERE name = ?`, name)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return catalog.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: delete cluster %q: %w", s.name, name, err)
	}
	return nil
}

func scanCluster(r scanner) (catalog.Cluster, error) {
	var c catalog.Cluster
	var created, updated sql.NullInt64
	err := r.Scan(&c.Name, &c.SharedVolume, &c.SharedVolumeID, &c.MasterPolicy, &c.MasterNode, &c.JoinOrder, &created, &updated)
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	return c, err
}

// loadNodes returns nodes by cluster name, each list in the order listed.
func loadNodes(ctx context.Context, tx *Tx, where string, args ...any) (map[string][]catalog.Node, error) {
	rows, err := tx.QueryContext(ctx, `SELECT cluster_name, name, endpoint, position FROM cluster_nodes `+where+` ORDER BY cluster_name, ordinal`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]catalog.Node{}
	for rows.Next() {
		var cluster string
		var n catalog.Node
		if err := rows.Scan(&cluster, &n.Name, &n.Endpoint, &n.Position); err != nil {
			return nil, err
		}
		out[cluster] = append(out[cluster], n)
	}
	return out, rows.Err()
}
