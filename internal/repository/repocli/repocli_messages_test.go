package repocli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/repocli"
)

// init refuses a password shorter than repository.MinPasswordLength and
// creates nothing; commands other than init never create a repository at a
// mistyped path.
func TestCLIInitRefusesShortPasswordAndOnlyInitCreates(t *testing.T) {
	dir := t.TempDir()
	r := runner{t: t, repo: filepath.Join(dir, "repo")}
	t.Setenv(repocli.EnvPassword, "short")
	_, errs, code := r.run("init", "--kdf-memory", "64K", "--kdf-time", "1")
	if code != 1 || !strings.Contains(errs, "at least 12") {
		t.Fatalf("init with a 5-character password: exit %d, %s", code, errs)
	}
	if _, err := os.Stat(r.repo); !os.IsNotExist(err) {
		t.Fatalf("refused init left %s behind (%v)", r.repo, err)
	}
	t.Setenv(repocli.EnvPassword, "long enough password")
	_, errs, code = r.run("snapshots")
	if code != 1 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("snapshots at a missing path: exit %d, %s", code, errs)
	}
	if _, err := os.Stat(r.repo); !os.IsNotExist(err) {
		t.Fatalf("snapshots created %s (%v)", r.repo, err)
	}
	r.ok("init", "--kdf-memory", "64K", "--kdf-time", "1")
	t.Setenv(repocli.EnvNewPassword, "tiny")
	if _, errs, code := r.run("key", "add"); code != 1 || !strings.Contains(errs, "at least 12") {
		t.Fatalf("key add with a short password: exit %d, %s", code, errs)
	}
}

// The help of init states the KDF memory the code uses.
func TestCLIInitHelpStatesKDFMemory(t *testing.T) {
	r := runner{t: t, repo: t.TempDir()}
	_, errs, _ := r.run("init", "--help")
	want := fmt.Sprintf("(default %dM)", repository.DefaultKDF.MemoryKiB>>10)
	if !strings.Contains(errs, want) || strings.Contains(errs, "64M") {
		t.Fatalf("init --help does not say %q:\n%s", want, errs)
	}
}

// A KDF setting too large for the format is refused, not wrapped around to
// a small (weak) one.
func TestCLIInitRefusesKDFOverflow(t *testing.T) {
	r := runner{t: t, repo: filepath.Join(t.TempDir(), "repo")}
	t.Setenv(repocli.EnvPassword, "long enough password")
	for _, args := range [][]string{{"--kdf-memory", "4194368M"}, {"--kdf-time", "4294967297"}} {
		_, errs, code := r.run(append([]string{"init"}, args...)...)
		if code != 2 || !strings.Contains(errs, "out of range") {
			t.Errorf("init %v: exit %d, %s", args, code, errs)
		}
	}
	if _, err := os.Stat(r.repo); !os.IsNotExist(err) {
		t.Fatalf("refused init created %s", r.repo)
	}
}
