package client

// IsLeaseHeld reports a start refused because another node holds the
// workload's ownership lease; the message names the node and the expiry.
func IsLeaseHeld(err error) bool { return hasCode(err, "lease_held") }
