package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// AcquireLease grants the coordinator role for cluster to holder with the
// next fencing epoch, unless another holder's lease is unexpired at now
// (a lease expires at ExpiresAt, inclusive); then it returns an error
// wrapping catalog.ErrConflict that names the current holder. The same
// holder acquiring again renews the lease with a new epoch.
func (s *Store) AcquireLease(ctx context.Context, cluster, holder, owner string, ttl time.Duration, now time.Time) (catalog.Lease, error) {
	if err := catalog.ValidateLeaseRequest(cluster, holder, ttl, now); err != nil {
		return catalog.Lease{}, fmt.Errorf("%s: %w", s.name, err)
	}
	lease := catalog.Lease{Cluster: cluster, Holder: holder, Owner: owner, ExpiresAt: now.Add(ttl)}
	err := s.write(ctx, func(tx *Tx) error {
		// Advance the epoch first: the upsert takes the cluster's epoch row
		// lock (PostgreSQL; SQLite has one writer anyway), so concurrent
		// grants queue here and each then sees the lease its predecessor
		// committed. A refused grant rolls back and so consumes no epoch.
		err := tx.QueryRowContext(ctx, `
INSERT INTO lease_epochs (cluster_name, epoch) VALUES (?, 1)
ON CONFLICT (cluster_name) DO UPDATE SET epoch = lease_epochs.epoch + 1
RETURNING epoch`, cluster).Scan(&lease.Epoch)
		if err != nil {
			return fmt.Errorf("advance epoch: %w", err)
		}
		var cur catalog.Lease
		var expires int64
		err = tx.QueryRowContext(ctx, `SELECT holder, owner, epoch, expires_at FROM leases WHERE cluster_name = ?`, cluster).
			Scan(&cur.Holder, &cur.Owner, &cur.Epoch, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case cur.Holder != holder && now.UnixNano() < expires:
			return fmt.Errorf("held by node %q (engine %q, epoch %d) until %s: %w",
				cur.Holder, cur.Owner, cur.Epoch, time.Unix(0, expires).UTC().Format(time.RFC3339Nano), catalog.ErrConflict)
		}
		_, err = tx.ExecContext(ctx, `
INSERT INTO leases (cluster_name, holder, owner, epoch, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (cluster_name) DO UPDATE SET
    holder = excluded.holder, owner = excluded.owner, epoch = excluded.epoch, expires_at = excluded.expires_at`,
			cluster, holder, owner, lease.Epoch, lease.ExpiresAt.UnixNano())
		return err
	})
	if err != nil {
		return catalog.Lease{}, fmt.Errorf("%s: acquire lease on cluster %q for node %q: %w", s.name, cluster, holder, err)
	}
	return lease, nil
}

// ReleaseLease ends the lease on cluster if it still carries epoch. A lease
// that has since been granted again (a newer epoch) is left alone and the
// error wraps catalog.ErrConflict; no lease at all wraps catalog.ErrNotFound.
// The epoch counter is untouched either way.
func (s *Store) ReleaseLease(ctx context.Context, cluster string, epoch int64) error {
	err := s.write(ctx, func(tx *Tx) error {
		var cur int64
		var holder string
		err := tx.QueryRowContext(ctx, `SELECT epoch, holder FROM leases WHERE cluster_name = ? {for_update}`, cluster).Scan(&cur, &holder)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("no lease is held: %w", catalog.ErrNotFound)
		case err != nil:
			return err
		case cur != epoch:
			return fmt.Errorf("the lease now carries epoch %d (node %q), so epoch %d no longer holds it: %w", cur, holder, epoch, catalog.ErrConflict)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM leases WHERE cluster_name = ? AND epoch = ?`, cluster, epoch)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: release lease on cluster %q (epoch %d): %w", s.name, cluster, epoch, err)
	}
	return nil
}
