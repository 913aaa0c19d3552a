package engine

import (
	"context"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// Store is the engine's durable state. catalog/sqlite (embedded default),
// catalog/memstore and catalog/postgres implement it; catalog/catalogtest is
// their shared suite.
type Store interface {
	ClusterStore
	LeaseStore
	BackupStore
	RestoreStore
	ScheduleStore
	OwnerStore
}

// ScheduleStore holds backup schedules, their slots, daemon leadership and
// liveness, and agent registrations. Slot writes are fenced: ClaimSlot and
// UpdateSlot succeed only while s.Token is the current, unexpired token of
// the "scheduler" leadership at now (else ErrConflict), so a daemon that lost
// leadership cannot record anything.
type ScheduleStore interface {
	PutSchedule(ctx context.Context, s catalog.Schedule) error // insert or replace by name
	GetSchedule(ctx context.Context, name string) (catalog.Schedule, error)
	ListSchedules(ctx context.Context, group string) ([]catalog.Schedule, error) // "" lists all, by name
	DeleteSchedule(ctx context.Context, name string) error                       // with its slots; ErrNotFound if absent

	// ClaimSlot inserts the slot (ErrConflict if (Schedule, Slot) exists or
	// the token is not the current leadership token).
	ClaimSlot(ctx context.Context, s catalog.ScheduleSlot, now time.Time) error
	// UpdateSlot replaces State, Daemon, Token, RunID, Reason, StartedAt and
	// FinishedAt of an existing slot (ErrNotFound; ErrConflict as ClaimSlot).
	UpdateSlot(ctx context.Context, s catalog.ScheduleSlot, now time.Time) error
	GetSlot(ctx context.Context, schedule string, slot time.Time) (catalog.ScheduleSlot, error)
	// ListSlots returns a schedule's slots, newest first, at most limit (0: all).
	ListSlots(ctx context.Context, schedule string, limit int) ([]catalog.ScheduleSlot, error)
	// RunningSlots returns every slot in SlotRunning state, of all schedules.
	RunningSlots(ctx context.Context) ([]catalog.ScheduleSlot, error)

	// AcquireLeadership grants role to holder (a new token) if it is free or
	// expired at now, renews it (same token) if holder already holds it, and
	// returns ErrConflict if another holder's lease is unexpired.
	AcquireLeadership(ctx context.Context, role, holder string, ttl time.Duration, now time.Time) (catalog.Leadership, error)
	// ReleaseLeadership ends the role if token is still current (no error otherwise).
	ReleaseLeadership(ctx context.Context, role string, token int64) error
	GetLeadership(ctx context.Context, role string) (catalog.Leadership, error) // ErrNotFound if never held

	PutDaemon(ctx context.Context, d catalog.Daemon) error     // insert or replace by ID (heartbeat)
	ListDaemons(ctx context.Context) ([]catalog.Daemon, error) // most recently seen first
	DeleteDaemon(ctx context.Context, id string) error

	PutNodeRegistration(ctx context.Context, r catalog.NodeRegistration) error                     // insert or replace by (Cluster, Node)
	ListNodeRegistrations(ctx context.Context, cluster string) ([]catalog.NodeRegistration, error) // "" lists all
}

// RestoreStore holds restore operations and their steps.
type RestoreStore interface {
	// CreateRestore inserts an operation (ErrConflict if the id exists).
	CreateRestore(ctx context.Context, op catalog.RestoreOperation) error
	// UpdateRestore replaces status, error and finished time.
	UpdateRestore(ctx context.Context, op catalog.RestoreOperation) error
	GetRestore(ctx context.Context, id string) (catalog.RestoreOperation, error)
	// FindRestoreByKey returns the newest operation with key (ErrNotFound if none).
	FindRestoreByKey(ctx context.Context, key string) (catalog.RestoreOperation, error)
	// ListRestores returns the operations on cluster, newest first, at most
	// limit (0: all).
	ListRestores(ctx context.Context, cluster string, limit int) ([]catalog.RestoreOperation, error)
	DeleteRestore(ctx context.Context, id string) error // with its steps
	// PutRestoreStep inserts or replaces the step (operation, seq).
	PutRestoreStep(ctx context.Context, s catalog.RestoreStep) error
	RestoreSteps(ctx context.Context, operationID string) ([]catalog.RestoreStep, error) // by Seq
}

// ClusterStore holds clusters and coordinator leases.
type ClusterStore interface {
	PutCluster(ctx context.Context, c catalog.Cluster) error // insert or replace by name
	GetCluster(ctx context.Context, name string) (catalog.Cluster, error)
	ListClusters(ctx context.Context) ([]catalog.Cluster, error)
	DeleteCluster(ctx context.Context, name string) error // ErrNotFound if absent

	// AcquireLease grants the coordinator role for cluster to holder with the
	// next epoch if no unexpired lease is held by another holder; otherwise it
	// returns ErrConflict. ReleaseLease ends it if epoch still matches.
	AcquireLease(ctx context.Context, cluster, holder, owner string, ttl time.Duration, now time.Time) (catalog.Lease, error)
	ReleaseLease(ctx context.Context, cluster string, epoch int64) error
	Close() error
}

// BackupStore holds repositories, protection groups, runs and the
// recovery-point index.
type BackupStore interface {
	PutRepository(ctx context.Context, r catalog.Repository) error
	GetRepository(ctx context.Context, name string) (catalog.Repository, error)
	DeleteRepository(ctx context.Context, name string) error

	PutGroup(ctx context.Context, g catalog.ProtectionGroup) error
	GetGroup(ctx context.Context, name string) (catalog.ProtectionGroup, error)
	ListGroups(ctx context.Context, cluster string) ([]catalog.ProtectionGroup, error) // "" lists all
	DeleteGroup(ctx context.Context, name string) error

	// CreateRun inserts a run (ErrConflict if the id exists); UpdateRun
	// replaces its mutable fields (status, error, finished, node order) and
	// refuses (ErrConflict) to change a run that already finished.
	CreateRun(ctx context.Context, r catalog.Run) error
	UpdateRun(ctx context.Context, r catalog.Run) error
	GetRun(ctx context.Context, id string) (catalog.Run, error)
	ListRuns(ctx context.Context, group string, limit int) ([]catalog.Run, error) // newest first
	DeleteRun(ctx context.Context, id string) error                               // with its steps
	AddStep(ctx context.Context, s catalog.Step) error
	Steps(ctx context.Context, runID string) ([]catalog.Step, error) // by Seq

	PutRecoveryPoint(ctx context.Context, p catalog.RecoveryPoint) error
	RecoveryPoints(ctx context.Context, f catalog.RecoveryPointFilter) ([]catalog.RecoveryPoint, error) // newest first
	DeleteRecoveryPoint(ctx context.Context, id string) error
}
