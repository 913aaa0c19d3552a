// Package api holds the wire types of the node agent's HTTP JSON API (/v1).
// The agent daemon serves them and the engine's agent client consumes them;
// neither side owns the other, so the types live here.
package api

import "time"

// Version is the API version prefix every endpoint lives under.
const Version = "v1"

// Workload states reported by drivers.
const (
	StateActive   = "active"
	StateInactive = "inactive"
	StateFailed   = "failed"
	StateUnknown  = "unknown"
)

// Health is served by GET /v1/health without authentication: liveness
// only, so an unauthenticated caller learns nothing about the agent.
type Health struct {
	Status string `json:"status"` // "ok"
}

// FailureCounters count operations that failed on this node since the agent started.
type FailureCounters struct {
	DriverErrors int64 `json:"driver_errors"` // driver commands that failed or timed out
	AuthFailures int64 `json:"auth_failures"` // requests refused for a bad token
	Total        int64 `json:"total"`         // all failed operations
}

// NodeFacts is served by GET /v1/node.
type NodeFacts struct {
	Name           string          `json:"name"`
	AgentVersion   string          `json:"agent_version"`
	CPUCount       int             `json:"cpu_count"`
	Load1          float64         `json:"load1"`
	MemFreeBytes   uint64          `json:"mem_free_bytes"`
	MemTotalBytes  uint64          `json:"mem_total_bytes"`
	UptimeSeconds  float64         `json:"uptime_seconds"`   // agent uptime
	SharedVolume   string          `json:"shared_volume"`    // absolute path as configured on this node
	SharedVolumeID string          `json:"shared_volume_id"` // identity stored on the volume itself (.clusterguard/volume-id)
	Failures       FailureCounters `json:"failures"`
	ObservedAt     time.Time       `json:"observed_at"`
	// Repositories the agent's config defines, sorted by name.
	Repositories []RepositoryFact `json:"repositories"`
}

// Workload is one workload definition with its probed state.
type Workload struct {
	Name       string    `json:"name"`
	Driver     string    `json:"driver"`
	State      string    `json:"state"` // StateActive, StateInactive, StateFailed, StateUnknown
	Paths      []string  `json:"paths"` // relative to the shared volume
	Error      string    `json:"error,omitempty"`
	ObservedAt time.Time `json:"observed_at"`
	// Owner is the workload's ownership lease as read from the shared
	// volume (nil when no node ever took it); OwnerConflict is set when the
	// workload is active here while another node holds a live lease.
	Owner         *WorkloadOwner `json:"owner,omitempty"`
	OwnerConflict string         `json:"owner_conflict,omitempty"`
	// Definition is the workload's definition without secrets, compared
	// with the one a recovery point recorded when a restore is planned.
	Definition *WorkloadDefinition `json:"definition,omitempty"`
}

// WorkloadList is served by GET /v1/workloads.
type WorkloadList struct {
	Node      string     `json:"node"`
	Workloads []Workload `json:"workloads"`
}

// ActionResult is returned by POST /v1/workloads/{name}/{start|stop|quiesce|thaw}.
type ActionResult struct {
	Workload   string    `json:"workload"`
	Action     string    `json:"action"`
	State      string    `json:"state"` // state probed after the action
	DurationMS int64     `json:"duration_ms"`
	FinishedAt time.Time `json:"finished_at"`
	// ThawBy, after a quiesce, is when the agent thaws the workload by itself.
	ThawBy *time.Time `json:"thaw_by,omitempty"`
}

// Error is the body of every non-2xx response.
type Error struct {
	Code    string `json:"code"`    // machine-readable, e.g. "unauthorized", "not_found", "driver_failed"
	Message string `json:"message"` // what failed and what to do
}

// Coordinator role (E3). The engine grants epochs from its catalog; an agent
// refuses any epoch lower than the highest it has seen or than the epoch in
// the marker on the shared volume (.clusterguard/coordinator.json), so two
// nodes never both act as coordinator.

// CoordinatorClaim is the body of POST /v1/coordinator.
type CoordinatorClaim struct {
	Cluster string `json:"cluster"`
	Epoch   int64  `json:"epoch"`
	Owner   string `json:"owner"` // engine instance, for diagnostics
}

// CoordinatorState is returned by POST and GET /v1/coordinator.
type CoordinatorState struct {
	Node        string    `json:"node"`         // this agent's node
	Epoch       int64     `json:"epoch"`        // epoch this node holds now; 0 when not coordinator
	HighestSeen int64     `json:"highest_seen"` // highest epoch this agent has ever seen
	MarkerNode  string    `json:"marker_node"`  // coordinator according to the shared-volume marker
	MarkerEpoch int64     `json:"marker_epoch"`
	ClaimedAt   time.Time `json:"claimed_at"`
}

// Repositories (H1). An agent opens only the repositories its own config
// defines (`repository "NAME" { url, password_file, ... }`); requests name
// one and carry no URL, credential or password, so whoever holds the token
// cannot make the agent read from or write to a repository of their own.
// RepositoryID, when set, is the repository's id as the engine knows it: the
// agent refuses a repository of that name whose id differs (a block pointing
// at another repository than the engine's).

// RepositoryFact is one repository an agent is configured for, in NodeFacts.
type RepositoryFact struct {
	Name string `json:"name"`
	ID   string `json:"id,omitempty"` // known once the agent has opened it
}

// Consistency modes of a backup.
const (
	ConsistencyApplication = "application" // driver quiesce/thaw around the copy (E4)
	ConsistencyCrash       = "crash"       // pause, checkpoint, resume at once (M6)
)

// BackupRequest is the body of POST /v1/workloads/{name}/backup.
type BackupRequest struct {
	Epoch        int64  `json:"epoch"`      // must be this node's current coordinator epoch
	Repository   string `json:"repository"` // a repository block of the agent's config
	RepositoryID string `json:"repository_id,omitempty"`
	Consistency  string `json:"consistency"`
	// StunTimeoutMS bounds quiesce/pause → release; the agent releases the
	// workload itself when it passes, whatever happens to the request.
	StunTimeoutMS int64             `json:"stun_timeout_ms"`
	Cluster       string            `json:"cluster"`
	Group         string            `json:"group"`
	RunID         string            `json:"run_id"`
	Tags          []string          `json:"tags,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// BackupResult is returned by POST /v1/workloads/{name}/backup.
type BackupResult struct {
	Workload    string    `json:"workload"`
	Node        string    `json:"node"`
	Epoch       int64     `json:"epoch"`
	SnapshotID  string    `json:"snapshot_id"`
	ParentID    string    `json:"parent_id,omitempty"`
	Consistency string    `json:"consistency"`
	Files       int64     `json:"files"`
	BytesRead   int64     `json:"bytes_read"`  // read from the point-in-time copy
	BytesAdded  int64     `json:"bytes_added"` // new data stored in the repository
	TotalBytes  int64     `json:"total_bytes"` // logical size of the recovery point
	StunMS      int64     `json:"stun_ms"`     // quiesce/pause → release
	CopyMS      int64     `json:"copy_ms"`     // point-in-time copy
	UploadMS    int64     `json:"upload_ms"`   // into the repository
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at"`

	// RepositoryID is the id of the repository written to; the engine
	// records the recovery point only when it is the registered one's.
	RepositoryID string `json:"repository_id"`

	// ViewMethod is how the point-in-time view was taken: "reflink",
	// "btrfs_snapshot" or "mirror" (changed files copied while frozen);
	// ViewNote says why auto fell back to the mirror.
	ViewMethod string `json:"view_method,omitempty"`
	ViewNote   string `json:"view_note,omitempty"`
	// Method is how the copy was taken when the driver has more than one
	// way: "online" (PostgreSQL's pg_backup_start/pg_backup_stop, nothing
	// frozen: StunMS is 0) or "freeze".
	Method string `json:"method,omitempty"`
	// Block backups (VM disks read through a point-in-time view):
	// Incremental says every disk was read only where its dirty bitmap
	// changed since the parent's checkpoint; ViewBytesRead counts the
	// bytes read from the view; Checkpoint is the bitmap generation the
	// recovery point covers; FullReason says why a disk was read whole.
	Incremental   bool   `json:"incremental,omitempty"`
	ViewBytesRead int64  `json:"view_bytes_read,omitempty"`
	Checkpoint    string `json:"checkpoint,omitempty"`
	FullReason    string `json:"full_reason,omitempty"`
}

// Integrity inspection before a restore writes anything (M8).
const (
	VerifyNone     = "none"     // restore straight away; chunks are still authenticated as they are read
	VerifyMetadata = "metadata" // the recovery point, its tree and the requested files exist
	VerifyFull     = "full"     // every chunk the restore needs is read and authenticated first
)

// RestoreRequest is the body of POST /v1/workloads/{name}/restore.
type RestoreRequest struct {
	Epoch        int64  `json:"epoch"` // must be this node's current coordinator epoch
	OperationID  string `json:"operation_id"`
	Repository   string `json:"repository"` // a repository block of the agent's config
	RepositoryID string `json:"repository_id,omitempty"`
	SnapshotID   string `json:"snapshot_id"`
	Verify       string `json:"verify"`
	// Files, when set, restores only these paths (as stored in the recovery
	// point, relative to the shared volume); empty restores the workload's
	// paths in place, replacing them atomically.
	Files []string `json:"files,omitempty"`
	// Destination, with Files, is a directory relative to the shared volume
	// the files are written under (keeping their relative paths); empty
	// means in place.
	Destination string `json:"destination,omitempty"`
	// InspectOnly runs the integrity inspection and writes nothing: the
	// engine asks for it before it stops a running workload, so a damaged
	// recovery point costs no downtime. It needs no coordinator epoch.
	InspectOnly bool `json:"inspect_only,omitempty"`
	// KeepSetuid keeps the setuid and setgid bits of restored files; by
	// default they are dropped, so a recovery point cannot hand out
	// privileges (a setuid-root binary) on the node.
	KeepSetuid bool `json:"keep_setuid,omitempty"`

	// Cluster, when set, must be the cluster the recovery point was taken
	// in: the agent refuses another cluster's recovery point (and any
	// workload's but the one restored).
	Cluster string `json:"cluster,omitempty"`
}

// RestoreResult is returned by POST /v1/workloads/{name}/restore.
type RestoreResult struct {
	Workload     string    `json:"workload"`
	Node         string    `json:"node"`
	Epoch        int64     `json:"epoch"`
	SnapshotID   string    `json:"snapshot_id"`
	Files        int64     `json:"files"`
	BytesWritten int64     `json:"bytes_written"`
	VerifyMS     int64     `json:"verify_ms"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at"`

	// RepositoryID is the id of the repository read from.
	RepositoryID string `json:"repository_id"`
}

// Drivers are the workload drivers agents know.
var Drivers = []string{"exec", "postgresql", "qemu"}

// LabelWorkloads is the snapshot label of a node view: the comma-separated
// workloads it was taken for.
const LabelWorkloads = "workloads"

// LabelPathsPrefix + a workload's name is the snapshot label of a node view
// holding that workload's data paths (relative to the shared volume, ':'
// separated), so its files can be told from the other workloads' files.
const LabelPathsPrefix = "paths."

// NodeBackupRequest is the body of POST /v1/node-backup: one point-in-time
// copy of the node's whole view of the shared volume, taken with every
// listed workload frozen, stored once (a protection group with
// extract_at = "restore", E6). A workload's files are extracted from it at
// restore time.
type NodeBackupRequest struct {
	Epoch         int64             `json:"epoch"`
	Repository    string            `json:"repository"` // a repository block of the agent's config
	RepositoryID  string            `json:"repository_id,omitempty"`
	Consistency   string            `json:"consistency"`
	StunTimeoutMS int64             `json:"stun_timeout_ms"`
	Workloads     []string          `json:"workloads"` // active on this node; frozen for the copy
	Cluster       string            `json:"cluster"`
	Group         string            `json:"group"`
	RunID         string            `json:"run_id"`
	Tags          []string          `json:"tags,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// NodeBackupResult is returned by POST /v1/node-backup.
type NodeBackupResult struct {
	Node       string           `json:"node"`
	Epoch      int64            `json:"epoch"`
	SnapshotID string           `json:"snapshot_id"`
	TotalBytes int64            `json:"total_bytes"`
	BytesAdded int64            `json:"bytes_added"`
	StunMS     map[string]int64 `json:"stun_ms"` // per workload
	StartedAt  time.Time        `json:"started_at"`
	FinishedAt time.Time        `json:"finished_at"`

	// RepositoryID is the id of the repository written to (as in BackupResult).
	RepositoryID string `json:"repository_id"`
}
