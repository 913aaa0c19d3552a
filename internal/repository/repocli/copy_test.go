package repocli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/repocli"
)

// `repo copy` copies every snapshot to a repository with another password;
// the copy restores the same bytes, and a second run sends nothing.
func TestCLICopy(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(repocli.EnvPassword, "pw-source-long-enough")
	src := runner{t: t, repo: filepath.Join(dir, "src-repo")}
	dst := runner{t: t, repo: filepath.Join(dir, "dst-repo")}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "a.txt"), []byte("offsite bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	src.ok("init", "--kdf-memory", "64K", "--kdf-time", "1")
	src.ok("backup", "--workload", "db", data)
	pwFile := filepath.Join(dir, "dst-pw")
	if err := os.WriteFile(pwFile, []byte("pw-target-long-enough\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dst.ok("init", "--kdf-memory", "64K", "--kdf-time", "1", "--password-file", pwFile)

	out := src.ok("copy", "--to", dst.repo, "--to-password-file", pwFile)
	if !strings.Contains(out, "copied 1 snapshots") || !strings.Contains(out, "verified") {
		t.Fatalf("copy output: %s", out)
	}
	if out := src.ok("copy", "--to", dst.repo, "--to-password-file", pwFile); !strings.Contains(out, "already there") || !strings.Contains(out, " 0 blobs sent") {
		t.Fatalf("second copy output: %s", out)
	}
	target := filepath.Join(dir, "restored")
	snaps := dst.ok("snapshots", "--password-file", pwFile, "--workload", "db")
	id := strings.Fields(strings.Split(snaps, "\n")[1])[0]
	dst.ok("restore", id, "--target", target, "--password-file", pwFile)
	got, err := os.ReadFile(filepath.Join(target, "a.txt"))
	if err != nil || string(got) != "offsite bytes" {
		t.Fatalf("restored from the copy: %q, %v", got, err)
	}
	if _, _, code := src.run("copy", "--to", dst.repo); code != 2 {
		t.Fatalf("copy without a target password: exit %d, want 2", code)
	}
}
