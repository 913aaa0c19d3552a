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

// Health is served by GET /v1/health without authentication.
type Health struct {
	Status       string `json:"status"` // "ok"
	AgentVersion string `json:"agent_version"`
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
}

// Workload is one workload definition with its probed state.
type Workload struct {
	Name       string    `json:"name"`
	Driver     string    `json:"driver"`
	State      string    `json:"state"` // StateActive, StateInactive, StateFailed, StateUnknown
	Paths      []string  `json:"paths"` // relative to the shared volume
	Error      string    `json:"error,omitempty"`
	ObservedAt time.Time `json:"observed_at"`
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
}

// Error is the body of every non-2xx response.
type Error struct {
	Code    string `json:"code"`    // machine-readable, e.g. "unauthorized", "not_found", "driver_failed"
	Message string `json:"message"` // what failed and what to do
}
