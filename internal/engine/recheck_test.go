package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// assume_down is honoured only when an answering node could read the
// workload's owner record and it binds no one: a lease still binding, or no
// answering node that defines the workload, keeps the node "unknown".
func TestLocateHonoursAssumeDownOnlyWithEvidence(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	down := NodeStatus{Name: "node-2", Reachable: false, Err: &NodeError{Node: "node-2", Endpoint: "https://node-2:7420", Detail: "the agent did not answer", Err: errors.New("connection refused")}}
	status := func(workloads ...api.Workload) ClusterStatus {
		return ClusterStatus{Nodes: []NodeStatus{{Name: "node-1", Reachable: true, Workloads: workloads}, down}}
	}
	lease := func(expires time.Time, released bool) *api.WorkloadOwner {
		return &api.WorkloadOwner{Node: "node-2", Generation: 3, HeartbeatAt: expires.Add(-10 * time.Second), ExpiresAt: expires, Released: released}
	}
	web := func(o *api.WorkloadOwner) api.Workload {
		return api.Workload{Name: "web", State: api.StateInactive, Owner: o}
	}
	for _, c := range []struct {
		name   string
		status ClusterStatus
		want   string // "" = honoured
	}{
		{"no record", status(web(nil)), ""},
		{"released lease", status(web(lease(now.Add(time.Minute), true))), ""},
		{"expired past the margin", status(web(lease(now.Add(-3*time.Second), false))), ""},
		{"expired within the margin", status(web(lease(now.Add(-time.Second), false))), "honoured only after"},
		{"live lease", status(web(lease(now.Add(5*time.Second), false))), "honoured only after"},
		{"no answering node defines web", status(api.Workload{Name: "db", State: api.StateActive}), "no node that answers defines"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, u := locate(c.status, mergeDigest(c.status), "web", []string{"node-2"}, now)
			switch {
			case c.want == "" && u != nil:
				t.Fatalf("assume_down not honoured: %v", u)
			case c.want != "" && (u == nil || !strings.Contains(u.Error(), c.want)):
				t.Fatalf("got %v, want a refusal saying %q", u, c.want)
			}
		})
	}
}
