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
