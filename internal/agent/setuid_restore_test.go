package agent

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// Through the agent: a setuid file is backed up as it is (the mirror keeps
// the bits) and restored without setuid and setgid unless the request sets
// keep_setuid.
func TestRestoreDropsSetuidUnlessTheRequestKeepsIt(t *testing.T) {
	e := newAgentEnv(t)
	repoDir, _ := initRepo(t, "pw")
	s := startServer(t, e.config(t, e.repoBlock(t, "main", repoDir, "pw"), fileWorkload("web")), nil)
	const access = "main"

	suid := filepath.Join(e.volume, "apps/web/bin/tool")
	write(t, suid, "#!/bin/sh\n")
	mode := 0o755 | fs.ModeSetuid | fs.ModeSetgid
	if err := os.Chmod(suid, mode); err != nil {
		t.Fatal(err)
	}
	if code := call(t, nil, "POST", s.url+"/v1/workloads/web/start", testToken, nil); code != http.StatusOK {
		t.Fatalf("start = %d", code)
	}
	var state api.CoordinatorState
	if code := postJSON(t, s.url+"/v1/coordinator", api.CoordinatorClaim{Cluster: "c", Epoch: 1, Owner: "test"}, &state); code != http.StatusOK {
		t.Fatalf("claim = %d %+v", code, state)
	}
	var backup api.BackupResult
	if code := postJSON(t, s.url+"/v1/workloads/web/backup", api.BackupRequest{Epoch: 1, Repository: access,
		Consistency: api.ConsistencyApplication, Cluster: "c", Group: "g", RunID: "r"}, &backup); code != http.StatusOK || backup.SnapshotID == "" {
		t.Fatalf("backup = %d %+v", code, backup)
	}
	for dest, keep := range map[string]bool{"apps/web/plain": false, "apps/web/kept": true} {
		var res api.RestoreResult
		code := postJSON(t, s.url+"/v1/workloads/web/restore", api.RestoreRequest{Epoch: 1, OperationID: "op-" + filepath.Base(dest),
			Repository: access, SnapshotID: backup.SnapshotID, Files: []string{"apps/web/bin/tool"}, Destination: dest, KeepSetuid: keep}, &res)
		if code != http.StatusOK {
			t.Fatalf("restore to %s = %d %+v", dest, code, res)
		}
		fi, err := os.Lstat(filepath.Join(e.volume, dest, "apps/web/bin/tool"))
		if err != nil {
			t.Fatal(err)
		}
		want := mode
		if !keep {
			want = 0o755
		}
		if fi.Mode() != want {
			t.Errorf("keep_setuid=%v: restored with mode %v, want %v", keep, fi.Mode(), want)
		}
	}
}
