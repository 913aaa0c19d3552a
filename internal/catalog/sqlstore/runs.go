package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

const runColumns = `id, group_name, cluster, master, node_order, expected, status, error, started_at, finished_at, owner, heartbeat_at`

// CreateRun inserts r, or returns an error wrapping catalog.ErrConflict if a
// run with its id exists.
func (s *Store) CreateRun(ctx context.Context, r catalog.Run) error {
	if err := catalog.ValidateRun(r); err != nil {
		return fmt.Errorf("%s: create run: %w", s.name, err)
	}
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `
INSERT INTO runs (`+runColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`,
			r.ID, r.Group, r.Cluster, r.Master, encodeNames(r.NodeOrder), encodeNames(r.Expected),
			r.Status, r.Error, toNanos(r.StartedAt), toNanos(r.FinishedAt), r.Owner, toNanos(r.HeartbeatAt)))
		if err != nil || n == 1 {
			return err
		}
		var group string
		var started int64
		if err := tx.QueryRowContext(ctx, `SELECT group_name, started_at FROM runs WHERE id = ?`, r.ID).Scan(&group, &started); err != nil {
			return err
		}
		return fmt.Errorf("a run with this id already exists (group %q, started %s): %w",
			group, time.Unix(0, started).UTC().Format(time.RFC3339Nano), catalog.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("%s: create run %q: %w", s.name, r.ID, err)
	}
	return nil
}

// UpdateRun replaces the mutable fields of the run with r's id (Master,
// NodeOrder, Expected, Status, Error, FinishedAt); Group, Cluster and
// StartedAt keep their values from CreateRun. A run that has finished is
// final: updating it returns an error wrapping catalog.ErrConflict. An
// absent run wraps catalog.ErrNotFound.
func (s *Store) UpdateRun(ctx context.Context, r catalog.Run) error {
	if err := catalog.ValidateRun(r); err != nil {
		return fmt.Errorf("%s: update run: %w", s.name, err)
	}
	err := s.write(ctx, func(tx *Tx) error {
		// Of two engines finishing one run exactly one succeeds: SQLite has
		// one writer, and under PostgreSQL's READ COMMITTED an UPDATE that
		// waited for a concurrent one re-checks its WHERE on the committed row.
		n, err := rowsAffected(tx.ExecContext(ctx, `
UPDATE runs SET master = ?, node_order = ?, expected = ?, status = ?, error = ?, finished_at = ?
WHERE id = ? AND status = 'running'`,
			r.Master, encodeNames(r.NodeOrder), encodeNames(r.Expected), r.Status, r.Error, toNanos(r.FinishedAt), r.ID))
		if err != nil || n == 1 {
			return err
		}
		var status string
		err = tx.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ?`, r.ID).Scan(&status)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return catalog.ErrNotFound
		case err != nil:
			return err
		}
		return fmt.Errorf("the run has already finished with status %q and a finished run is final: %w", status, catalog.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("%s: update run %q: %w", s.name, r.ID, err)
	}
	return nil
}

// GetRun returns the run with id or an error wrapping catalog.ErrNotFound.
func (s *Store) GetRun(ctx context.Context, id string) (catalog.Run, error) {
	r, err := first(ctx, s, scanRun, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id)
	if err != nil {
		return catalog.Run{}, s.getError("run", id, err)
	}
	return r, nil
}

// ListRuns returns the runs of group ("" for every group), newest first by
// StartedAt (ties by id, descending), at most limit of them (0: all).
func (s *Store) ListRuns(ctx context.Context, group string, limit int) ([]catalog.Run, error) {
	if err := catalog.ValidateRunLimit(limit); err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	q, args := `SELECT `+runColumns+` FROM runs`, []any{}
	if group != "" {
		q, args = q+` WHERE group_name = ?`, append(args, group)
	}
	q += ` ORDER BY started_at DESC, id COLLATE {bytes} DESC`
	if limit > 0 {
		q, args = q+` LIMIT ?`, append(args, limit)
	}
	out := []catalog.Run{}
	err := s.read(ctx, func(tx *Tx) error {
		var err error
		out, err = collect(ctx, tx, scanRun, q, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list runs of group %q: %w", s.name, group, err)
	}
	return out, nil
}

// DeleteRun removes the run with id and its steps, or returns an error
// wrapping catalog.ErrNotFound. Recovery points it made are kept.
func (s *Store) DeleteRun(ctx context.Context, id string) error {
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `DELETE FROM runs WHERE id = ?`, id)) // steps: ON DELETE CASCADE
		if err == nil && n == 0 {
			err = catalog.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: delete run %q: %w", s.name, id, err)
	}
	return nil
}

// AddStep records st in its run. It returns an error wrapping
// catalog.ErrNotFound if the run does not exist and catalog.ErrConflict if
// the run already has a step with st's Seq.
func (s *Store) AddStep(ctx context.Context, st catalog.Step) error {
	if err := catalog.ValidateStep(st); err != nil {
		return fmt.Errorf("%s: add step: %w", s.name, err)
	}
	err := s.write(ctx, func(tx *Tx) error {
		var one int
		// The key-share lock keeps a concurrent DeleteRun from removing the run
		// between this check and the insert.
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ? {for_key_share}`, st.RunID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no such run: %w", catalog.ErrNotFound)
		}
		if err != nil {
			return err
		}
		// A concurrent AddStep of the same seq waits here for the first to
		// commit, then inserts nothing.
		n, err := rowsAffected(tx.ExecContext(ctx, `
INSERT INTO run_steps (run_id, seq, phase, node, epoch, workload, snapshot_id, bytes, bytes_added, stun_ms,
    outcome, error, started_at, finished_at, incremental, bytes_read, checkpoint)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, seq) DO NOTHING`,
			st.RunID, st.Seq, st.Phase, st.Node, st.Epoch, st.Workload, st.SnapshotID, st.Bytes, st.BytesAdded, st.StunMS,
			st.Outcome, st.Error, toNanos(st.StartedAt), toNanos(st.FinishedAt), st.Incremental, st.BytesRead, st.Checkpoint))
		if err != nil || n == 1 {
			return err
		}
		var workload, node string
		if err := tx.QueryRowContext(ctx, `SELECT workload, node FROM run_steps WHERE run_id = ? AND seq = ?`, st.RunID, st.Seq).Scan(&workload, &node); err != nil {
			return err
		}
		return fmt.Errorf("the run already has step %d (workload %q on node %q): %w", st.Seq, workload, node, catalog.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("%s: add step %d to run %q: %w", s.name, st.Seq, st.RunID, err)
	}
	return nil
}

// Steps returns the steps of the run with runID ordered by Seq, or an error
// wrapping catalog.ErrNotFound if the run does not exist.
func (s *Store) Steps(ctx context.Context, runID string) ([]catalog.Step, error) {
	out := []catalog.Step{}
	err := s.read(ctx, func(tx *Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ?`, runID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no such run: %w", catalog.ErrNotFound)
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `
SELECT run_id, seq, phase, node, epoch, workload, snapshot_id, bytes, bytes_added, stun_ms,
    outcome, error, started_at, finished_at, incremental, bytes_read, checkpoint
FROM run_steps WHERE run_id = ? ORDER BY seq`, runID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st catalog.Step
			var started, finished sql.NullInt64
			if err := rows.Scan(&st.RunID, &st.Seq, &st.Phase, &st.Node, &st.Epoch, &st.Workload, &st.SnapshotID,
				&st.Bytes, &st.BytesAdded, &st.StunMS, &st.Outcome, &st.Error, &started, &finished,
				&st.Incremental, &st.BytesRead, &st.Checkpoint); err != nil {
				return err
			}
			st.StartedAt, st.FinishedAt = fromNanos(started), fromNanos(finished)
			out = append(out, st)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("%s: steps of run %q: %w", s.name, runID, err)
	}
	return out, nil
}

func scanRun(r scanner) (catalog.Run, error) {
	var run catalog.Run
	var nodeOrder, expected string
	var started, finished, heartbeat sql.NullInt64
	err := r.Scan(&run.ID, &run.Group, &run.Cluster, &run.Master, &nodeOrder, &expected,
		&run.Status, &run.Error, &started, &finished, &run.Owner, &heartbeat)
	if err != nil {
		return run, err
	}
	run.StartedAt, run.FinishedAt, run.HeartbeatAt = fromNanos(started), fromNanos(finished), fromNanos(heartbeat)
	if run.NodeOrder, err = decodeNames("node_order", nodeOrder); err != nil {
		return run, fmt.Errorf("run %q: %w", run.ID, err)
	}
	if run.Expected, err = decodeNames("expected", expected); err != nil {
		return run, fmt.Errorf("run %q: %w", run.ID, err)
	}
	return run, nil
}
