package engine

import (
	"strings"
	"testing"
)

func validSpec() ClusterSpec {
	return ClusterSpec{
		Name: "prod", SharedVolume: "/srv/shared",
		Nodes:        map[string]string{"a": "http://127.0.0.1:7001", "b": "http://127.0.0.1:7002"},
		MasterPolicy: MasterRandom, JoinOrder: JoinSequential,
	}
}

func TestValidateClusterSpec(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mutate func(*ClusterSpec)
		want   string // substring of the error; empty means valid
	}{
		{"valid", func(*ClusterSpec) {}, ""},
		{"empty name", func(s *ClusterSpec) { s.Name = "" }, "name: must not be empty"},
		{"relative volume", func(s *ClusterSpec) { s.SharedVolume = "srv" }, "absolute path"},
		{"no nodes", func(s *ClusterSpec) { s.Nodes = nil }, "at least one node"},
		{"bad endpoint", func(s *ClusterSpec) { s.Nodes["a"] = "ftp://x:1" }, `nodes["a"]`},
		{"duplicate endpoint", func(s *ClusterSpec) { s.Nodes["b"] = "HTTP://127.0.0.1:7001/" }, "also used by node"},
		{"unknown policy", func(s *ClusterSpec) { s.MasterPolicy = "oldest" }, "not a master policy"},
		{"fixed without node", func(s *ClusterSpec) { s.MasterPolicy = MasterFixed }, "needs master_node"},
		{"fixed not a node", func(s *ClusterSpec) { s.MasterPolicy, s.MasterNode = MasterFixed, "z" }, `"z" is not one of the nodes`},
		{"fixed ok", func(s *ClusterSpec) { s.MasterPolicy, s.MasterNode = MasterFixed, "b" }, ""},
		{"master node without fixed", func(s *ClusterSpec) { s.MasterNode = "a" }, "only used with"},
		{"bad join order", func(s *ClusterSpec) { s.JoinOrder = "rolling" }, "not a join order"},
		{"join sequence missing", func(s *ClusterSpec) { s.JoinSequence = []string{"a"} }, "missing b"},
		{"join sequence unknown", func(s *ClusterSpec) { s.JoinSequence = []string{"a", "c"} }, `"c" is not one of`},
		{"join sequence ok", func(s *ClusterSpec) { s.JoinSequence = []string{"b", "a"} }, ""},
		{"bad node name", func(s *ClusterSpec) { s.Nodes["bad name"] = "http://127.0.0.1:7003" }, "not a valid name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := validSpec()
			tc.mutate(&s)
			err := ValidateClusterSpec(s)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not contain %q", err, tc.want)
			}
			verrs, rest := ValidationErrors(err)
			if len(verrs) == 0 || len(rest) != 0 {
				t.Fatalf("want only ValidationErrors, got %d validation and %v other", len(verrs), rest)
			}
		})
	}
}

func TestJoinedNodesOrder(t *testing.T) {
	t.Parallel()
	s := validSpec()
	s.Nodes["c"] = "http://127.0.0.1:7003"
	if got := names(s.joinedNodes()); got != "a,b,c" {
		t.Fatalf("default order = %s, want sorted a,b,c", got)
	}
	s.JoinSequence = []string{"c", "a", "b"}
	if got := names(s.joinedNodes()); got != "c,a,b" {
		t.Fatalf("sequence order = %s, want c,a,b", got)
	}
}
