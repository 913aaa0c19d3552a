package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
)

// initRepo creates a repository in a fresh directory and returns its
// directory and id.
func initRepo(t *testing.T, password string) (dir, id string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(context.Background(), be, password, repository.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id = repo.ID()
	repo.Close()
	return dir, id
}

// repoBlock writes a password file (0600) and returns a repository block for it.
func (e agentEnv) repoBlock(t *testing.T, name, url, password string) string {
	t.Helper()
	pw := filepath.Join(e.dir, name+".password")
	writeFile(t, pw, password+"\n")
	return fmt.Sprintf("repository %q {\n  url = %q\n  password_file = %q\n}\n", name, url, pw)
}

// post sends body as is and returns the status and the decoded error body.
func post(t *testing.T, url, body string) (int, api.Error, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e api.Error
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e, raw
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// quiescedWorkload is fileWorkload "web" whose quiesce leaves a trace.
func quiescedWorkload() script {
	w := fileWorkload("web")
	w.quiesce = "touch {{s}}/web.quiesced"
	return w
}

// readyServer serves one active workload "web" with the coordinator role
// claimed at epoch 1, and a repository "main" at dir.
func readyServer(t *testing.T, e agentEnv, dir, password string) *testServer {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(e.volume, "apps", "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.volume, "apps", "web", "data"), "workload data")
	s := startServer(t, e.config(t, e.repoBlock(t, "main", dir, password), quiescedWorkload()), nil)
	if code, apiErr, _ := post(t, s.url+"/v1/workloads/web/start", ""); code != 200 {
		t.Fatalf("start: %d %+v", code, apiErr)
	}
	if code, apiErr, _ := post(t, s.url+"/v1/coordinator", `{"cluster":"c","epoch":1,"owner":"test"}`); code != 200 {
		t.Fatalf("claim: %d %+v", code, apiErr)
	}
	return s
}

func snapshotCount(t *testing.T, dir, password string) int {
	t.Helper()
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	repo, err := repository.Open(context.Background(), be, password, repository.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	snaps, err := repo.Snapshots(context.Background(), repository.SnapshotFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(snaps)
}

// H1: a request naming a repository the agent has no block for is refused
// with 422 before the workload is frozen, on every endpoint that opens a
// repository, and the answer names the configured repositories and the
// block to add.
func TestRequestNamingAnUnknownRepositoryIsRefused(t *testing.T) {
	e := newAgentEnv(t)
	dir, _ := initRepo(t, "pw")
	s := readyServer(t, e, dir, "pw")
	for _, c := range []struct{ path, body string }{
		{"/v1/workloads/web/backup", mustJSON(t, api.BackupRequest{Epoch: 1, Repository: "attacker", Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"})},
		{"/v1/node-backup", mustJSON(t, api.NodeBackupRequest{Epoch: 1, Repository: "attacker", Consistency: api.ConsistencyApplication, Workloads: []string{"web"}, Cluster: "c", Group: "g", RunID: "r"})},
		{"/v1/workloads/web/restore", mustJSON(t, api.RestoreRequest{Epoch: 1, OperationID: "op", Repository: "attacker", SnapshotID: "abc", Verify: api.VerifyNone, Files: []string{"apps/web/x"}, Destination: "elsewhere"})},
		{"/v1/workloads/web/restore", mustJSON(t, api.RestoreRequest{OperationID: "op", Repository: "", SnapshotID: "abc", Verify: api.VerifyMetadata, InspectOnly: true})},
	} {
		code, apiErr, raw := post(t, s.url+c.path, c.body)
		if code != http.StatusUnprocessableEntity || apiErr.Code != CodeUnknownRepository {
			t.Fatalf("%s naming an unknown repository: %d %s, want 422 %s", c.path, code, raw, CodeUnknownRepository)
		}
		if !strings.Contains(apiErr.Message, "main") || !strings.Contains(apiErr.Message, "repository") {
			t.Errorf("%s: message %q should list the configured repositories (main) and the block to add", c.path, apiErr.Message)
		}
	}
	if _, err := os.Stat(filepath.Join(e.scratch, "web.quiesced")); err == nil {
		t.Error("the workload was quiesced for a request the agent refuses")
	}
	if code, apiErr, raw := post(t, s.url+"/v1/workloads/web/backup", mustJSON(t, api.BackupRequest{Epoch: 1, Repository: "attacker", Consistency: api.ConsistencyApplication})); code != 422 ||
		!strings.Contains(apiErr.Message, `repository "attacker" {`) {
		t.Errorf("message should show the block to add: %d %s", code, raw)
	}
	if n := snapshotCount(t, dir, "pw"); n != 0 {
		t.Errorf("%d snapshots in the configured repository, want 0", n)
	}
}

// H1: a body that still carries a repository URL, credentials or password
// (an old engine, or someone steering the agent) is refused, not half-used.
func TestRequestCarryingRepositoryAccessIsRefused(t *testing.T) {
	e := newAgentEnv(t)
	dir, _ := initRepo(t, "pw")
	evil, _ := initRepo(t, "evil")
	s := readyServer(t, e, dir, "pw")
	for name, body := range map[string]string{
		"old repository object": fmt.Sprintf(`{"epoch":1,"repository":{"url":%q,"password":"evil"},"consistency":"application","cluster":"c","group":"g","run_id":"r"}`, evil),
		"url beside the name":   fmt.Sprintf(`{"epoch":1,"repository":"main","url":%q,"password":"evil","consistency":"application","cluster":"c","group":"g","run_id":"r"}`, evil),
		"s3 endpoint":           `{"epoch":1,"repository":"main","endpoint":"169.254.169.254:80","consistency":"application","cluster":"c","group":"g","run_id":"r"}`,
	} {
		code, apiErr, raw := post(t, s.url+"/v1/workloads/web/backup", body)
		if code != http.StatusBadRequest || apiErr.Code != CodeBadRequest {
			t.Errorf("%s: %d %s, want 400 bad_request", name, code, raw)
		}
	}
	// Bodies that are valid but for one extra field, so only the strict
	// decoding can refuse them.
	for _, c := range []struct{ path, body string }{
		{"/v1/workloads/web/backup", mustJSON(t, api.BackupRequest{Epoch: 1, Repository: "main", Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"})},
		{"/v1/node-backup", mustJSON(t, api.NodeBackupRequest{Epoch: 1, Repository: "main", Consistency: api.ConsistencyApplication, Workloads: []string{"web"}, Cluster: "c", Group: "g", RunID: "r"})},
		{"/v1/workloads/web/restore", mustJSON(t, api.RestoreRequest{OperationID: "op", Repository: "main", SnapshotID: "0000", Verify: api.VerifyMetadata, InspectOnly: true})},
	} {
		for _, field := range []string{"password", "url", "secret_access_key"} {
			body := `{"` + field + `":"evil",` + strings.TrimPrefix(c.body, "{")
			code, apiErr, raw := post(t, s.url+c.path, body)
			if code != http.StatusBadRequest || apiErr.Code != CodeBadRequest || !strings.Contains(apiErr.Message, `"`+field+`"`) {
				t.Errorf("%s with a %s field: %d %s, want 400 bad_request naming the field", c.path, field, code, raw)
			}
		}
	}
	if n := snapshotCount(t, evil, "evil"); n != 0 {
		t.Errorf("the agent wrote %d snapshots into the caller's repository", n)
	}
	if n := snapshotCount(t, dir, "pw"); n != 0 {
		t.Errorf("%d snapshots in the configured repository, want 0", n)
	}
}

// H1: the engine sends the id of the repository it registered under the
// name; the agent refuses a same-named block that opens another
// repository, and backs up into its configured one when the ids agree.
func TestRepositoryWithAnotherIDIsRefused(t *testing.T) {
	e := newAgentEnv(t)
	dir, id := initRepo(t, "pw")
	_, otherID := initRepo(t, "pw")
	s := readyServer(t, e, dir, "pw")
	backup := func(repoID string) (int, api.Error, []byte) {
		return post(t, s.url+"/v1/workloads/web/backup", mustJSON(t, api.BackupRequest{Epoch: 1, Repository: "main", RepositoryID: repoID,
			Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"}))
	}
	code, apiErr, raw := backup(otherID)
	if code != http.StatusConflict || apiErr.Code != CodeRepositoryMismatch || !strings.Contains(apiErr.Message, otherID) || !strings.Contains(apiErr.Message, id) {
		t.Fatalf("backup naming another repository id: %d %s, want 409 %s naming both ids", code, raw, CodeRepositoryMismatch)
	}
	if n := snapshotCount(t, dir, "pw"); n != 0 {
		t.Fatalf("%d snapshots after a refused backup, want 0", n)
	}
	code, apiErr, raw = post(t, s.url+"/v1/workloads/web/restore", mustJSON(t, api.RestoreRequest{OperationID: "op", Repository: "main", RepositoryID: otherID,
		SnapshotID: "abc", Verify: api.VerifyMetadata, InspectOnly: true}))
	if code != http.StatusConflict || apiErr.Code != CodeRepositoryMismatch {
		t.Fatalf("restore naming another repository id: %d %s, want 409", code, raw)
	}
	if code, apiErr, raw = backup(id); code != 200 {
		t.Fatalf("backup with the right id: %d %+v %s", code, apiErr, raw)
	}
	if n := snapshotCount(t, dir, "pw"); n != 1 {
		t.Fatalf("%d snapshots in the configured repository, want 1", n)
	}
	// Without an id, the name alone selects the configured repository.
	if code, _, raw = backup(""); code != 200 {
		t.Fatalf("backup without an id: %d %s", code, raw)
	}
}

// GET /v1/node lists the configured repositories, with the id of each once
// the agent has opened it, and never a URL or password.
func TestNodeFactsListRepositories(t *testing.T) {
	e := newAgentEnv(t)
	dir, id := initRepo(t, "secret-pw-123")
	extra := e.repoBlock(t, "main", dir, "secret-pw-123") + e.repoBlock(t, "offsite", "s3://bucket/prefix", "other-pw-456")
	s := startServer(t, e.config(t, extra, quiescedWorkload()), nil)
	var facts api.NodeFacts
	readFacts := func() string {
		t.Helper()
		req, _ := http.NewRequest("GET", s.url+"/v1/node", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &facts); err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	raw := readFacts()
	want := []api.RepositoryFact{{Name: "main"}, {Name: "offsite"}}
	if fmt.Sprint(facts.Repositories) != fmt.Sprint(want) {
		t.Fatalf("repositories = %+v, want %+v", facts.Repositories, want)
	}
	for _, secret := range []string{"secret-pw-123", "other-pw-456", dir, "bucket"} {
		if strings.Contains(raw, secret) {
			t.Errorf("node facts show %q: %s", secret, raw)
		}
	}
	code, _, body := post(t, s.url+"/v1/workloads/web/restore", mustJSON(t, api.RestoreRequest{OperationID: "op", Repository: "main", SnapshotID: "0000", Verify: api.VerifyMetadata, InspectOnly: true}))
	if code != http.StatusUnprocessableEntity { // no such recovery point, but the repository was opened
		t.Fatalf("inspect: %d %s", code, body)
	}
	readFacts()
	if facts.Repositories[0] != (api.RepositoryFact{Name: "main", ID: id}) {
		t.Errorf("after opening: %+v, want main with id %s", facts.Repositories[0], id)
	}
	if logs := s.logs.String(); strings.Contains(logs, "secret-pw-123") {
		t.Errorf("the agent logged a repository password: %s", logs)
	}
}

func TestParseConfigRepositories(t *testing.T) {
	e := newAgentEnv(t)
	pw := filepath.Join(e.dir, "pw")
	writeFile(t, pw, "s3cret pass\n")
	key := filepath.Join(e.dir, "key")
	writeFile(t, key, "AKIASECRET")
	cfg, err := ParseConfig("agent.hcl", []byte(fmt.Sprintf(`
node = "n1"
listen = "127.0.0.1:0"
shared_volume = %q
state_dir = %q
token_file = %q
repository "offsite" {
  url                    = "s3://bucket/cg"
  endpoint               = "minio:9000"
  region                 = "eu-1"
  access_key_id          = "AKIA"
  secret_access_key_file = %q
  password_file          = %q
  path_style             = true
  insecure               = true
}
`, e.volume, e.dir, e.tokenFile, key, pw)))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := cfg.Repository("offsite")
	if !ok || r.URL != "s3://bucket/cg" || r.Endpoint != "minio:9000" || r.Region != "eu-1" || r.AccessKeyID != "AKIA" ||
		r.SecretAccessKey.Reveal() != "AKIASECRET" || r.Password.Reveal() != "s3cret pass" || !r.PathStyle || !r.Insecure {
		t.Fatalf("repository = %+v", r)
	}
	if s := fmt.Sprintf("%v %+v %#v", r, r, cfg); strings.Contains(s, "s3cret") || strings.Contains(s, "AKIASECRET") {
		t.Errorf("a printed config reveals a secret: %s", s)
	}
}

func TestParseConfigRepositoryErrors(t *testing.T) {
	e := newAgentEnv(t)
	good := filepath.Join(e.dir, "good.pw")
	writeFile(t, good, "pw\n")
	shared := filepath.Join(e.dir, "shared.pw")
	writeFile(t, shared, "pw\n")
	if err := os.Chmod(shared, 0o640); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(e.dir, "empty.pw")
	writeFile(t, empty, "\n")
	head := fmt.Sprintf("node = \"n1\"\nlisten = \"127.0.0.1:0\"\nshared_volume = %q\nstate_dir = %q\ntoken_file = %q\n", e.volume, e.dir, e.tokenFile)
	for name, c := range map[string]struct{ block, want string }{
		"group-readable password": {fmt.Sprintf("repository \"r\" {\n  url = \"/srv/repo\"\n  password_file = %q\n}\n", shared), "agent.hcl:9:19: Secret file readable by others"},
		"relative password file":  {"repository \"r\" {\n  url = \"/srv/repo\"\n  password_file = \"pw\"\n}\n", "agent.hcl:9:19: Invalid password_file"},
		"missing password file":   {"repository \"r\" {\n  url = \"/srv/repo\"\n}\n", "password_file"},
		"empty password":          {fmt.Sprintf("repository \"r\" {\n  url = \"/srv/repo\"\n  password_file = %q\n}\n", empty), "Empty password_file"},
		"bad url":                 {fmt.Sprintf("repository \"r\" {\n  url = \"repo\"\n  password_file = %q\n}\n", good), "agent.hcl:8:9: Invalid repository"},
		"key without secret":      {fmt.Sprintf("repository \"r\" {\n  url = \"s3://bkt/p\"\n  access_key_id = \"AK\"\n  password_file = %q\n}\n", good), "secret key is empty"},
		"bad name":                {fmt.Sprintf("repository \"-r\" {\n  url = \"/srv/repo\"\n  password_file = %q\n}\n", good), "Invalid repository name"},
		"duplicate":               {fmt.Sprintf("repository \"r\" {\n  url = \"/a\"\n  password_file = %q\n}\nrepository \"r\" {\n  url = \"/b\"\n  password_file = %q\n}\n", good, good), "agent.hcl:11:12: Duplicate repository"},
		"unknown attribute":       {fmt.Sprintf("repository \"r\" {\n  url = \"/a\"\n  password = \"pw\"\n  password_file = %q\n}\n", good), "password"},
	} {
		_, err := ParseConfig("agent.hcl", []byte(head+"\n"+c.block))
		var cerr *ConfigError
		if !errors.As(err, &cerr) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a config error containing %q", name, err, c.want)
		}
	}
}

// The unknown-repository answer is the same wherever it is produced.
func TestUnknownRepositoryMessage(t *testing.T) {
	cfg := &Config{Node: "n1", Path: "/etc/clusterguard/agent.hcl"}
	// Any token holder reads the answer: it does not name the config's path.
	if m := cfg.unknownRepositoryMessage("repo"); !strings.Contains(m, "(its agent config defines: none)") || strings.Contains(m, "/etc/clusterguard/agent.hcl") {
		t.Errorf("message %q", m)
	}
	var buf bytes.Buffer
	fmt.Fprint(&buf, Secret("x"))
	if buf.String() != "(redacted)" {
		t.Errorf("Secret prints %q", buf.String())
	}
}
