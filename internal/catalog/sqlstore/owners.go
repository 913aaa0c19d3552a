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
	var out catalog.Run
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `UPDATE runs SET owner = ?, heartbeat_at = ?
WHERE id = ? AND status = 'running' AND owner = ? AND (heartbeat_at IS NULL OR heartbeat_at < ?)`,
			to, toNanos(now), id, from, staleNanos(from, to, staleBefore)))
		if err != nil {
			return err
		}
		out, err = scanRun(tx.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return catalog.ErrNotFound
		case err != nil:
			return err
		case n == 0:
			return claimConflict(out.Status, catalog.RunRunning, out.Owner, from, out.HeartbeatAt)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("%s: claim run %q for %q: %w", s.name, id, to, err)
	}
	return out, nil
}

// ClaimRestore is ClaimRun for a restore operation.
func (s *Store) ClaimRestore(ctx context.Context, id, from, to string, staleBefore, now time.Time) (catalog.RestoreOperation, error) {
	var out catalog.RestoreOperation
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `UPDATE restore_operations SET owner = ?, heartbeat_at = ?
WHERE id = ? AND status = 'running' AND owner = ? AND (heartbeat_at IS NULL OR heartbeat_at < ?)`,
			to, toNanos(now), id, from, staleNanos(from, to, staleBefore)))
		if err != nil {
			return err
		}
		out, err = scanRestore(tx.QueryRowContext(ctx, `SELECT `+restoreColumns+` FROM restore_operations WHERE id = ?`, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return catalog.ErrNotFound
		case err != nil:
			return err
		case n == 0:
			return claimConflict(out.Status, catalog.RestoreRunning, out.Owner, from, out.HeartbeatAt)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("%s: claim restore %q for %q: %w", s.name, id, to, err)
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
