package sqlstore

// Placeholder until the in-memory schedule store lands; every method fails.

import (
	"context"
	"errors"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

var errSchedulesPending = errors.New("catalog: schedules are not implemented yet")

func (s *Store) PutSchedule(context.Context, catalog.Schedule) error { return errSchedulesPending }
func (s *Store) GetSchedule(context.Context, string) (catalog.Schedule, error) {
	return catalog.Schedule{}, errSchedulesPending
}
func (s *Store) ListSchedules(context.Context, string) ([]catalog.Schedule, error) {
	return nil, errSchedulesPending
}
func (s *Store) DeleteSchedule(context.Context, string) error { return errSchedulesPending }
func (s *Store) ClaimSlot(context.Context, catalog.ScheduleSlot, time.Time) error {
	return errSchedulesPending
}
func (s *Store) UpdateSlot(context.Context, catalog.ScheduleSlot, time.Time) error {
	return errSchedulesPending
}
func (s *Store) GetSlot(context.Context, string, time.Time) (catalog.ScheduleSlot, error) {
	return catalog.ScheduleSlot{}, errSchedulesPending
}
func (s *Store) ListSlots(context.Context, string, int) ([]catalog.ScheduleSlot, error) {
	return nil, errSchedulesPending
}
func (s *Store) RunningSlots(context.Context) ([]catalog.ScheduleSlot, error) {
	return nil, errSchedulesPending
}
func (s *Store) AcquireLeadership(context.Context, string, string, time.Duration, time.Time) (catalog.Leadership, error) {
	return catalog.Leadership{}, errSchedulesPending
}
func (s *Store) ReleaseLeadership(context.Context, string, int64) error { return errSchedulesPending }
func (s *Store) GetLeadership(context.Context, string) (catalog.Leadership, error) {
	return catalog.Leadership{}, errSchedulesPending
}
func (s *Store) PutDaemon(context.Context, catalog.Daemon) error { return errSchedulesPending }
func (s *Store) ListDaemons(context.Context) ([]catalog.Daemon, error) {
	return nil, errSchedulesPending
}
func (s *Store) DeleteDaemon(context.Context, string) error { return errSchedulesPending }
func (s *Store) PutNodeRegistration(context.Context, catalog.NodeRegistration) error {
	return errSchedulesPending
}
func (s *Store) ListNodeRegistrations(context.Context, string) ([]catalog.NodeRegistration, error) {
	return nil, errSchedulesPending
}
