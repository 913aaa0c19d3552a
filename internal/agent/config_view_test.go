package agent

import (
	"strings"
	"testing"
)

func TestParseConfigSnapshotMethod(t *testing.T) {
	e := newConfigEnv(t)
	conf := func(method string) string {
		line := ""
		if method != "" {
			line = "  snapshot_method = \"" + method + "\"\n"
		}
		return e.render(`node = "n2"
listen = "127.0.0.1:7420"
shared_volume = "{{volume}}"
token_file = "{{token}}"

workload "db" {
  driver = "postgresql"
  paths  = ["db/data"]
` + line + `  postgresql { port = 5433 }
}
`)
	}
	for method, want := range map[string]string{"": SnapshotAuto, "reflink": SnapshotReflink, "btrfs_snapshot": SnapshotBtrfs, "mirror": SnapshotMirror, "auto": SnapshotAuto} {
		cfg, err := ParseConfig("agent.hcl", []byte(conf(method)))
		if err != nil {
			t.Fatalf("snapshot_method %q: %v", method, err)
		}
		if got := cfg.Workloads[0].SnapshotMethod; got != want {
			t.Errorf("snapshot_method %q parsed as %q, want %q", method, got, want)
		}
	}
	_, err := ParseConfig("agent.hcl", []byte(conf("zfs")))
	if err == nil || !strings.Contains(err.Error(), "Unknown snapshot_method") || !strings.Contains(err.Error(), "auto, reflink, btrfs_snapshot, mirror") {
		t.Errorf("snapshot_method \"zfs\": %v, want an error listing the methods", err)
	}
}
