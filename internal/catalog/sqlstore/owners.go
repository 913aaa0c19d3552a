package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// ClaimRun sets the owner of a running run to to and its heartbeat to now,
// if it is still running, still owned by from, and either from == to (a
// heartbeat) or its heartbeat is older than staleBefore (a take-over of an
// abandoned run). It returns the run as updated; ErrConflict when any
// condition fails, ErrNotFound when there is no such run. The condition is
// in the UPDATE itself, so of two engines taking over one run exactly one
// succeeds.
func (s *Store) ClaimRun(ctx context.Context, id, from, to string, staleBefore, now time.Time) (catalog.Run, error) {
	return claimOwned(ctx, s, "run", "runs", runColumns, scanRun, func(r catalog.Run) (string, string, time.Time) {
		return r.Status, r.Owner, r.HeartbeatAt
	}, id, from, to, staleBefore, now)
}

// ClaimRestore is ClaimRun for a restore operation.
func (s *Store) ClaimRestore(ctx context.Context, id, from, to string, staleBefore, now time.Time) (catalog.RestoreOperation, error) {
	return claimOwned(ctx, s, "restore", "restore_operations", restoreColumns, scanRestore, func(op catalog.RestoreOperation) (string, string, time.Time) {
		return op.Status, op.Owner, op.HeartbeatAt
	}, id, from, to, staleBefore, now)
}

// claimOwned is ClaimRun and ClaimRestore over their table: both record
// kinds share the owner, heartbeat and "running" status columns.
func claimOwned[T any](ctx context.Context, s *Store, kind, table, columns string, scan func(scanner) (T, error),
	state func(T) (status, owner string, heartbeat time.Time), id, from, to string, staleBefore, now time.Time) (T, error) {
	var out T
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `UPDATE `+table+` SET owner = ?, heartbeat_at = ?
WHERE id = ? AND status = 'running' AND owner = ? AND (heartbeat_at IS NULL OR heartbeat_at < ?)`,
			to, toNanos(now), id, from, staleNanos(from, to, staleBefore)))
		if err != nil {
			return err
		}
		out, err = scan(tx.QueryRowContext(ctx, `SELECT `+columns+` FROM `+table+` WHERE id = ?`, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return catalog.ErrNotFound
		case err != nil:
			return err
		case n == 0:
			status, owner, heartbeat := state(out)
			return claimConflict(status, "running", owner, from, heartbeat)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("%s: claim %s %q for %q: %w", s.name, kind, id, to, err)
	}
	return out, nil
}

// RunningRuns returns every run in state running, oldest first.
func (s *Store) RunningRuns(ctx context.Context) ([]catalog.Run, error) {
	out := []catalog.Run{}
	err := s.read(ctx, func(tx *Tx) error {
		var err error
		out, err = collect(ctx, tx, scanRun, `SELECT `+runColumns+` FROM runs WHERE status = 'running' ORDER BY started_at, id COLLATE {bytes}`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list running runs: %w", s.name, err)
	}
	return out, nil
}

// RunningRestores returns every restore operation in state running, oldest first.
func (s *Store) RunningRestores(ctx context.Context) ([]catalog.RestoreOperation, error) {
	out := []catalog.RestoreOperation{}
	err := s.read(ctx, func(tx *Tx) error {
		var err error
		out, err = collect(ctx, tx, scanRestore, `SELECT `+restoreColumns+` FROM restore_operations WHERE status = 'running' ORDER BY started_at, id COLLATE {bytes}`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list running restores: %w", s.name, err)
	}
	return out, nil
}

// staleNanos is the heartbeat bound of a claim: none for a heartbeat of the
// owner itself.
func staleNanos(from, to string, staleBefore time.Time) int64 {
	if from == to {
		return math.MaxInt64
	}
	return staleBefore.UnixNano()
}

func claimConflict(status, running, owner, from string, heartbeat time.Time) error {
	if status != running {
		return fmt.Errorf("it is %s, no longer running: %w", status, catalog.ErrConflict)
	}
	if owner != from {
		return fmt.Errorf("it is owned by %q, not %q: %w", owner, from, catalog.ErrConflict)
	}
	return fmt.Errorf("its owner %q is alive (heartbeat at %s): %w", owner, heartbeat.UTC().Format(time.RFC3339), catalog.ErrConflict)
}
