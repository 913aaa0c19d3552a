package engine

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

func names(nodes []catalog.Node) string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return strings.Join(out, ",")
}

func compileOrNil(t *testing.T, expr string) *regexp.Regexp {
	t.Helper()
	if expr == "" {
		return nil
	}
	return regexp.MustCompile(expr)
}

func wl(name, state string) api.Workload {
	return api.Workload{Name: name, Driver: "exec", State: state, Paths: []string{"apps/" + name}, ObservedAt: time.Unix(100, 0)}
}

func TestMergeDigest(t *testing.T) {
	t.Parallel()
	st := ClusterStatus{Cluster: catalog.Cluster{Name: "c"}, Nodes: []NodeStatus{
		{Name: "n1", Workloads: []api.Workload{wl("web", api.StateActive), wl("db", api.StateActive), wl("cache", api.StateInactive), wl("batch", api.StateFailed)}},
		{Name: "n2", Workloads: []api.Workload{wl("web", api.StateInactive), wl("db", api.StateActive), wl("cache", api.StateInactive), wl("batch", api.StateInactive)}},
	}}
	d := mergeDigest(st)
	got := map[string]DigestEntry{}
	for _, w := range d.Workloads {
		got[w.Name] = w
	}
	if w := got["web"]; w.State != api.StateActive || w.Node != "n1" {
		t.Errorf("web = %+v, want active on n1", w)
	}
	if w := got["db"]; w.State != StateConflict || w.Node != "" || strings.Join(w.Nodes, ",") != "n1,n2" || w.Error == "" {
		t.Errorf("db = %+v, want conflict on n1,n2 with an explanation", w)
	}
	if w := got["cache"]; w.State != api.StateInactive {
		t.Errorf("cache = %+v, want inactive", w)
	}
	if w := got["batch"]; w.State != api.StateFailed {
		t.Errorf("batch = %+v, want failed", w)
	}
	if d.Workloads[0].Name != "batch" {
		t.Errorf("digest not sorted by name: first is %s", d.Workloads[0].Name)
	}
}

func TestMergeDigestUnreachableNode(t *testing.T) {
	t.Parallel()
	down := &NodeError{Node: "n2", Endpoint: "http://127.0.0.1:1", Problem: ProblemUnreachable, Detail: "no answer", Err: errors.New("refused")}
	st := ClusterStatus{Cluster: catalog.Cluster{Name: "c"}, Nodes: []NodeStatus{
		{Name: "n1", Workloads: []api.Workload{wl("web", api.StateActive), wl("db", api.StateInactive)}},
		{Name: "n2", Err: down, Problem: ProblemUnreachable},
	}}
	d := mergeDigest(st)
	if len(d.Unreachable) != 1 || d.Unreachable[0].Node != "n2" {
		t.Fatalf("unreachable = %v, want n2", d.Unreachable)
	}
	for _, w := range d.Workloads {
		switch w.Name {
		case "web":
			if w.State != api.StateActive {
				t.Errorf("web = %s, want active (seen on a reachable node)", w.State)
			}
		case "db":
			if w.State != api.StateUnknown {
				t.Errorf("db = %s, want unknown (may be active on the unreachable node)", w.State)
			}
		}
	}
}

func TestDigestFilter(t *testing.T) {
	t.Parallel()
	entries := []DigestEntry{
		{Name: "web", Node: "n1", Nodes: []string{"n1"}, State: api.StateActive, Driver: "exec"},
		{Name: "db", Nodes: []string{"n1", "n2"}, State: StateConflict, Driver: "postgresql"},
		{Name: "vm", Nodes: []string{}, State: api.StateInactive, Driver: "qemu"},
	}
	cases := []struct {
		f    DigestFilter
		want string
	}{
		{DigestFilter{}, "web,db,vm"},
		{DigestFilter{Node: "n2"}, "db"},
		{DigestFilter{Node: "n1"}, "web,db"},
		{DigestFilter{State: api.StateInactive}, "vm"},
		{DigestFilter{Driver: "qemu"}, "vm"},
		{DigestFilter{Driver: "exec", State: api.StateActive}, "web"},
		{DigestFilter{NameRegex: "^(web|vm)$"}, "web,vm"},
	}
	for _, tc := range cases {
		var re = compileOrNil(t, tc.f.NameRegex)
		var got []string
		for _, e := range entries {
			if tc.f.matches(e, re) {
				got = append(got, e.Name)
			}
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("filter %+v = %v, want %s", tc.f, got, tc.want)
		}
	}
}
