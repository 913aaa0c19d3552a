package api

import "time"

// WorkloadOwner is a workload's ownership lease, read from its owner record
// on the shared volume (.clusterguard/owners/<workload>.json). The lease
// binds other nodes until ExpiresAt plus the reader's clock-skew margin,
// unless Released.
type WorkloadOwner struct {
	Node        string    `json:"node"`         // the node that holds or last held it
	Generation  uint64    `json:"generation"`   // grows with every claim
	HeartbeatAt time.Time `json:"heartbeat_at"` // last renewal, holder's clock
	ExpiresAt   time.Time `json:"expires_at"`   // heartbeat_at + the holder's expiry
	Released    bool      `json:"released"`     // given up by a stop: free at once
	// HeldHere is true when the reporting agent holds the lease and renews it.
	HeldHere bool `json:"held_here"`
}
