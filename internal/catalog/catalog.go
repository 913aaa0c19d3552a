package catalog

import (
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) when a record does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned (wrapped) when a write loses to a concurrent one
// (for example a lease held by another holder, or a stale fencing epoch).
var ErrConflict = errors.New("conflict")

// Cluster is a registered cluster of nodes sharing one volume.
type Cluster struct {
	Name           string
	SharedVolume   string // path of the shared volume as the agents mount it
	SharedVolumeID string // identity read from the volume at registration
	MasterPolicy   string // fixed, random, most_free_resources, lowest_failure_rate
	MasterNode     string // only with MasterPolicy == "fixed"
	JoinOrder      string // sequential, parallel
	Nodes          []Node // in the order the user listed them
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Node is one member of a cluster.
type Node struct {
	Name     string
	Endpoint string // base URL of the agent, e.g. https://10.0.0.5:7420
	Position int    // join order, 0-based
}

// Lease is the coordinating-node role for a cluster's shared volume (E3).
// Epoch increases by one on every grant and never goes back, so an agent can
// refuse work carrying an epoch lower than the highest it has seen.
type Lease struct {
	Cluster   string
	Holder    string // node name holding the coordinator role
	Owner     string // engine instance that granted it (for diagnostics)
	Epoch     int64
	ExpiresAt time.Time
}

// Repository is a registered backup repository. Secrets are kept so the
// engine (and its scheduler) can hand them to agents; the catalog file is
// private to its owner (0600) and secrets are never logged.
type Repository struct {
	Name            string
	URL             string // directory path or s3://bucket/prefix
	Endpoint        string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	PathStyle       bool
	Insecure        bool
	Password        string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Selector chooses workloads of a cluster by attributes.
type Selector struct {
	NameRegex string
	Driver    string
	Node      string
}

// Retention says which recovery points a group keeps.
type Retention struct {
	KeepLast, KeepHourly, KeepDaily, KeepWeekly, KeepMonthly, KeepYearly int
	KeepWithin                                                           time.Duration
}

// ProtectionGroup is a set of workloads backed up together with one policy.
type ProtectionGroup struct {
	Name              string
	Cluster           string
	Repository        string
	Workloads         []string  // explicit selection
	Selector          *Selector // attribute selection; nil when none
	Exclude           []string
	Consistency       string // application, crash
	NodeOrder         string
	CriticalWorkloads []string
	ExtractAt         string // backup, restore
	Retention         Retention
	RPO               time.Duration // 0 means none
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Run states.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunPartial   = "partial"
	RunFailed    = "failed"
)

// Run is one federated backup of a protection group.
type Run struct {
	ID         string
	Group      string
	Cluster    string
	Master     string   // master node, or "engine"
	NodeOrder  []string // nodes in the order visited
	Expected   []string // workloads expected (E8's first list)
	Status     string
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time // zero while running
	// Owner is the engine instance carrying the run out and HeartbeatAt the
	// last time it said it still does (refreshed while running), so a run
	// whose engine died can be told from a long one (engine.AbandonedAfter).
	// "" and zero for runs recorded before owners were kept.
	Owner       string
	HeartbeatAt time.Time
}

// Step outcomes.
const (
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepSkipped   = "skipped"
)

// Step is one workload backed up (or attempted) on one node within a run.
type Step struct {
	RunID      string
	Seq        int    // order within the run, from 1
	Phase      string // "node" (visited in order) or "verify" (E8 catch-up)
	Node       string
	Epoch      int64
	Workload   string
	SnapshotID string
	Bytes      int64 // logical size of the recovery point
	BytesAdded int64
	StunMS     int64
	// Block backups (VM disks): Incremental when only the changed extents
	// were read; BytesRead from the point-in-time view; Checkpoint, the
	// dirty-bitmap generation the recovery point covers.
	Incremental bool
	BytesRead   int64
	Checkpoint  string
	Outcome     string
	Error       string
	StartedAt   time.Time
	FinishedAt  time.Time
}

// RecoveryPoint indexes one snapshot in a repository.
type RecoveryPoint struct {
	ID          string // snapshot id
	Repository  string
	Cluster     string
	Group       string
	Workload    string
	Node        string // informational: a recovery point restores to any node (E10)
	RunID       string
	Consistency string
	Size        int64
	CreatedAt   time.Time
}

// RecoveryPointFilter selects recovery points; empty fields match all.
type RecoveryPointFilter struct {
	Cluster, Group, Workload, Repository string
	From, To                             time.Time // zero means open
}

// Restore operation states.
const (
	RestoreRunning   = "running"
	RestoreSucceeded = "succeeded"
	RestoreFailed    = "failed"
)

// RestoreOperation is one restore job run (E11-E16, M8, M9). It is written
// before any work starts, keyed by a hash of what was asked, so a provider
// killed mid-restore finds and resumes (or reports) it instead of starting
// a second restore.
type RestoreOperation struct {
	ID         string
	Key        string // hash of the request; FindRestoreByKey looks it up
	Cluster    string
	Repository string
	Spec       string // the resolved request, JSON (engine-defined)
	Status     string
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time // zero while running
	// Owner and HeartbeatAt: as for Run.
	Owner       string
	HeartbeatAt time.Time
}

// RestoreStep is the restore of one workload within an operation, in order.
type RestoreStep struct {
	OperationID   string
	Seq           int // 1-based, the order of the sequence (E15)
	Workload      string
	SnapshotID    string
	Node          string // restore node (coordinator of this step)
	Epoch         int64
	DeactivatedOn string // node where a copy was stopped first ("" if none)
	Migrated      bool   // the copy was migrated (stopped there, started here)
	Activated     bool
	BytesWritten  int64
	Outcome       string // StepSucceeded, StepFailed, StepSkipped
	Error         string
	StartedAt     time.Time
	FinishedAt    time.Time
}
