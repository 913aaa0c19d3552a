package engine

import (
	"context"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// Store is the engine's durable state. catalog/sqlite (embedded default) and
// catalog/postgres implement it; catalog/catalogtest is their shared suite.
type Store interface {
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
