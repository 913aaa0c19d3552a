package catalog

import (
	"fmt"
	"math"
	"time"
)

// Every Store implementation validates with these functions, so the embedded,
// PostgreSQL and in-memory catalogs accept and refuse exactly the same input.

// minTime and maxTime bound the times a catalog stores: the range of int64
// unix nanoseconds, which is how the SQL catalogs keep times exactly.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// ValidateCluster checks c before it is stored: a name, non-empty and unique
// node names, and storable times.
func ValidateCluster(c Cluster) error {
	if c.Name == "" {
		return fmt.Errorf("cluster has an empty name: give every cluster a name")
	}
	seen := make(map[string]int, len(c.Nodes))
	for i, n := range c.Nodes {
		if n.Name == "" {
			return fmt.Errorf("cluster %q: node %d has an empty name: give every node a name", c.Name, i)
		}
		if j, dup := seen[n.Name]; dup {
			return fmt.Errorf("cluster %q: node name %q is listed twice (positions %d and %d): node names must be unique within a cluster", c.Name, n.Name, j, i)
		}
		seen[n.Name] = i
	}
	for _, t := range []struct {
		field string
		v     time.Time
	}{{"CreatedAt", c.CreatedAt}, {"UpdatedAt", c.UpdatedAt}} {
		if err := checkTime(t.v); err != nil {
			return fmt.Errorf("cluster %q: %s: %w", c.Name, t.field, err)
		}
	}
	return nil
}

// ValidateLeaseRequest checks the arguments of AcquireLease.
func ValidateLeaseRequest(cluster, holder string, ttl time.Duration, now time.Time) error {
	if cluster == "" {
		return fmt.Errorf("acquire lease: empty cluster name")
	}
	if holder == "" {
		return fmt.Errorf("acquire lease on cluster %q: empty holder: name the node taking the coordinator role", cluster)
	}
	if ttl <= 0 {
		return fmt.Errorf("acquire lease on cluster %q: ttl %s is not positive", cluster, ttl)
	}
	if now.IsZero() {
		return fmt.Errorf("acquire lease on cluster %q: now is the zero time: pass the engine clock's current time", cluster)
	}
	if err := checkTime(now); err != nil {
		return fmt.Errorf("acquire lease on cluster %q: now: %w", cluster, err)
	}
	if err := checkTime(now.Add(ttl)); err != nil {
		return fmt.Errorf("acquire lease on cluster %q: now+ttl: %w", cluster, err)
	}
	return nil
}

func checkTime(t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return fmt.Errorf("time %s is outside the storable range %s to %s", t.UTC().Format(time.RFC3339), minTime.UTC().Format(time.RFC3339), maxTime.UTC().Format(time.RFC3339))
	}
	return nil
}

// ValidateRepository checks r before it is stored: a name and storable
// times. Its messages name the repository and the field, never a value, so
// no secret can reach them.
func ValidateRepository(r Repository) error {
	if r.Name == "" {
		return fmt.Errorf("repository has an empty name: give every repository a name")
	}
	return checkTimes(fmt.Sprintf("repository %q", r.Name), timeField{"CreatedAt", r.CreatedAt}, timeField{"UpdatedAt", r.UpdatedAt})
}

// ValidateGroup checks g before it is stored: a name, a cluster (ListGroups
// takes "" to mean every cluster, so a group must name one), no negative
// retention counts or durations, and storable times.
func ValidateGroup(g ProtectionGroup) error {
	if g.Name == "" {
		return fmt.Errorf("protection group has an empty name: give every protection group a name")
	}
	if g.Cluster == "" {
		return fmt.Errorf("protection group %q has an empty cluster: name the cluster whose workloads it protects", g.Name)
	}
	r := g.Retention
	for _, f := range []struct {
		field string
		v     int64
	}{
		{"Retention.KeepLast", int64(r.KeepLast)}, {"Retention.KeepHourly", int64(r.KeepHourly)},
		{"Retention.KeepDaily", int64(r.KeepDaily)}, {"Retention.KeepWeekly", int64(r.KeepWeekly)},
		{"Retention.KeepMonthly", int64(r.KeepMonthly)}, {"Retention.KeepYearly", int64(r.KeepYearly)},
		{"Retention.KeepWithin", int64(r.KeepWithin)}, {"RPO", int64(g.RPO)},
	} {
		if f.v < 0 {
			return fmt.Errorf("protection group %q: %s is negative (%d): use 0 for none", g.Name, f.field, f.v)
		}
	}
	return checkTimes(fmt.Sprintf("protection group %q", g.Name), timeField{"CreatedAt", g.CreatedAt}, timeField{"UpdatedAt", g.UpdatedAt})
}

// ValidateRun checks r before CreateRun or UpdateRun stores it: an id, a
// group (ListRuns takes "" to mean every group), a known status, a start
// time (runs are listed by it) and storable times.
func ValidateRun(r Run) error {
	if r.ID == "" {
		return fmt.Errorf("run has an empty id: give every run an id")
	}
	if r.Group == "" {
		return fmt.Errorf("run %q has an empty group: name the protection group it backs up", r.ID)
	}
	switch r.Status {
	case RunRunning, RunSucceeded, RunPartial, RunFailed:
	default:
		return fmt.Errorf("run %q has status %q: use one of %q, %q, %q, %q", r.ID, r.Status, RunRunning, RunSucceeded, RunPartial, RunFailed)
	}
	if r.StartedAt.IsZero() {
		return fmt.Errorf("run %q has a zero StartedAt: stamp it with the engine clock (runs are listed newest first by it)", r.ID)
	}
	return checkTimes(fmt.Sprintf("run %q", r.ID), timeField{"StartedAt", r.StartedAt}, timeField{"FinishedAt", r.FinishedAt})
}

// ValidateStep checks s before AddStep stores it: a run id, a sequence
// number from 1, a known outcome, no negative sizes and storable times.
func ValidateStep(s Step) error {
	if s.RunID == "" {
		return fmt.Errorf("step %d has an empty run id: name the run it belongs to", s.Seq)
	}
	if s.Seq < 1 {
		return fmt.Errorf("run %q: step sequence number %d: number steps from 1", s.RunID, s.Seq)
	}
	what := fmt.Sprintf("run %q step %d", s.RunID, s.Seq)
	switch s.Outcome {
	case StepSucceeded, StepFailed, StepSkipped:
	default:
		return fmt.Errorf("%s has outcome %q: use one of %q, %q, %q", what, s.Outcome, StepSucceeded, StepFailed, StepSkipped)
	}
	for _, f := range []struct {
		field string
		v     int64
	}{{"Bytes", s.Bytes}, {"BytesAdded", s.BytesAdded}, {"StunMS", s.StunMS}, {"BytesRead", s.BytesRead}} {
		if f.v < 0 {
			return fmt.Errorf("%s: %s is negative (%d)", what, f.field, f.v)
		}
	}
	return checkTimes(what, timeField{"StartedAt", s.StartedAt}, timeField{"FinishedAt", s.FinishedAt})
}

// ValidateRecoveryPoint checks p before it is stored: an id, a non-negative
// size, and a creation time (recovery points are listed and filtered by it).
func ValidateRecoveryPoint(p RecoveryPoint) error {
	if p.ID == "" {
		return fmt.Errorf("recovery point has an empty id: use the snapshot id")
	}
	if p.Size < 0 {
		return fmt.Errorf("recovery point %q: Size is negative (%d)", p.ID, p.Size)
	}
	if p.CreatedAt.IsZero() {
		return fmt.Errorf("recovery point %q has a zero CreatedAt: use the snapshot's time (recovery points are listed and filtered by it)", p.ID)
	}
	return checkTimes(fmt.Sprintf("recovery point %q", p.ID), timeField{"CreatedAt", p.CreatedAt})
}

// ValidateRecoveryPointFilter checks that the bounds of f are storable times,
// so the SQL catalogs can compare them exactly. From at or after To is
// allowed and matches nothing.
func ValidateRecoveryPointFilter(f RecoveryPointFilter) error {
	if err := checkTime(f.From); err != nil {
		return fmt.Errorf("recovery point filter: From: %w", err)
	}
	if err := checkTime(f.To); err != nil {
		return fmt.Errorf("recovery point filter: To: %w", err)
	}
	return nil
}

// ValidateRunLimit checks the limit of ListRuns: 0 means no limit.
func ValidateRunLimit(limit int) error {
	if limit < 0 {
		return fmt.Errorf("list runs: limit %d is negative: pass 0 for every run", limit)
	}
	return nil
}

// ValidateRestoreLimit checks ListRestores's limit.
func ValidateRestoreLimit(limit int) error {
	if limit < 0 {
		return fmt.Errorf("list restores: limit %d is negative: pass 0 for every operation", limit)
	}
	return nil
}

type timeField struct {
	name string
	v    time.Time
}

// checkTimes checks the times of the record described by what.
func checkTimes(what string, fields ...timeField) error {
	for _, f := range fields {
		if err := checkTime(f.v); err != nil {
			return fmt.Errorf("%s: %s: %w", what, f.name, err)
		}
	}
	return nil
}
