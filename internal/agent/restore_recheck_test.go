package agent

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// An in-place restore checks, when accepted, that the workload is stopped
// here and not leased elsewhere; the workload may be started during the
// download. Right before the swap it is checked again, under the
// workload's lock: a restore whose workload was started meanwhile, here or
// on another node, is refused and the data is left as it was.
func TestInPlaceRestoreRefusedWhenTheWorkloadStartsDuringTheDownload(t *testing.T) {
	e := newAgentEnv(t)
	repoDir, _ := initRepo(t, "pw")
	s := startServer(t, e.config(t, e.repoBlock(t, "main", repoDir, "pw"), fileWorkload("web")), nil)
	data := filepath.Join(e.volume, "apps/web/data.txt")
	write(t, data, "old")
	if code := call(t, nil, "POST", s.url+"/v1/workloads/web/start", testToken, nil); code != http.StatusOK {
		t.Fatalf("start = %d", code)
	}
	var state api.CoordinatorState
	if code := postJSON(t, s.url+"/v1/coordinator", api.CoordinatorClaim{Cluster: "c", Epoch: 1, Owner: "test"}, &state); code != http.StatusOK {
		t.Fatalf("claim = %d %+v", code, state)
	}
	var backup api.BackupResult
	if code := postJSON(t, s.url+"/v1/workloads/web/backup", api.BackupRequest{Epoch: 1, Repository: "main",
		Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"}, &backup); code != http.StatusOK || backup.SnapshotID == "" {
		t.Fatalf("backup = %d %+v", code, backup)
	}
	write(t, data, "new")
	stop := func() {
		t.Helper()
		if code := call(t, nil, "POST", s.url+"/v1/workloads/web/stop", testToken, nil); code != http.StatusOK {
			t.Fatalf("stop = %d", code)
		}
	}
	stop()
	t.Cleanup(func() { restoreAfterDownloadHook = nil })
	restore := func(op string) (int, api.Error) {
		var apiErr api.Error
		code := postJSON(t, s.url+"/v1/workloads/web/restore", api.RestoreRequest{Epoch: 1, OperationID: op,
			Repository: "main", SnapshotID: backup.SnapshotID, Verify: api.VerifyNone}, &apiErr)
		return code, apiErr
	}

	// Started here, through the API, while the download ran.
	restoreAfterDownloadHook = func() {
		if code := call(t, nil, "POST", s.url+"/v1/workloads/web/start", testToken, nil); code != http.StatusOK {
			t.Errorf("start during the restore = %d", code)
		}
	}
	code, apiErr := restore("op-here")
	if code != http.StatusConflict || apiErr.Code != CodeActive || !strings.Contains(apiErr.Message, "is active here now") {
		t.Fatalf("restore while the workload was started here = %d %+v, want 409 active", code, apiErr)
	}
	if got := read(t, data); got != "new" {
		t.Fatalf("a refused restore replaced the data: %q", got)
	}
	stop()

	// Started on another node, whose live lease appears during the download.
	restoreAfterDownloadHook = func() {
		rec := OwnerRecord{Workload: "web", Node: "node-2", Generation: 99, Claim: "other", HeartbeatAt: time.Now().UTC(),
			RenewIntervalMS: 50, ExpiryMS: time.Minute.Milliseconds()}
		if err := s.owners.write(rec); err != nil {
			t.Error(err)
		}
	}
	code, apiErr = restore("op-elsewhere")
	if code != http.StatusConflict || apiErr.Code != CodeActive || !strings.Contains(apiErr.Message, "node node-2 holds its ownership lease") {
		t.Fatalf("restore while node-2 took the lease = %d %+v, want 409 active naming node-2", code, apiErr)
	}
	if got := read(t, data); got != "new" {
		t.Fatalf("a refused restore replaced the data: %q", got)
	}

	// Control: with the lease released and nothing started, it restores.
	restoreAfterDownloadHook = nil
	rec := OwnerRecord{Workload: "web", Node: "node-2", Generation: 100, Claim: "other", HeartbeatAt: time.Now().UTC(), Released: true}
	if err := s.owners.write(rec); err != nil {
		t.Fatal(err)
	}
	if code, apiErr := restore("op-ok"); code != http.StatusOK {
		t.Fatalf("restore of a stopped workload = %d %+v", code, apiErr)
	}
	if got := read(t, data); got != "old" {
		t.Fatalf("restored data %q, want the backed-up %q", got, "old")
	}
}
