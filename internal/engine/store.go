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
