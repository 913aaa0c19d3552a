package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// nodeFacts reads GET /v1/node.
func nodeFacts(t *testing.T, s *testServer) api.NodeFacts {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+"/v1/node", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var f api.NodeFacts
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("node facts %s: %v", raw, err)
	}
	return f
}

// A repository re-created at the same location has a new id. The facts
// still show the old one (the agent learned it when it last opened the
// repository), but the agent checks the id the engine sends against the
// repository as it is at request time: the new id is accepted, the old
// one refused, and the facts follow. Backup results carry the id written to.
func TestRecreatedRepositoryIsCheckedAtRequestTime(t *testing.T) {
	e := newAgentEnv(t)
	dir, oldID := initRepo(t, "pw")
	s := readyServer(t, e, dir, "pw")
	backup := func(id string) (int, []byte) {
		code, _, raw := post(t, s.url+"/v1/workloads/web/backup", mustJSON(t, api.BackupRequest{Epoch: 1, Repository: "main", RepositoryID: id,
			Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"}))
		return code, raw
	}
	code, raw := backup(oldID)
	var res api.BackupResult
	if code != 200 || json.Unmarshal(raw, &res) != nil || res.RepositoryID != oldID {
		t.Fatalf("backup: %d %s, want 200 with repository_id %s", code, raw, oldID)
	}
	if f := nodeFacts(t, s); len(f.Repositories) != 1 || f.Repositories[0].ID != oldID {
		t.Fatalf("facts %+v, want main with id %s", f.Repositories, oldID)
	}
	// Re-create the repository at the same location.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	newID := recreateRepo(t, dir, "pw")
	if code, raw := backup(oldID); code != http.StatusConflict || !strings.Contains(string(raw), CodeRepositoryMismatch) {
		t.Fatalf("backup naming the old id after re-creation: %d %s, want 409 %s", code, raw, CodeRepositoryMismatch)
	}
	code, raw = backup(newID)
	if code != 200 || json.Unmarshal(raw, &res) != nil || res.RepositoryID != newID {
		t.Fatalf("backup naming the new id: %d %s, want 200 with repository_id %s", code, raw, newID)
	}
	if f := nodeFacts(t, s); f.Repositories[0].ID != newID {
		t.Errorf("facts after the re-created repository was opened: %+v, want id %s", f.Repositories, newID)
	}
	nb, _, raw := post(t, s.url+"/v1/node-backup", mustJSON(t, api.NodeBackupRequest{Epoch: 1, Repository: "main", RepositoryID: newID,
		Consistency: api.ConsistencyApplication, Workloads: []string{"web"}, Cluster: "c", Group: "g", RunID: "r2"}))
	var nres api.NodeBackupResult
	if nb != 200 || json.Unmarshal(raw, &nres) != nil || nres.RepositoryID != newID {
		t.Errorf("node backup: %d %s, want 200 with repository_id %s", nb, raw, newID)
	}
	rc, _, raw := post(t, s.url+"/v1/workloads/web/restore", mustJSON(t, api.RestoreRequest{OperationID: "op", Repository: "main", RepositoryID: newID,
		SnapshotID: res.SnapshotID, Verify: api.VerifyMetadata, InspectOnly: true, Cluster: "c"}))
	var rres api.RestoreResult
	if rc != 200 || json.Unmarshal(raw, &rres) != nil || rres.RepositoryID != newID {
		t.Errorf("inspect: %d %s, want 200 with repository_id %s", rc, raw, newID)
	}
}

// recreateRepo initialises a new repository in dir (which must not exist).
func recreateRepo(t *testing.T, dir, password string) string {
	t.Helper()
	tmp, id := initRepo(t, password)
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return id
}

// Answers to any token holder name the repository block, never the
// repository's location or the agent config's path and line; the agent's
// log keeps those for the operator.
func TestRepositoryErrorsNameOnlyTheBlock(t *testing.T) {
	e := newAgentEnv(t)
	dir, id := initRepo(t, "pw")
	_, otherID := initRepo(t, "pw")
	s := readyServer(t, e, dir, "pw")
	configPath := s.cfg.Path
	body := func(repo, repoID string) string {
		return mustJSON(t, api.BackupRequest{Epoch: 1, Repository: repo, RepositoryID: repoID, Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"})
	}
	check := func(what string, wantCode int, raw []byte, code int) {
		t.Helper()
		if code != wantCode {
			t.Errorf("%s: %d %s, want %d", what, code, raw, wantCode)
		}
		for _, leak := range []string{dir, configPath, filepath.Base(configPath) + ":", filepath.Dir(dir)} {
			if strings.Contains(string(raw), leak) {
				t.Errorf("%s: the answer names %q: %s", what, leak, raw)
			}
		}
		if !strings.Contains(string(raw), `repository \"`) && !strings.Contains(string(raw), `repository "`) {
			t.Errorf("%s: the answer does not name the repository block: %s", what, raw)
		}
	}
	code, _, raw := post(t, s.url+"/v1/workloads/web/backup", body("other", ""))
	check("unknown repository", http.StatusUnprocessableEntity, raw, code)
	code, _, raw = post(t, s.url+"/v1/workloads/web/backup", body("main", otherID))
	check("another id", http.StatusConflict, raw, code)
	if !strings.Contains(string(raw), id) || !strings.Contains(string(raw), otherID) {
		t.Errorf("the 409 should still name both ids: %s", raw)
	}
	// The repository cannot be opened (its directory is gone).
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	code, _, raw = post(t, s.url+"/v1/workloads/web/backup", body("main", ""))
	check("unreachable repository", http.StatusInternalServerError, raw, code)
	code, _, raw = post(t, s.url+"/v1/workloads/web/restore", mustJSON(t, api.RestoreRequest{OperationID: "op", Repository: "main", SnapshotID: "0000", Verify: api.VerifyMetadata, InspectOnly: true}))
	check("unreachable repository (restore)", http.StatusInternalServerError, raw, code)
	logs := s.logs.String()
	for _, want := range []string{dir, filepath.Base(configPath)} {
		if !strings.Contains(logs, want) {
			t.Errorf("the agent's log should name %q for the operator", want)
		}
	}
}

// A restore uses only a recovery point of the workload it restores and,
// when the request names one, of its cluster: one repository holds every
// workload's and cluster's recovery points, and a token holder must not
// write one workload's data over another's or copy it out with a
// file-level restore.
func TestRestoreOfAnotherWorkloadsRecoveryPointIsRefused(t *testing.T) {
	e := newAgentEnv(t)
	dir, id := initRepo(t, "pw")
	for _, w := range []string{"web", "db"} {
		if err := os.MkdirAll(filepath.Join(e.volume, "apps", w), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(e.volume, "apps", w, "data"), w+" data")
	}
	s := startServer(t, e.config(t, e.repoBlock(t, "main", dir, "pw")+"\nrestore_destinations = [\"stolen\"]\n", fileWorkload("web"), fileWorkload("db")), nil)
	for _, w := range []string{"web", "db"} {
		if code, apiErr, _ := post(t, s.url+"/v1/workloads/"+w+"/start", ""); code != 200 {
			t.Fatalf("start %s: %d %+v", w, code, apiErr)
		}
	}
	if code, apiErr, _ := post(t, s.url+"/v1/coordinator", `{"cluster":"c","epoch":1,"owner":"test"}`); code != 200 {
		t.Fatalf("claim: %d %+v", code, apiErr)
	}
	snapshot := func(w, cluster string) string {
		t.Helper()
		code, _, raw := post(t, s.url+"/v1/workloads/"+w+"/backup", mustJSON(t, api.BackupRequest{Epoch: 1, Repository: "main", RepositoryID: id,
			Consistency: api.ConsistencyApplication, Cluster: cluster, Group: "g", RunID: "r"}))
		var res api.BackupResult
		if code != 200 || json.Unmarshal(raw, &res) != nil {
			t.Fatalf("backup %s: %d %s", w, code, raw)
		}
		return res.SnapshotID
	}
	dbPoint, webPoint, otherClusterPoint := snapshot("db", "c"), snapshot("web", "c"), snapshot("web", "c2")
	code, _, raw := post(t, s.url+"/v1/node-backup", mustJSON(t, api.NodeBackupRequest{Epoch: 1, Repository: "main", RepositoryID: id,
		Consistency: api.ConsistencyApplication, Workloads: []string{"db"}, Cluster: "c", Group: "g", RunID: "r"}))
	var nres api.NodeBackupResult
	if code != 200 || json.Unmarshal(raw, &nres) != nil {
		t.Fatalf("node backup: %d %s", code, raw)
	}
	if code, apiErr, _ := post(t, s.url+"/v1/workloads/web/stop", ""); code != 200 {
		t.Fatalf("stop web: %d %+v", code, apiErr)
	}
	restore := func(req api.RestoreRequest) (int, api.Error, []byte) {
		req.Repository, req.RepositoryID, req.Verify = "main", id, api.VerifyMetadata
		if req.OperationID == "" {
			req.OperationID = "op"
		}
		return post(t, s.url+"/v1/workloads/web/restore", mustJSON(t, req))
	}
	for name, req := range map[string]api.RestoreRequest{
		"db's point, inspect":                  {SnapshotID: dbPoint, InspectOnly: true},
		"db's point, in place":                 {Epoch: 1, SnapshotID: dbPoint},
		"db's point, files elsewhere":          {Epoch: 1, SnapshotID: dbPoint, Files: []string{"apps/db/data"}, Destination: "stolen"},
		"db's node view, files elsewhere":      {Epoch: 1, SnapshotID: nres.SnapshotID, Files: []string{"apps/db/data"}, Destination: "stolen"},
		"another cluster's point":              {Epoch: 1, SnapshotID: otherClusterPoint, Cluster: "c"},
		"another cluster's point, files there": {Epoch: 1, SnapshotID: otherClusterPoint, Cluster: "c", Files: []string{"apps/web/data"}, Destination: "stolen"},
	} {
		code, apiErr, raw := restore(req)
		if code != http.StatusUnprocessableEntity || apiErr.Code != CodeWrongRecoveryPoint {
			t.Errorf("%s: %d %s, want 422 %s", name, code, raw, CodeWrongRecoveryPoint)
		}
	}
	if _, err := os.Stat(filepath.Join(e.volume, "stolen")); err == nil {
		t.Error("a refused file-level restore wrote into the shared volume")
	}
	if b, err := os.ReadFile(filepath.Join(e.volume, "apps", "web", "data")); err != nil || string(b) != "web data" {
		t.Errorf("web's data after refused restores: %q %v", b, err)
	}
	// Its own recovery points restore, with or without a cluster named.
	if code, _, raw := restore(api.RestoreRequest{Epoch: 1, SnapshotID: webPoint, Cluster: "c"}); code != 200 {
		t.Errorf("web's own point: %d %s", code, raw)
	}
	if code, _, raw := restore(api.RestoreRequest{SnapshotID: otherClusterPoint, InspectOnly: true}); code != 200 {
		t.Errorf("web's point of another cluster, no cluster named: %d %s", code, raw)
	}
}
