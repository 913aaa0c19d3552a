package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// RenewLease moves the expiry of the lease on cluster to now+ttl if it
// still carries epoch: a step that is still working keeps its lease short
// and alive. A lease granted again since (another epoch) is not touched and
// the error wraps catalog.ErrConflict; no lease at all wraps ErrNotFound.
func (s *Store) RenewLease(ctx context.Context, cluster string, epoch int64, ttl time.Duration, now time.Time) (catalog.Lease, error) {
	var l catalog.Lease
	if ttl <= 0 || now.IsZero() {
		return l, fmt.Errorf("%s: renew lease on cluster %q: ttl %s and now must be set", s.name, cluster, ttl)
	}
	err := s.write(ctx, func(tx *Tx) error {
		var expires int64
		err := tx.QueryRowContext(ctx, `SELECT holder, owner, epoch, expires_at FROM leases WHERE cluster_name = ? {for_update}`, cluster).
			Scan(&l.Holder, &l.Owner, &l.Epoch, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("no lease is held (it was released, e.g. by `engine lease release`): %w", catalog.ErrNotFound)
		case err != nil:
			return err
		case l.Epoch != epoch:
			return fmt.Errorf("the lease now carries epoch %d (node %q, engine %q), so epoch %d no longer holds it: %w", l.Epoch, l.Holder, l.Owner, epoch, catalog.ErrConflict)
		}
		l.Cluster, l.ExpiresAt = cluster, now.Add(ttl)
		_, err = tx.ExecContext(ctx, `UPDATE leases SET expires_at = ? WHERE cluster_name = ? AND epoch = ?`, l.ExpiresAt.UnixNano(), cluster, epoch)
		return err
	})
	if err != nil {
		return catalog.Lease{}, fmt.Errorf("%s: renew lease on cluster %q (epoch %d): %w", s.name, cluster, epoch, err)
	}
	return l, nil
}

// ListLeases returns every lease row, expired or not, sorted by cluster.
func (s *Store) ListLeases(ctx context.Context) ([]catalog.Lease, error) {
	var out []catalog.Lease
	err := s.read(ctx, func(tx *Tx) error {
		var err error
		out, err = collect(ctx, tx, func(r scanner) (catalog.Lease, error) {
			var l catalog.Lease
			var expires int64
			err := r.Scan(&l.Cluster, &l.Holder, &l.Owner, &l.Epoch, &expires)
			l.ExpiresAt = time.Unix(0, expires).UTC()
			return l, err
		}, `SELECT cluster_name, holder, owner, epoch, expires_at FROM leases ORDER BY cluster_name`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list leases: %w", s.name, err)
	}
	return out, nil
}

// AdvanceEpoch raises the epoch counter of cluster to at least atLeast, so
// the next grant is above every epoch the cluster's agents have seen (a new
// or restored catalog learns where to start). It never lowers the counter
// and returns its value.
func (s *Store) AdvanceEpoch(ctx context.Context, cluster string, atLeast int64) (int64, error) {
	var epoch int64
	err := s.write(ctx, func(tx *Tx) error {
		// The schema refuses any update that does not increase the epoch,
		// so a lower target updates nothing.
		if _, err := tx.ExecContext(ctx, `
INSERT INTO lease_epochs (cluster_name, epoch) VALUES (?, ?)
ON CONFLICT (cluster_name) DO UPDATE SET epoch = excluded.epoch WHERE lease_epochs.epoch < excluded.epoch`, cluster, atLeast); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT epoch FROM lease_epochs WHERE cluster_name = ?`, cluster).Scan(&epoch)
	})
	if err != nil {
		return 0, fmt.Errorf("%s: advance the epoch of cluster %q to %d: %w", s.name, cluster, atLeast, err)
	}
	return epoch, nil
}
