package agent

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

func TestParseRestoreDestinations(t *testing.T) {
	t.Parallel()
	e := newAgentEnv(t)
	mkdir(t, filepath.Join(e.volume, MetadataDir))
	parse := func(list string) (*Config, error) {
		return ParseConfig("agent.hcl", []byte(readConfig(t, e.config(t, "restore_destinations = "+list))))
	}
	cfg, err := parse(`["restored", "restored/", "scratch/x", "` + filepath.Join(e.volume, "abs") + `"]`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"restored", "scratch/x", "abs"}; !slices.Equal(cfg.RestoreDestinations, want) {
		t.Errorf("restore destinations = %q, want %q", cfg.RestoreDestinations, want)
	}
	for list, want := range map[string]string{
		`["/etc"]`:               "is not inside the shared volume",
		`["../up"]`:              "climbs out",
		`[".clusterguard/x"]`:    "reserves for its own metadata",
		`"restored"`:             "expected a list of string",
		`["` + e.volume + `"]`:   "the shared volume itself",
		`["restored", "/other"]`: "is not inside the shared volume",
	} {
		if _, err := parse(list); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("restore_destinations = %s: %v, want an error containing %q", list, err, want)
		}
	}
}

func readConfig(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A file-level restore writes only under the workload's own paths unless
// the agent config allows more; the refusal says what to add.
func TestRestoreDestinationMustBeAllowed(t *testing.T) {
	e := newAgentEnv(t)
	restoreTo := func(s *testServer, dest string) (int, api.Error) {
		var apiErr api.Error
		code := postJSON(t, s.url+"/v1/workloads/web/restore",
			api.RestoreRequest{OperationID: "op", Repository: "main", SnapshotID: "0123abcd", Files: []string{"apps/web/a"}, Destination: dest}, &apiErr)
		return code, apiErr
	}
	// Passing the destination check, the request reaches the fence: this
	// node holds no epoch, so it is refused as stale, not as misplaced.
	wantAllowed := func(s *testServer, dest string) {
		t.Helper()
		if code, apiErr := restoreTo(s, dest); code == http.StatusForbidden || apiErr.Code != CodeStaleEpoch {
			t.Errorf("destination %q = %d %+v, want it allowed (then refused for the epoch)", dest, code, apiErr)
		}
	}
	wantRefused := func(s *testServer, dest, hint string) {
		t.Helper()
		code, apiErr := restoreTo(s, dest)
		if code != http.StatusForbidden || apiErr.Code != CodeDestinationNotAllowed || !strings.Contains(apiErr.Message, hint) {
			t.Errorf("destination %q = %d %+v, want 403 %s mentioning %s", dest, code, apiErr, CodeDestinationNotAllowed, hint)
		}
	}

	repoDir, _ := initRepo(t, "pw")
	block := e.repoBlock(t, "main", repoDir, "pw")
	s := startServer(t, e.config(t, block, fileWorkload("web"), fileWorkload("other")), nil)
	wantRefused(s, "restored", `add restore_destinations = ["restored"] to the agent config`)
	wantRefused(s, "apps/other", `restore_destinations = ["apps/other"]`)
	wantRefused(s, "apps", `restore_destinations = ["apps"]`)
	wantAllowed(s, "apps/web/old")

	s = startServer(t, e.config(t, block+"\nrestore_destinations = [\"restored\"]\n", fileWorkload("web"), fileWorkload("other")), nil)
	wantAllowed(s, "restored")
	wantAllowed(s, "restored/2026")
	wantRefused(s, "restoredx", "restore_destinations (restored)")
	// A symlink under an allowed prefix into another workload's data.
	mkdir(t, filepath.Join(e.volume, "apps/other"))
	mkdir(t, filepath.Join(e.volume, "restored"))
	symlink(t, "../apps/other", filepath.Join(e.volume, "restored/link"))
	wantRefused(s, "restored/link", `restore_destinations = ["restored/link"]`)
}

// The destination can change into a symlink after the request was
// checked: placing the file checks where it really lands.
func TestPlaceFileStaysUnderAllowedPrefixes(t *testing.T) {
	t.Parallel()
	volume, staging := t.TempDir(), t.TempDir()
	write(t, filepath.Join(volume, "apps/other/data"), "other's data")
	mkdir(t, filepath.Join(volume, "restored"))
	symlink(t, "../apps/other", filepath.Join(volume, "restored/link"))
	src := filepath.Join(staging, "data")
	write(t, src, "restored copy")
	root, err := os.OpenRoot(volume)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	policy, err := newPlacementPolicy(volume, []string{"apps/web", "restored"})
	if err != nil {
		t.Fatal(err)
	}
	if err := placeFile(root, policy, src, "restored/link/data"); err == nil || !strings.Contains(err.Error(), "outside the workload's paths") {
		t.Fatalf("placing through a link out of the allowed prefix: %v, want a refusal", err)
	}
	if got := read(t, filepath.Join(volume, "apps/other/data")); got != "other's data" {
		t.Fatalf("another workload's file was replaced: %q", got)
	}
	if err := placeFile(root, policy, src, "restored/2026/data"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(volume, "restored/2026/data")); got != "restored copy" {
		t.Fatalf("placed file holds %q", got)
	}
}
