package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

const groupColumns = `name, cluster, repository, workloads, selector_name_regex, selector_driver, selector_node,
    exclude, consistency, node_order, critical_workloads, extract_at,
    keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within_ns, rpo_ns,
    created_at, updated_at`

// PutGroup inserts g or replaces the protection group of the same name.
func (s *Store) PutGroup(ctx context.Context, g catalog.ProtectionGroup) error {
	if err := catalog.ValidateGroup(g); err != nil {
		return fmt.Errorf("%s: put protection group: %w", s.name, err)
	}
	var regex, driver, node sql.NullString
	if sel := g.Selector; sel != nil {
		regex = sql.NullString{String: sel.NameRegex, Valid: true}
		driver = sql.NullString{String: sel.Driver, Valid: true}
		node = sql.NullString{String: sel.Node, Valid: true}
	}
	r := g.Retention
	err := s.write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO protection_groups (`+groupColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    cluster = excluded.cluster,
    repository = excluded.repository,
    workloads = excluded.workloads,
    selector_name_regex = excluded.selector_name_regex,
    selector_driver = excluded.selector_driver,
    selector_node = excluded.selector_node,
    exclude = excluded.exclude,
    consistency = excluded.consistency,
    node_order = excluded.node_order,
    critical_workloads = excluded.critical_workloads,
    extract_at = excluded.extract_at,
    keep_last = excluded.keep_last,
    keep_hourly = excluded.keep_hourly,
    keep_daily = excluded.keep_daily,
    keep_weekly = excluded.keep_weekly,
    keep_monthly = excluded.keep_monthly,
    keep_yearly = excluded.keep_yearly,
    keep_within_ns = excluded.keep_within_ns,
    rpo_ns = excluded.rpo_ns,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at`,
			g.Name, g.Cluster, g.Repository, encodeNames(g.Workloads), regex, driver, node,
			encodeNames(g.Exclude), g.Consistency, g.NodeOrder, encodeNames(g.CriticalWorkloads), g.ExtractAt,
			r.KeepLast, r.KeepHourly, r.KeepDaily, r.KeepWeekly, r.KeepMonthly, r.KeepYearly, int64(r.KeepWithin), int64(g.RPO),
			toNanos(g.CreatedAt), toNanos(g.UpdatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: put protection group %q: %w", s.name, g.Name, err)
	}
	return nil
}

// GetGroup returns the named protection group or an error wrapping
// catalog.ErrNotFound.
func (s *Store) GetGroup(ctx context.Context, name string) (catalog.ProtectionGroup, error) {
	g, err := first(ctx, s, scanGroup, `SELECT `+groupColumns+` FROM protection_groups WHERE name = ?`, name)
	if err != nil {
		return catalog.ProtectionGroup{}, s.getError("protection group", name, err)
	}
	return g, nil
}

// ListGroups returns the protection groups of cluster ("" for every
// cluster), sorted by name.
func (s *Store) ListGroups(ctx context.Context, cluster string) ([]catalog.ProtectionGroup, error) {
	out := []catalog.ProtectionGroup{}
	err := s.read(ctx, func(tx *Tx) error {
		q, args := `SELECT `+groupColumns+` FROM protection_groups ORDER BY name COLLATE {bytes}`, []any{}
		if cluster != "" {
			q, args = `SELECT `+groupColumns+` FROM protection_groups WHERE cluster = ? ORDER BY name COLLATE {bytes}`, []any{cluster}
		}
		var err error
		out, err = collect(ctx, tx, scanGroup, q, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list protection groups of cluster %q: %w", s.name, cluster, err)
	}
	return out, nil
}

// DeleteGroup removes the named protection group or returns an error
// wrapping catalog.ErrNotFound. Its runs and recovery points are kept.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	err := s.write(ctx, func(tx *Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `DELETE FROM protection_groups WHERE name = ?`, name))
		if err == nil && n == 0 {
			err = catalog.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: delete protection group %q: %w", s.name, name, err)
	}
	return nil
}

func scanGroup(r scanner) (catalog.ProtectionGroup, error) {
	var g catalog.ProtectionGroup
	var workloads, exclude, critical string
	var regex, driver, node sql.NullString
	var keepWithin, rpo int64
	var created, updated sql.NullInt64
	rt := &g.Retention
	err := r.Scan(&g.Name, &g.Cluster, &g.Repository, &workloads, &regex, &driver, &node,
		&exclude, &g.Consistency, &g.NodeOrder, &critical, &g.ExtractAt,
		&rt.KeepLast, &rt.KeepHourly, &rt.KeepDaily, &rt.KeepWeekly, &rt.KeepMonthly, &rt.KeepYearly, &keepWithin, &rpo,
		&created, &updated)
	if err != nil {
		return g, err
	}
	if regex.Valid {
		g.Selector = &catalog.Selector{NameRegex: regex.String, Driver: driver.String, Node: node.String}
	}
	rt.KeepWithin, g.RPO = time.Duration(keepWithin), time.Duration(rpo)
	g.CreatedAt, g.UpdatedAt = fromNanos(created), fromNanos(updated)
	if g.Workloads, err = decodeNames("workloads", workloads); err != nil {
		return g, fmt.Errorf("protection group %q: %w", g.Name, err)
	}
	if g.Exclude, err = decodeNames("exclude", exclude); err != nil {
		return g, fmt.Errorf("protection group %q: %w", g.Name, err)
	}
	if g.CriticalWorkloads, err = decodeNames("critical_workloads", critical); err != nil {
		return g, fmt.Errorf("protection group %q: %w", g.Name, err)
	}
	return g, nil
}
