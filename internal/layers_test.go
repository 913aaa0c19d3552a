package internal_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/clusterguard/terraform-provider-clusterguard/internal/"

// forbidden lists, per layer, the layers it must not import. Layering:
// provider → engine → {catalog, repository, agent client}; storage and
// agent code never reach up; test harnesses stay in tests.
var forbidden = map[string][]string{
	"engine":       {"provider"},
	"catalog":      {"provider", "engine", "repository", "agent"},
	"repository":   {"provider", "engine", "catalog", "agent"},
	"agent":        {"provider", "engine", "catalog"},
	"testworkload": {"provider", "engine", "catalog", "repository", "agent"},
}

var testOnly = []string{"agent/agenttest", "catalog/catalogtest", "repository/backendtest", "agent/drivertest", "testutil"}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "github.com/clusterguard/terraform-provider-clusterguard/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		layer := strings.SplitN(pkg, "/", 2)[0]
		if pkg == "agent/api" {
			layer = "api"
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			checked++
			for _, bad := range forbidden[layer] {
				if dep == bad || strings.HasPrefix(dep, bad+"/") {
					t.Errorf("%s imports %s: layer %q must not import %q", pkg, dep, layer, bad)
				}
			}
			if layer == "api" {
				t.Errorf("agent/api imports %s: the wire types must stand alone", dep)
			}
			for _, h := range testOnly {
				if (dep == h || strings.HasPrefix(dep, h+"/")) && !strings.HasPrefix(pkg, h) {
					t.Errorf("%s (non-test code) imports the test harness %s", pkg, dep)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no internal imports seen: go list output not understood")
	}
}
