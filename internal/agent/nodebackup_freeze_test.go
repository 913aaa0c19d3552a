package agent

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// A node backup whose freeze fails half-way (the workload froze, then the
// command failed) thaws that workload before it answers, as a single
// backup does.
func TestNodeBackupThawsAWorkloadWhoseFreezeFailedHalfWay(t *testing.T) {
	e := newAgentEnv(t)
	dir, _ := initRepo(t, "pw")
	if err := os.MkdirAll(filepath.Join(e.volume, "apps", "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	w := fileWorkload("web")
	w.quiesce = "touch {{s}}/web.frozen; exit 1"
	path := e.config(t, e.repoBlock(t, "main", dir, "pw"), w)
	// The test's script workloads have no thaw line: add one.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	thaw := fmt.Sprintf("    thaw = [\"/bin/sh\", \"-c\", %q]\n", "rm -f "+filepath.Join(e.scratch, "web.frozen"))
	writeFile(t, path, strings.Replace(string(raw), "    quiesce = ", thaw+"    quiesce = ", 1))
	s := startServer(t, path, nil)
	if code, apiErr, _ := post(t, s.url+"/v1/workloads/web/start", ""); code != 200 {
		t.Fatalf("start: %d %+v", code, apiErr)
	}
	if code, apiErr, _ := post(t, s.url+"/v1/coordinator", `{"cluster":"c","epoch":1,"owner":"test"}`); code != 200 {
		t.Fatalf("claim: %d %+v", code, apiErr)
	}
	code, apiErr, raw2 := post(t, s.url+"/v1/node-backup", mustJSON(t, api.NodeBackupRequest{Epoch: 1, Repository: "main", Consistency: api.ConsistencyApplication,
		Workloads: []string{"web"}, Cluster: "c", Group: "g", RunID: "r"}))
	if code != http.StatusInternalServerError || !strings.Contains(apiErr.Message, "freeze web") {
		t.Fatalf("node backup with a failing freeze: %d %s, want 500 naming the freeze of web", code, raw2)
	}
	if _, err := os.Stat(filepath.Join(e.scratch, "web.frozen")); err == nil {
		t.Fatal("the workload whose freeze failed half-way was left frozen")
	}
}
