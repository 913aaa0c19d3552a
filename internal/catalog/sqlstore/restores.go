package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

const restoreColumns = `id, key, cluster, repository, spec, status, error, started_at, finished_at, owner, heartbeat_at`

func scanRestore(row scanner) (catalog.RestoreOperation, error) {
	var op catalog.RestoreOperation
	var started, finished, heartbeat sql.NullInt64
	err := row.Scan(&op.ID, &op.Key, &op.Cluster, &op.Repository, &op.Spec, &op.Status, &op.Error, &started, &finished, &op.Owner, &heartbeat)
	op.StartedAt, op.FinishedAt, op.HeartbeatAt = fromNanos(started), fromNanos(finished), fromNanos(heartbeat)
	return op, err
}

// CreateRestore inserts op; ErrConflict if its id exists.
func (s *Store) CreateRestore(ctx context.Context, op catalog.RestoreOperation) error {
	if err := catalog.ValidateRestore(op); err != nil {
		return fmt.Errorf("%s: create restore: %w", s.name, err)
	}
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `INSERT INTO restore_operations (`+restoreColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`, op.ID, op.Key, op.Cluster, op.Repository, op.Spec, op.Status, op.Error, toNanos(op.StartedAt), toNanos(op.FinishedAt),
			op.Owner, toNanos(op.HeartbeatAt)))
		if err == nil && n == 0 {
			err = fmt.Errorf("a restore operation with this id exists: %w", catalog.ErrConflict)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: create restore %q: %w", s.name, op.ID, err)
	}
	return nil
}

// UpdateRestore replaces status, error and finished time (and owner and
// heartbeat when op names an owner); a succeeded operation is final.
func (s *Store) UpdateRestore(ctx context.Context, op catalog.RestoreOperation) error {
	err := s.write(ctx, func(tx *Tx) error {
		cur, err := scanRestore(tx.QueryRowContext(ctx, `SELECT `+restoreColumns+` FROM restore_operations WHERE id = ?`, op.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return catalog.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := catalog.CheckRestoreTransition(cur.Status, op.Status); err != nil {
			return err
		}
		cur.Status, cur.Error, cur.FinishedAt = op.Status, op.Error, op.FinishedAt
		if op.Owner != "" {
			cur.Owner, cur.HeartbeatAt = op.Owner, op.HeartbeatAt
		}
		if err := catalog.ValidateRestore(cur); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE restore_operations SET status = ?, error = ?, finished_at = ?, owner = ?, heartbeat_at = ? WHERE id = ?`,
			cur.Status, cur.Error, toNanos(cur.FinishedAt), cur.Owner, toNanos(cur.HeartbeatAt), cur.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: update restore %q: %w", s.name, op.ID, err)
	}
	return nil
}

// GetRestore returns the operation or ErrNotFound.
func (s *Store) GetRestore(ctx context.Context, id string) (catalog.RestoreOperation, error) {
	op, err := first(ctx, s, scanRestore, `SELECT `+restoreColumns+` FROM restore_operations WHERE id = ?`, id)
	if err != nil {
		return op, s.getError("restore", id, err)
	}
	return op, nil
}

// FindRestoreByKey returns the newest operation with key.
func (s *Store) FindRestoreByKey(ctx context.Context, key string) (catalog.RestoreOperation, error) {
	op, err := first(ctx, s, scanRestore, `SELECT `+restoreColumns+` FROM restore_operations WHERE key = ?
ORDER BY started_at DESC, id COLLATE {bytes} DESC LIMIT 1`, key)
	if err != nil {
		return op, s.getError("restore with key", key, err)
	}
	return op, nil
}

// ListRestores returns the operations on cluster ("" for every cluster),
// newest first by StartedAt (ties by id, descending), at most limit of them
// (0: all).
func (s *Store) ListRestores(ctx context.Context, cluster string, limit int) ([]catalog.RestoreOperation, error) {
	if err := catalog.ValidateRestoreLimit(limit); err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	q, args := `SELECT `+restoreColumns+` FROM restore_operations`, []any{}
	if cluster != "" {
		q, args = q+` WHERE cluster = ?`, append(args, cluster)
	}
	q += ` ORDER BY started_at DESC, id COLLATE {bytes} DESC`
	if limit > 0 {
		q, args = q+` LIMIT ?`, append(args, limit)
	}
	out := []catalog.RestoreOperation{}
	err := s.read(ctx, func(tx *Tx) error {
		var err error
		out, err = collect(ctx, tx, scanRestore, q, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list restores of cluster %q: %w", s.name, cluster, err)
	}
	return out, nil
}

// DeleteRestore removes an operation and its steps.
func (s *Store) DeleteRestore(ctx context.Context, id string) error {
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `DELETE FROM restore_operations WHERE id = ?`, id))
		if err == nil && n == 0 {
			err = catalog.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: delete restore %q: %w", s.name, id, err)
	}
	return nil
}

// PutRestoreStep inserts or replaces the step (operation, seq).
func (s *Store) PutRestoreStep(ctx context.Context, st catalog.RestoreStep) error {
	if err := catalog.ValidateRestoreStep(st); err != nil {
		return fmt.Errorf("%s: put restore step: %w", s.name, err)
	}
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM restore_operations WHERE id = ?`, st.OperationID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return catalog.ErrNotFound
		} else if err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO restore_steps (operation_id, seq, body) VALUES (?, ?, ?)
ON CONFLICT (operation_id, seq) DO UPDATE SET body = excluded.body`, st.OperationID, st.Seq, string(body))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: put restore step %q/%d: %w", s.name, st.OperationID, st.Seq, err)
	}
	return nil
}

// RestoreSteps returns an operation's steps by Seq.
func (s *Store) RestoreSteps(ctx context.Context, id string) ([]catalog.RestoreStep, error) {
	out := []catalog.RestoreStep{}
	err := s.read(ctx, func(tx *Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM restore_operations WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return catalog.ErrNotFound
		} else if err != nil {
			return err
		}
		var err error
		out, err = collect(ctx, tx, scanRestoreStep, `SELECT body FROM restore_steps WHERE operation_id = ? ORDER BY seq`, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: restore steps of %q: %w", s.name, id, err)
	}
	return out, nil
}

// scanRestoreStep reads a step's JSON body.
func scanRestoreStep(r scanner) (catalog.RestoreStep, error) {
	var body string
	var st catalog.RestoreStep
	if err := r.Scan(&body); err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return st, fmt.Errorf("damaged restore step: %w", err)
	}
	return st, nil
}
