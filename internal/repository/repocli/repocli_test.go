package repocli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/repocli"
)

type runner struct {
	t    *testing.T
	repo string
}

func (r runner) run(args ...string) (string, string, int) {
	r.t.Helper()
	var out, errb bytes.Buffer
	code := repocli.Run(context.Background(), append([]string{"--repo", r.repo}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func (r runner) ok(args ...string) string {
	r.t.Helper()
	out, errs, code := r.run(args...)
	if code != 0 {
		r.t.Fatalf("repo %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	return out
}

func TestCLIEndToEnd(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(repocli.EnvPassword, "pw-one-long-enough")
	r := runner{t: t, repo: filepath.Join(dir, "repo")}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "sub", "a.txt"), []byte("alpha"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "img"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := r.ok("init", "--kdf-memory", "64K", "--kdf-time", "1"); !strings.Contains(out, "created repository") {
		t.Fatalf("init: %s", out)
	}
	out := r.ok("backup", "--workload", "db", "--tag", "nightly", "--consistency", "crash", src)
	if !strings.HasPrefix(out, "snapshot ") || !strings.Contains(out, "files:") || !strings.Contains(out, "bytes:") || !strings.Contains(out, "duration:") {
		t.Fatalf("backup output: %s", out)
	}
	id := strings.Fields(out)[1]

	ranges := filepath.Join(dir, "ranges.json")
	if err := os.WriteFile(ranges, []byte(`{"img":[{"offset":0,"length":10}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "img"), append([]byte("0123456789"), make([]byte, 1<<20-10)...), 0o600); err != nil {
		t.Fatal(err)
	}
	out = r.ok("backup", "--workload", "db", "--changed-ranges", ranges, src)
	if !strings.Contains(out, "parent:      "+id) {
		t.Fatalf("second backup did not use the first as parent: %s", out)
	}

	var snaps []struct {
		ID       string   `json:"id"`
		Workload string   `json:"workload"`
		Tags     []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(r.ok("snapshots", "--json")), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || snaps[1].ID != id || snaps[1].Workload != "db" || snaps[1].Tags[0] != "nightly" {
		t.Fatalf("snapshots --json: %+v", snaps)
	}
	if out := r.ok("snapshots", "--tag", "nightly"); strings.Count(out, "\n") != 2 {
		t.Fatalf("filtered listing: %q", out)
	}
	if out := r.ok("ls", id); !strings.Contains(out, "sub/a.txt") {
		t.Fatalf("ls: %s", out)
	}
	if out := r.ok("cat", id[:8], "sub/a.txt"); out != "alpha" {
		t.Fatalf("cat: %q", out)
	}
	target := filepath.Join(dir, "restore")
	r.ok("restore", "latest", "--target", target, "--include", "img")
	if b, _ := os.ReadFile(filepath.Join(target, "img")); !bytes.HasPrefix(b, []byte("0123456789")) || len(b) != 1<<20 {
		t.Fatal("restored img differs")
	}
	if _, err := os.Stat(filepath.Join(target, "sub")); !os.IsNotExist(err) {
		t.Fatal("--include restored more than asked")
	}
	if out := r.ok("verify", "--read-data"); !strings.Contains(out, "no errors were found") {
		t.Fatalf("verify: %s", out)
	}
	r.ok("forget", "--keep-last", "1", "--prune")
	if out := r.ok("snapshots"); strings.Contains(out, id[:8]) {
		t.Fatalf("forgotten snapshot still listed: %s", out)
	}
	r.ok("rebuild-index")
	r.ok("verify")

	t.Setenv(repocli.EnvNewPassword, "pw-two-long-enough")
	r.ok("key", "passwd")
	_, errs, code := r.run("snapshots")
	if code != 1 || !strings.Contains(errs, "wrong password") {
		t.Fatalf("old password after passwd: exit %d, %s", code, errs)
	}
	t.Setenv(repocli.EnvPassword, "pw-two-long-enough")
	r.ok("snapshots")

	if _, _, code := r.run("frobnicate"); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
	if _, errs, code := (runner{t: t, repo: ""}).run("snapshots"); code != 2 || !strings.Contains(errs, "--repo") {
		t.Fatalf("missing repo: exit %d %s", code, errs)
	}
	if _, errs, code := r.run("backup", filepath.Join(dir, "does-not-exist")); code != 1 || !strings.Contains(errs, "does-not-exist") {
		t.Fatalf("backup of a missing path: exit %d %s", code, errs)
	}
}
