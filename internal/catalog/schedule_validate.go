package catalog

import (
	"fmt"
	"time"
)

// ValidateSchedule checks s before it is stored: a name and a group, exactly
// one of Cron and Interval, a known catch-up policy, no negative durations or
// retention counts, and storable times. Whether the cron expression parses
// and the time zone exists is the planner's concern (engine/schedule), which
// knows the syntax; the catalog keeps what it is given.
func ValidateSchedule(s Schedule) error {
	if s.Name == "" {
		return fmt.Errorf("schedule has an empty name: give every schedule a name")
	}
	if s.Group == "" {
		return fmt.Errorf("schedule %q has an empty group: name the protection group it backs up", s.Name)
	}
	switch {
	case s.Cron == "" && s.Interval == 0:
		return fmt.Errorf("schedule %q has neither a cron expression nor an interval: set exactly one", s.Name)
	case s.Cron != "" && s.Interval != 0:
		return fmt.Errorf("schedule %q has both a cron expression and an interval (%s): set exactly one", s.Name, s.Interval)
	}
	switch s.CatchUp {
	case "", CatchUpLatest, CatchUpSkip:
	default:
		return fmt.Errorf("schedule %q has catch-up policy %q: use %q or %q", s.Name, s.CatchUp, CatchUpLatest, CatchUpSkip)
	}
	r := s.Retention
	for _, f := range []struct {
		field string
		v     int64
	}{
		{"Interval", int64(s.Interval)}, {"StartWindow", int64(s.StartWindow)},
		{"CompletionWindow", int64(s.CompletionWindow)}, {"Jitter", int64(s.Jitter)}, {"VerifyEvery", int64(s.VerifyEvery)},
		{"Retention.KeepLast", int64(r.KeepLast)}, {"Retention.KeepHourly", int64(r.KeepHourly)},
		{"Retention.KeepDaily", int64(r.KeepDaily)}, {"Retention.KeepWeekly", int64(r.KeepWeekly)},
		{"Retention.KeepMonthly", int64(r.KeepMonthly)}, {"Retention.KeepYearly", int64(r.KeepYearly)},
		{"Retention.KeepWithin", int64(r.KeepWithin)},
	} {
		if f.v < 0 {
			return fmt.Errorf("schedule %q: %s is negative (%d): use 0 for none", s.Name, f.field, f.v)
		}
	}
	for i, tag := range s.Tags {
		if tag == "" {
			return fmt.Errorf("schedule %q: tag %d is empty: remove it or give it a value", s.Name, i)
		}
		if err := CheckUserTag(tag); err != nil {
			return fmt.Errorf("schedule %q: %w", s.Name, err)
		}
	}
	return checkTimes(fmt.Sprintf("schedule %q", s.Name), timeField{"CreatedAt", s.CreatedAt}, timeField{"UpdatedAt", s.UpdatedAt})
}

// ValidateSlot checks a slot before ClaimSlot or UpdateSlot stores it: a
// schedule, a due time, a known state and storable times. The token is
// checked by the fence itself (no leadership ever has a token below 1).
func ValidateSlot(s ScheduleSlot) error {
	if s.Schedule == "" {
		return fmt.Errorf("slot has an empty schedule: name the schedule it belongs to")
	}
	if s.Slot.IsZero() {
		return fmt.Errorf("slot of schedule %q has a zero due time: give its nominal due time", s.Schedule)
	}
	what := fmt.Sprintf("slot %s of schedule %q", s.Slot.UTC().Format(time.RFC3339Nano), s.Schedule)
	switch s.State {
	case SlotRunning, SlotSucceeded, SlotPartial, SlotFailed, SlotMissed:
	default:
		return fmt.Errorf("%s has state %q: use one of %q, %q, %q, %q, %q", what, s.State, SlotRunning, SlotSucceeded, SlotPartial, SlotFailed, SlotMissed)
	}
	return checkTimes(what, timeField{"Slot", s.Slot}, timeField{"ClaimedAt", s.ClaimedAt},
		timeField{"StartedAt", s.StartedAt}, timeField{"FinishedAt", s.FinishedAt})
}

// ValidateLeadershipRequest checks the arguments of AcquireLeadership.
func ValidateLeadershipRequest(role, holder string, ttl time.Duration, now time.Time) error {
	if role == "" {
		return fmt.Errorf("acquire leadership: empty role: name the role, e.g. %q", RoleScheduler)
	}
	if holder == "" {
		return fmt.Errorf("acquire leadership %q: empty holder: pass the daemon instance id", role)
	}
	if ttl <= 0 {
		return fmt.Errorf("acquire leadership %q: ttl %s is not positive", role, ttl)
	}
	if now.IsZero() {
		return fmt.Errorf("acquire leadership %q: now is the zero time: pass the daemon clock's current time", role)
	}
	if err := checkTime(now.Add(ttl)); err != nil {
		return fmt.Errorf("acquire leadership %q: now+ttl: %w", role, err)
	}
	return checkTime(now)
}

// ValidateFenceTime checks the now a fenced write is judged at.
func ValidateFenceTime(now time.Time) error {
	if now.IsZero() {
		return fmt.Errorf("now is the zero time: pass the daemon clock's current time (slot writes are fenced by the leadership at now)")
	}
	return checkTime(now)
}

// ValidateDaemon checks a daemon record before PutDaemon stores it.
func ValidateDaemon(d Daemon) error {
	if d.ID == "" {
		return fmt.Errorf("daemon has an empty id: use the instance id (host/pid/start)")
	}
	return checkTimes(fmt.Sprintf("daemon %q", d.ID), timeField{"StartedAt", d.StartedAt}, timeField{"SeenAt", d.SeenAt})
}

// ValidateNodeRegistration checks a registration before it is stored: a
// node name (the cluster may be "" when the agent does not know it).
func ValidateNodeRegistration(r NodeRegistration) error {
	if r.Node == "" {
		return fmt.Errorf("node registration (cluster %q) has an empty node name: the agent must name its node", r.Cluster)
	}
	return checkTimes(fmt.Sprintf("node registration %q/%q", r.Cluster, r.Node), timeField{"SeenAt", r.SeenAt})
}

// ValidateSlotLimit checks ListSlots's limit: 0 means every slot.
func ValidateSlotLimit(limit int) error {
	if limit < 0 {
		return fmt.Errorf("list slots: limit %d is negative: pass 0 for every slot", limit)
	}
	return nil
}

// CheckFence returns nil if token is the current, unexpired token of the
// scheduler leadership l at now (found: l was ever granted), else an error
// wrapping ErrConflict that says why. Every catalog judges slot writes with
// it, under a lock that keeps l from changing until the write commits.
func CheckFence(l Leadership, found bool, token int64, now time.Time) error {
	switch {
	case !found:
		return fmt.Errorf("fencing token %d: the %q leadership was never granted: %w", token, RoleScheduler, ErrConflict)
	case l.Holder == "":
		return fmt.Errorf("fencing token %d: the %q leadership was released (last token %d): %w", token, RoleScheduler, l.Token, ErrConflict)
	case l.Token != token:
		return fmt.Errorf("fencing token %d is stale: the %q leadership now carries token %d (daemon %q): %w", token, RoleScheduler, l.Token, l.Holder, ErrConflict)
	case !now.Before(l.ExpiresAt):
		return fmt.Errorf("fencing token %d: the %q leadership of daemon %q expired at %s: %w", token, RoleScheduler, l.Holder, l.ExpiresAt.UTC().Format(time.RFC3339Nano), ErrConflict)
	}
	return nil
}
