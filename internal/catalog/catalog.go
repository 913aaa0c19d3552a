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
