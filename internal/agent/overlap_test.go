package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two workloads on the same or nested paths would overwrite each other's
// backups and restores: refused at load, naming both workloads' lines.
func TestConfigRefusesOverlappingWorkloadPaths(t *testing.T) {
	second := func(paths string) string {
		return "workload \"db\" {\n  driver = \"exec\"\n  paths  = " + paths + "\n  exec { status = [\"/bin/true\"] }\n}\n"
	}
	for _, tc := range []struct {
		name, paths string
		overlap     bool
	}{
		{"same path", `["apps/web"]`, true},
		{"same path with a trailing slash", `["apps/web/"]`, true},
		{"same path through ..", `["apps/other/../web"]`, true},
		{"nested below", `["apps/web/db"]`, true},
		{"nested above", `["apps"]`, true},
		{"one of several", `["db/data", "apps/web-logs/x"]`, true},
		{"same path through a symlink", `["apps/link"]`, true},
		{"a sibling with a common prefix", `["apps/web2"]`, false},
		{"a sibling", `["db/data"]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newConfigEnv(t)
			if err := os.Symlink("web", filepath.Join(e.volume, "apps", "link")); err != nil {
				t.Fatal(err)
			}
			_, err := ParseConfig("agent.hcl", []byte(e.render(validConfig+second(tc.paths))))
			if !tc.overlap {
				if err != nil {
					t.Fatalf("paths %s refused: %v", tc.paths, err)
				}
				return
			}
			// The web workload is defined at line 8, db at line 20.
			if err == nil || !strings.Contains(err.Error(), "Overlapping workload paths") ||
				!strings.Contains(err.Error(), "agent.hcl:20:") || !strings.Contains(err.Error(), `workload "web" (agent.hcl:8)`) {
				t.Fatalf("paths %s: %v; want a refusal at agent.hcl:20 naming web at agent.hcl:8", tc.paths, err)
			}
		})
	}
}
