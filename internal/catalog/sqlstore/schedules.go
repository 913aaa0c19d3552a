package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

const scheduleColumns = `name, group_name, cron, time_zone, interval_ns, start_window_ns, completion_window_ns, jitter_ns,
    paused, catch_up, tags, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within_ns,
    verify_every_ns, created_at, updated_at`

const slotColumns = `schedule_name, slot, state, daemon, token, run_id, reason, claimed_at, started_at, finished_at`

// PutSchedule inserts sc or replaces the schedule of the same name; its
// slots are kept.
func (s *Store) PutSchedule(ctx context.Context, sc catalog.Schedule) error {
	if err := catalog.ValidateSchedule(sc); err != nil {
		return fmt.Errorf("%s: put schedule: %w", s.name, err)
	}
	r := sc.Retention
	err := s.write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO schedules (`+scheduleColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    group_name = excluded.group_name,
    cron = excluded.cron,
    time_zone = excluded.time_zone,
    interval_ns = excluded.interval_ns,
    start_window_ns = excluded.start_window_ns,
    completion_window_ns = excluded.completion_window_ns,
    jitter_ns = excluded.jitter_ns,
    paused = excluded.paused,
    catch_up = excluded.catch_up,
    tags = excluded.tags,
    keep_last = excluded.keep_last,
    keep_hourly = excluded.keep_hourly,
    keep_daily = excluded.keep_daily,
    keep_weekly = excluded.keep_weekly,
    keep_monthly = excluded.keep_monthly,
    keep_yearly = excluded.keep_yearly,
    keep_within_ns = excluded.keep_within_ns,
    verify_every_ns = excluded.verify_every_ns,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at`,
			sc.Name, sc.Group, sc.Cron, sc.TimeZone, int64(sc.Interval), int64(sc.StartWindow), int64(sc.CompletionWindow), int64(sc.Jitter),
			sc.Paused, sc.CatchUp, encodeNames(sc.Tags), r.KeepLast, r.KeepHourly, r.KeepDaily, r.KeepWeekly, r.KeepMonthly, r.KeepYearly, int64(r.KeepWithin),
			int64(sc.VerifyEvery), toNanos(sc.CreatedAt), toNanos(sc.UpdatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: put schedule %q: %w", s.name, sc.Name, err)
	}
	return nil
}

func scanSchedule(r scanner) (catalog.Schedule, error) {
	var sc catalog.Schedule
	var interval, start, completion, jitter, within, verify int64
	var tags string
	var created, updated sql.NullInt64
	rt := &sc.Retention
	if err := r.Scan(&sc.Name, &sc.Group, &sc.Cron, &sc.TimeZone, &interval, &start, &completion, &jitter,
		&sc.Paused, &sc.CatchUp, &tags, &rt.KeepLast, &rt.KeepHourly, &rt.KeepDaily, &rt.KeepWeekly, &rt.KeepMonthly, &rt.KeepYearly, &within,
		&verify, &created, &updated); err != nil {
		return sc, err
	}
	sc.Interval, sc.StartWindow, sc.CompletionWindow, sc.Jitter = time.Duration(interval), time.Duration(start), time.Duration(completion), time.Duration(jitter)
	rt.KeepWithin, sc.VerifyEvery = time.Duration(within), time.Duration(verify)
	sc.CreatedAt, sc.UpdatedAt = fromNanos(created), fromNanos(updated)
	var err error
	sc.Tags, err = decodeNames("schedules.tags", tags)
	return sc, err
}

// GetSchedule returns the named schedule or an error wrapping
// catalog.ErrNotFound.
func (s *Store) GetSchedule(ctx context.Context, name string) (catalog.Schedule, error) {
	sc, err := first(ctx, s, scanSchedule, `SELECT `+scheduleColumns+` FROM schedules WHERE name = ?`, name)
	if err != nil {
		return catalog.Schedule{}, s.getError("schedule", name, err)
	}
	return sc, nil
}

// ListSchedules returns the schedules of group ("" for every group) by name.
func (s *Store) ListSchedules(ctx context.Context, group string) ([]catalog.Schedule, error) {
	var out []catalog.Schedule
	err := s.read(ctx, func(tx *Tx) error {
		q, args := `SELECT `+scheduleColumns+` FROM schedules ORDER BY name COLLATE {bytes}`, []any{}
		if group != "" {
			q, args = `SELECT `+scheduleColumns+` FROM schedules WHERE group_name = ? ORDER BY name COLLATE {bytes}`, []any{group}
		}
		var err error
		out, err = collect(ctx, tx, scanSchedule, q, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list schedules of group %q: %w", s.name, group, err)
	}
	return out, nil
}

// DeleteSchedule removes the named schedule and (by cascade) its slots.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `DELETE FROM schedules WHERE name = ?`, name))
		if err == nil && n == 0 {
			err = catalog.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: delete schedule %q: %w", s.name, name, err)
	}
	return nil
}

// lockLeadership reads role's row and locks it until the transaction ends
// (PostgreSQL row lock; SQLite's write transaction excludes every other
// writer), so no grant can commit between a fence check and the write it
// guards. found is false if the role was never granted.
func lockLeadership(ctx context.Context, tx *Tx, role string) (l catalog.Leadership, highest int64, found bool, err error) {
	var expires sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT holder, token, expires_at, highest_token FROM leaderships WHERE role = ? {for_update}`, role).
		Scan(&l.Holder, &l.Token, &expires, &highest)
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Leadership{Role: role}, 0, false, nil
	}
	l.Role, l.ExpiresAt = role, fromNanos(expires)
	return l, highest, err == nil && highest > 0, err
}

// fence locks the scheduler leadership and judges a slot write with
// catalog.CheckFence.
func fence(ctx context.Context, tx *Tx, token int64, now time.Time) error {
	l, _, found, err := lockLeadership(ctx, tx, catalog.RoleScheduler)
	if err != nil {
		return fmt.Errorf("read the %q leadership: %w", catalog.RoleScheduler, err)
	}
	return catalog.CheckFence(l, found, token, now)
}

// fenceClause repeats the fence inside a write's WHERE, so the write itself
// only happens while the token leads (arguments: token, now).
const fenceClause = `EXISTS (SELECT 1 FROM leaderships
    WHERE role = '` + catalog.RoleScheduler + `' AND holder <> '' AND token = ? AND expires_at > ?)`

// ClaimSlot inserts sl if its token is the current, unexpired scheduler
// token at now and the slot is new; else an error wrapping ErrConflict
// (ErrNotFound if the schedule does not exist).
func (s *Store) ClaimSlot(ctx context.Context, sl catalog.ScheduleSlot, now time.Time) error {
	if err := catalog.ValidateSlot(sl); err != nil {
		return fmt.Errorf("%s: claim slot: %w", s.name, err)
	}
	what := slotName(sl.Schedule, sl.Slot)
	if err := catalog.ValidateFenceTime(now); err != nil {
		return fmt.Errorf("%s: claim %s: %w", s.name, what, err)
	}
	err := s.write(ctx, func(tx *Tx) error {
		if err := fence(ctx, tx, sl.Token, now); err != nil {
			return err
		}
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM schedules WHERE name = ? {for_key_share}`, sl.Schedule).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("schedule %q: %w", sl.Schedule, catalog.ErrNotFound)
		} else if err != nil {
			return err
		}
		n, err := rowsAffected(tx.ExecContext(ctx, `
INSERT INTO schedule_slots (`+slotColumns+`)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE `+fenceClause+`
ON CONFLICT (schedule_name, slot) DO NOTHING`,
			sl.Schedule, sl.Slot.UnixNano(), sl.State, sl.Daemon, sl.Token, sl.RunID, sl.Reason,
			toNanos(sl.ClaimedAt), toNanos(sl.StartedAt), toNanos(sl.FinishedAt), sl.Token, now.UnixNano()))
		if err != nil || n == 1 {
			return err
		}
		var cur catalog.ScheduleSlot
		err = tx.QueryRowContext(ctx, `SELECT daemon, token, state FROM schedule_slots WHERE schedule_name = ? AND slot = ?`,
			sl.Schedule, sl.Slot.UnixNano()).Scan(&cur.Daemon, &cur.Token, &cur.State)
		if err != nil {
			return fmt.Errorf("the claim was refused and the existing slot could not be read: %w (%w)", err, catalog.ErrConflict)
		}
		return fmt.Errorf("already claimed by daemon %q (token %d, state %s): %w", cur.Daemon, cur.Token, cur.State, catalog.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("%s: claim %s: %w", s.name, what, err)
	}
	return nil
}

// UpdateSlot replaces State, Daemon, Token, RunID, Reason, StartedAt and
// FinishedAt of an existing slot under the same fence as ClaimSlot.
func (s *Store) UpdateSlot(ctx context.Context, sl catalog.ScheduleSlot, now time.Time) error {
	if err := catalog.ValidateSlot(sl); err != nil {
		return fmt.Errorf("%s: update slot: %w", s.name, err)
	}
	what := slotName(sl.Schedule, sl.Slot)
	if err := catalog.ValidateFenceTime(now); err != nil {
		return fmt.Errorf("%s: update %s: %w", s.name, what, err)
	}
	err := s.write(ctx, func(tx *Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM schedule_slots WHERE schedule_name = ? AND slot = ?`, sl.Schedule, sl.Slot.UnixNano()).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return catalog.ErrNotFound
		} else if err != nil {
			return err
		}
		if err := fence(ctx, tx, sl.Token, now); err != nil {
			return err
		}
		n, err := rowsAffected(tx.ExecContext(ctx, `
UPDATE schedule_slots SET state = ?, daemon = ?, token = ?, run_id = ?, reason = ?, started_at = ?, finished_at = ?
WHERE schedule_name = ? AND slot = ? AND `+fenceClause,
			sl.State, sl.Daemon, sl.Token, sl.RunID, sl.Reason, toNanos(sl.StartedAt), toNanos(sl.FinishedAt),
			sl.Schedule, sl.Slot.UnixNano(), sl.Token, now.UnixNano()))
		if err != nil || n == 1 {
			return err
		}
		// The slot was deleted with its schedule after it was read.
		return catalog.ErrNotFound
	})
	if err != nil {
		return fmt.Errorf("%s: update %s: %w", s.name, what, err)
	}
	return nil
}

func scanSlot(r scanner) (catalog.ScheduleSlot, error) {
	var sl catalog.ScheduleSlot
	var slot int64
	var claimed, started, finished sql.NullInt64
	err := r.Scan(&sl.Schedule, &slot, &sl.State, &sl.Daemon, &sl.Token, &sl.RunID, &sl.Reason, &claimed, &started, &finished)
	sl.Slot = time.Unix(0, slot).UTC()
	sl.ClaimedAt, sl.StartedAt, sl.FinishedAt = fromNanos(claimed), fromNanos(started), fromNanos(finished)
	return sl, err
}

// GetSlot returns one slot or an error wrapping catalog.ErrNotFound.
func (s *Store) GetSlot(ctx context.Context, schedule string, slot time.Time) (catalog.ScheduleSlot, error) {
	sl, err := first(ctx, s, scanSlot, `SELECT `+slotColumns+` FROM schedule_slots WHERE schedule_name = ? AND slot = ?`, schedule, slot.UnixNano())
	if err != nil {
		what := slotName(schedule, slot)
		if errors.Is(err, catalog.ErrNotFound) {
			return catalog.ScheduleSlot{}, fmt.Errorf("%s: %s: %w", s.name, what, err)
		}
		return catalog.ScheduleSlot{}, fmt.Errorf("%s: get %s: %w", s.name, what, err)
	}
	return sl, nil
}

// ListSlots returns a schedule's slots newest first, at most limit (0: all).
func (s *Store) ListSlots(ctx context.Context, schedule string, limit int) ([]catalog.ScheduleSlot, error) {
	if err := catalog.ValidateSlotLimit(limit); err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	var out []catalog.ScheduleSlot
	err := s.read(ctx, func(tx *Tx) error {
		q, args := `SELECT `+slotColumns+` FROM schedule_slots WHERE schedule_name = ? ORDER BY slot DESC`, []any{schedule}
		if limit > 0 {
			q, args = q+` LIMIT ?`, append(args, limit)
		}
		var err error
		out, err = collect(ctx, tx, scanSlot, q, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list slots of schedule %q: %w", s.name, schedule, err)
	}
	return out, nil
}

// RunningSlots returns every running slot, by schedule name, then oldest
// slot first.
func (s *Store) RunningSlots(ctx context.Context) ([]catalog.ScheduleSlot, error) {
	var out []catalog.ScheduleSlot
	err := s.read(ctx, func(tx *Tx) error {
		var err error
		out, err = collect(ctx, tx, scanSlot, `SELECT `+slotColumns+` FROM schedule_slots WHERE state = 'running'
ORDER BY schedule_name COLLATE {bytes}, slot`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list running slots: %w", s.name, err)
	}
	return out, nil
}

// AcquireLeadership grants role to holder with the next token if it is free
// or expired at now (a grant expires at ExpiresAt, inclusive), renews it
// with the same token if holder holds it, and returns an error wrapping
// catalog.ErrConflict that names the holder while another holder's grant is
// unexpired. A refused grant consumes no token.
func (s *Store) AcquireLeadership(ctx context.Context, role, holder string, ttl time.Duration, now time.Time) (catalog.Leadership, error) {
	if err := catalog.ValidateLeadershipRequest(role, holder, ttl, now); err != nil {
		return catalog.Leadership{}, fmt.Errorf("%s: %w", s.name, err)
	}
	var l catalog.Leadership
	err := s.write(ctx, func(tx *Tx) error {
		// Make sure the role's row exists, then lock it: concurrent grants
		// queue on the row lock (PostgreSQL; SQLite has one writer anyway)
		// and each then sees what its predecessor committed.
		if _, err := tx.ExecContext(ctx, `
INSERT INTO leaderships (role, holder, token, expires_at, highest_token) VALUES (?, '', 0, NULL, 0)
ON CONFLICT (role) DO NOTHING`, role); err != nil {
			return err
		}
		cur, highest, _, err := lockLeadership(ctx, tx, role)
		if err != nil {
			return err
		}
		expires := now.Add(ttl).UTC()
		switch {
		case cur.Holder == holder:
			// Renewal, also after an expiry nobody used: no other holder
			// wrote with a newer token, so the old one stays valid.
			l = catalog.Leadership{Role: role, Holder: holder, Token: cur.Token, ExpiresAt: expires}
		case cur.Holder != "" && now.Before(cur.ExpiresAt):
			return fmt.Errorf("held by daemon %q (token %d) until %s: %w",
				cur.Holder, cur.Token, cur.ExpiresAt.Format(time.RFC3339Nano), catalog.ErrConflict)
		default:
			l = catalog.Leadership{Role: role, Holder: holder, Token: highest + 1, ExpiresAt: expires}
		}
		_, err = tx.ExecContext(ctx, `UPDATE leaderships SET holder = ?, token = ?, expires_at = ?, highest_token = ? WHERE role = ?`,
			l.Holder, l.Token, l.ExpiresAt.UnixNano(), max(highest, l.Token), role)
		return err
	})
	if err != nil {
		return catalog.Leadership{}, fmt.Errorf("%s: acquire leadership %q for daemon %q: %w", s.name, role, holder, err)
	}
	return l, nil
}

// ReleaseLeadership ends role if token is still current; otherwise it does
// nothing. The highest token is kept, so the next grant is above it.
func (s *Store) ReleaseLeadership(ctx context.Context, role string, token int64) error {
	err := s.write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE leaderships SET holder = '', expires_at = NULL WHERE role = ? AND token = ? AND holder <> ''`, role, token)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: release leadership %q (token %d): %w", s.name, role, token, err)
	}
	return nil
}

// GetLeadership returns role's current grant (Holder "" and a zero
// ExpiresAt once released; Token is then the last one granted), or an error
// wrapping catalog.ErrNotFound if it was never granted.
func (s *Store) GetLeadership(ctx context.Context, role string) (catalog.Leadership, error) {
	l, err := first(ctx, s, func(r scanner) (catalog.Leadership, error) {
		l := catalog.Leadership{Role: role}
		var expires sql.NullInt64
		err := r.Scan(&l.Holder, &l.Token, &expires)
		l.ExpiresAt = fromNanos(expires)
		return l, err
	}, `SELECT holder, token, expires_at FROM leaderships WHERE role = ? AND highest_token > 0`, role)
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.Leadership{}, fmt.Errorf("%s: leadership %q was never granted: %w", s.name, role, err)
	} else if err != nil {
		return catalog.Leadership{}, fmt.Errorf("%s: get leadership %q: %w", s.name, role, err)
	}
	return l, nil
}

// PutDaemon inserts d or replaces the daemon of the same id.
func (s *Store) PutDaemon(ctx context.Context, d catalog.Daemon) error {
	if err := catalog.ValidateDaemon(d); err != nil {
		return fmt.Errorf("%s: put daemon: %w", s.name, err)
	}
	err := s.write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO daemons (id, host, version, listen, started_at, seen_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET host = excluded.host, version = excluded.version, listen = excluded.listen,
    started_at = excluded.started_at, seen_at = excluded.seen_at`,
			d.ID, d.Host, d.Version, d.Listen, toNanos(d.StartedAt), toNanos(d.SeenAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: put daemon %q: %w", s.name, d.ID, err)
	}
	return nil
}

// ListDaemons returns every daemon, most recently seen first (ties by id).
func (s *Store) ListDaemons(ctx context.Context) ([]catalog.Daemon, error) {
	var out []catalog.Daemon
	err := s.read(ctx, func(tx *Tx) error {
		var err error
		out, err = collect(ctx, tx, func(r scanner) (catalog.Daemon, error) {
			var d catalog.Daemon
			var started, seen sql.NullInt64
			err := r.Scan(&d.ID, &d.Host, &d.Version, &d.Listen, &started, &seen)
			d.StartedAt, d.SeenAt = fromNanos(started), fromNanos(seen)
			return d, err
		}, `SELECT id, host, version, listen, started_at, seen_at FROM daemons
ORDER BY COALESCE(seen_at, -9223372036854775807) DESC, id COLLATE {bytes}`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list daemons: %w", s.name, err)
	}
	return out, nil
}

// DeleteDaemon removes the daemon or returns an error wrapping
// catalog.ErrNotFound.
func (s *Store) DeleteDaemon(ctx context.Context, id string) error {
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `DELETE FROM daemons WHERE id = ?`, id))
		if err == nil && n == 0 {
			err = catalog.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: delete daemon %q: %w", s.name, id, err)
	}
	return nil
}

// PutNodeRegistration inserts r or replaces the registration of the same
// (Cluster, Node).
func (s *Store) PutNodeRegistration(ctx context.Context, r catalog.NodeRegistration) error {
	if err := catalog.ValidateNodeRegistration(r); err != nil {
		return fmt.Errorf("%s: put node registration: %w", s.name, err)
	}
	err := s.write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO node_registrations (cluster, node, endpoint, volume_id, version, workloads, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (cluster, node) DO UPDATE SET endpoint = excluded.endpoint, volume_id = excluded.volume_id,
    version = excluded.version, workloads = excluded.workloads, seen_at = excluded.seen_at`,
			r.Cluster, r.Node, r.Endpoint, r.VolumeID, r.Version, encodeNames(r.Workloads), toNanos(r.SeenAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: put node registration %q/%q: %w", s.name, r.Cluster, r.Node, err)
	}
	return nil
}

// ListNodeRegistrations returns the registrations of cluster ("" for all),
// by cluster, then node.
func (s *Store) ListNodeRegistrations(ctx context.Context, cluster string) ([]catalog.NodeRegistration, error) {
	var out []catalog.NodeRegistration
	err := s.read(ctx, func(tx *Tx) error {
		q, args := `SELECT cluster, node, endpoint, volume_id, version, workloads, seen_at FROM node_registrations`, []any{}
		if cluster != "" {
			q, args = q+` WHERE cluster = ?`, []any{cluster}
		}
		q += ` ORDER BY cluster COLLATE {bytes}, node COLLATE {bytes}`
		var err error
		out, err = collect(ctx, tx, func(r scanner) (catalog.NodeRegistration, error) {
			var n catalog.NodeRegistration
			var workloads string
			var seen sql.NullInt64
			if err := r.Scan(&n.Cluster, &n.Node, &n.Endpoint, &n.VolumeID, &n.Version, &workloads, &seen); err != nil {
				return n, err
			}
			n.SeenAt = fromNanos(seen)
			var err error
			n.Workloads, err = decodeNames("node_registrations.workloads", workloads)
			return n, err
		}, q, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list node registrations of cluster %q: %w", s.name, cluster, err)
	}
	return out, nil
}

func slotName(schedule string, slot time.Time) string {
	return fmt.Sprintf("slot %s of schedule %q", slot.UTC().Format(time.RFC3339Nano), schedule)
}
