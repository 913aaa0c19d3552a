package repository

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// RetentionPolicy says which snapshots to keep; a snapshot kept by any rule
// stays. Counts keep the newest snapshot of each of the N most recent
// periods (hours, days, ISO weeks, months, years) that have one, in the
// location of the now passed to Forget.
type RetentionPolicy struct {
	Last    int
	Hourly  int
	Daily   int
	Weekly  int
	Monthly int
	Yearly  int
	// Within keeps every snapshot taken less than this long before now.
	Within time.Duration
	// Tags keeps every snapshot carrying any of these tags.
	Tags []string
}

// Empty reports whether the policy keeps nothing.
func (p RetentionPolicy) Empty() bool {
	return p.Last <= 0 && p.Hourly <= 0 && p.Daily <= 0 && p.Weekly <= 0 && p.Monthly <= 0 && p.Yearly <= 0 && p.Within <= 0 && len(p.Tags) == 0
}

// ForgetGroup is the decision for one workload/cluster/group.
type ForgetGroup struct {
	Workload, Cluster, Group string
	Keep                     []Snapshot
	Remove                   []Snapshot
	Reasons                  map[string][]string // snapshot id -> rules that keep it
}

// ForgetResult lists what Forget kept and removed, per group.
type ForgetResult struct {
	Groups  []ForgetGroup
	Removed int
	DryRun  bool
	// Retained names snapshots the policy would remove but whose retention
	// (S3 Object Lock) has not passed; they stay until a later forget.
	Retained []string
}

type groupKey struct{ workload, cluster, group string }

// Forget applies p to the snapshots matching f, separately for each
// workload/cluster/group, and removes the snapshots no rule keeps (unless
// dryRun). It frees no space itself: Prune does. now comes from the
// caller so retention is deterministic under test.
func (r *Repository) Forget(ctx context.Context, p RetentionPolicy, f SnapshotFilter, now time.Time, dryRun bool) (ForgetResult, error) {
	res := ForgetResult{DryRun: dryRun}
	if p.Empty() {
		return res, errors.New("forget: the retention policy keeps nothing; set at least one keep rule (last, hourly, daily, weekly, monthly, yearly, within, tags)")
	}
	if !dryRun {
		lk, err := r.lock(ctx, false, "forget")
		if err != nil {
			return res, err
		}
		defer lk.unlock(ctx)
	}
	snaps, err := r.Snapshots(ctx, f)
	if err != nil {
		return res, fmt.Errorf("forget: %w", err)
	}
	groups := map[groupKey][]Snapshot{}
	var order []groupKey
	for _, s := range snaps {
		k := groupKey{s.Workload, s.Cluster, s.Group}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}
	for _, k := range order {
		keep, remove, reasons := applyRetention(p, groups[k], now)
		res.Groups = append(res.Groups, ForgetGroup{Workload: k.workload, Cluster: k.cluster, Group: k.group, Keep: keep, Remove: remove, Reasons: reasons})
		res.Removed += len(remove)
		if dryRun {
			continue
		}
		for _, s := range remove {
			ret, err := r.retained(ctx, Handle{Type: SnapshotFile, Name: s.ID})
			if err != nil {
				return res, fmt.Errorf("forget: snapshot %s: %w", s.ShortID(), err)
			}
			if ret {
				// Under retention (object lock): a later forget removes it.
				res.Retained = append(res.Retained, s.ID)
				res.Removed--
				continue
			}
			if err := r.be.Remove(ctx, Handle{Type: SnapshotFile, Name: s.ID}); err != nil {
				return res, fmt.Errorf("forget: remove snapshot %s: %w", s.ShortID(), err)
			}
			r.snaps.Delete(s.ID)
		}
	}
	return res, nil
}

// applyRetention splits snaps (newest first) into kept and removed.
func applyRetention(p RetentionPolicy, snaps []Snapshot, now time.Time) (keep, remove []Snapshot, reasons map[string][]string) {
	loc := now.Location()
	type bucketRule struct {
		name  string
		n     int
		key   func(time.Time) string
		seen  map[string]bool
		count int
	}
	rules := []*bucketRule{
		{name: "hourly", n: p.Hourly, key: func(t time.Time) string { return t.Format("2006-01-02 15") }},
		{name: "daily", n: p.Daily, key: func(t time.Time) string { return t.Format("2006-01-02") }},
		{name: "weekly", n: p.Weekly, key: func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-%02d", y, w) }},
		{name: "monthly", n: p.Monthly, key: func(t time.Time) string { return t.Format("2006-01") }},
		{name: "yearly", n: p.Yearly, key: func(t time.Time) string { return t.Format("2006") }},
	}
	for _, br := range rules {
		br.seen = map[string]bool{}
	}
	reasons = map[string][]string{}
	for i, s := range snaps {
		var why []string
		if i < p.Last {
			why = append(why, "last")
		}
		t := s.Time.In(loc)
		for _, br := range rules {
			if br.count >= br.n {
				continue
			}
			k := br.key(t)
			if !br.seen[k] {
				br.seen[k] = true
				br.count++
				why = append(why, br.name)
			}
		}
		if p.Within > 0 && now.Sub(s.Time) < p.Within {
			why = append(why, "within")
		}
		for _, tag := range p.Tags {
			if slices.Contains(s.Tags, tag) {
				why = append(why, "tag "+tag)
				break
			}
		}
		if len(why) > 0 {
			keep = append(keep, s)
			reasons[s.ID] = why
		} else {
			remove = append(remove, s)
		}
	}
	return keep, remove, reasons
}
