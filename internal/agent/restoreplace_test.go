package agent

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// postJSON posts body to url with the test token and decodes the reply
// into out; it returns the status code.
func postJSON(t *testing.T, url string, body, out any) int {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(reply, out); err != nil {
			t.Fatalf("POST %s: decode %s: %v", url, reply, err)
		}
	}
	return resp.StatusCode
}

// metadataVolume is a volume with a coordinator marker and a workload
// symlink "apps/web/meta" leading into the metadata directory.
func metadataVolume(t *testing.T, volume string) (marker string) {
	t.Helper()
	marker = filepath.Join(volume, CoordinatorMarkerFile)
	write(t, marker, `{"epoch": 7}`)
	mkdir(t, filepath.Join(volume, "apps/web"))
	symlink(t, "../../"+MetadataDir, filepath.Join(volume, "apps/web/meta"))
	return marker
}

// A file-level restore must not overwrite the coordinator marker through
// a symlink in its destination path.
func TestPlaceFilesRefusesTheMetadataDirectoryThroughASymlink(t *testing.T) {
	t.Parallel()
	volume, staging := t.TempDir(), t.TempDir()
	marker := metadataVolume(t, volume)
	write(t, filepath.Join(staging, "apps/web/meta/coordinator.json"), `{"epoch": 1}`)
	write(t, filepath.Join(staging, "coordinator.json"), `{"epoch": 1}`)

	err := placeFiles(volume, staging, []string{"apps/web/meta/coordinator.json"}, "", []string{"apps/web"})
	if err == nil || !strings.Contains(err.Error(), "leads into .clusterguard") {
		t.Fatalf("in place through the link: %v, want a refusal", err)
	}
	err = placeFiles(volume, staging, []string{"coordinator.json"}, "apps/web/meta", []string{"apps/web"})
	if err == nil || !strings.Contains(err.Error(), "leads into .clusterguard") {
		t.Fatalf("destination through the link: %v, want a refusal", err)
	}
	if got := read(t, marker); got != `{"epoch": 7}` {
		t.Fatalf("the coordinator marker was overwritten: %s", got)
	}
}

// The symlink may appear after the request was validated (the workload
// keeps running during a file-level restore): the rename is made into the
// directory actually opened, after checking where it is.
func TestPlaceFileChecksTheOpenedDirectory(t *testing.T) {
	t.Parallel()
	volume, staging := t.TempDir(), t.TempDir()
	marker := metadataVolume(t, volume)
	src := filepath.Join(staging, "coordinator.json")
	write(t, src, `{"epoch": 1}`)
	root, err := os.OpenRoot(volume)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	policy, err := newPlacementPolicy(volume, []string{"apps/web"})
	if err != nil {
		t.Fatal(err)
	}
	err = placeFile(root, policy, src, "apps/web/meta/coordinator.json")
	if err == nil || !strings.Contains(err.Error(), "leads into .clusterguard") {
		t.Fatalf("placing through a link swapped in after validation: %v, want a refusal", err)
	}
	if got := read(t, marker); got != `{"epoch": 7}` {
		t.Fatalf("the coordinator marker was overwritten: %s", got)
	}
	if err := placeFile(root, policy, src, "apps/web/restored/coordinator.json"); err != nil {
		t.Fatalf("placing inside the workload's path: %v", err)
	}
	if got := read(t, filepath.Join(volume, "apps/web/restored/coordinator.json")); got != `{"epoch": 1}` {
		t.Fatalf("placed file holds %q", got)
	}
}

// Through the agent's API: a restore naming a file behind the symlink is
// refused before anything is read or written.
func TestRestoreRefusesTheMetadataDirectoryThroughASymlink(t *testing.T) {
	e := newAgentEnv(t)
	repoDir, _ := initRepo(t, "pw")
	s := startServer(t, e.config(t, e.repoBlock(t, "main", repoDir, "pw"), fileWorkload("web")), nil)
	marker := metadataVolume(t, e.volume)
	for _, req := range []api.RestoreRequest{
		{OperationID: "op-1", Repository: "main", SnapshotID: "0123abcd", Files: []string{"apps/web/meta/coordinator.json"}},
		{OperationID: "op-2", Repository: "main", SnapshotID: "0123abcd", Files: []string{"apps/web/a"}, Destination: "apps/web/meta"},
	} {
		var apiErr api.Error
		code := postJSON(t, s.url+"/v1/workloads/web/restore", req, &apiErr)
		if code != http.StatusBadRequest || !strings.Contains(apiErr.Message, "leads into .clusterguard") {
			t.Errorf("restore %+v = %d %+v, want 400 naming .clusterguard", req, code, apiErr)
		}
	}
	if got := read(t, marker); got != `{"epoch": 7}` {
		t.Fatalf("the coordinator marker was overwritten: %s", got)
	}
}
