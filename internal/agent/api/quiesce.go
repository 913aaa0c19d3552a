package api

// QuiesceRequest is the optional body of POST /v1/workloads/{name}/quiesce.
// The agent thaws the workload by itself when MaxHoldMS passes without a
// thaw, so a caller that dies cannot leave it frozen; 0 means the agent's
// default (two minutes).
type QuiesceRequest struct {
	MaxHoldMS int64 `json:"max_hold_ms,omitempty"`
}
