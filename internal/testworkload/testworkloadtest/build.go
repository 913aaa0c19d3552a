// Package testworkloadtest builds the test workload program for tests. It is
// imported only from _test.go files.
package testworkloadtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

// Package is the import path of the test workload's main package.
const Package = "github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload/cmd/clusterguard-testworkload"

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// Build compiles clusterguard-testworkload once per test process and returns its
// path. With CLUSTERGUARD_TEST_BIN_DIR set, it uses the binary already there.
func Build(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("CLUSTERGUARD_TEST_BIN_DIR"); dir != "" {
		path := filepath.Join(dir, testworkload.BinaryName)
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("CLUSTERGUARD_TEST_BIN_DIR is set but holds no %s: %v; build it with `go build -o %s %s` or unset the variable", testworkload.BinaryName, err, dir, Package)
		}
		return path
	}
	buildOnce.Do(func() {
		dir, err := BinDir()
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, testworkload.BinaryName)
		buildOut, buildErr = exec.Command("go", "build", "-o", buildPath, Package).CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build %s: %v\n%s", Package, buildErr, buildOut)
	}
	return buildPath
}

var (
	binDirOnce sync.Once
	binDir     string
	binDirErr  error
)

// BinDir returns a directory for binaries built by this test process:
// <tmp>/clusterguard-testbin/<pid>. Test processes cannot clean up after
// themselves when they end, so each one removes the directories of test
// processes that are gone.
func BinDir() (string, error) {
	binDirOnce.Do(func() {
		parent := filepath.Join(os.TempDir(), "clusterguard-testbin")
		if err := os.MkdirAll(parent, 0o755); err != nil {
			binDirErr = err
			return
		}
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
				_ = os.RemoveAll(filepath.Join(parent, e.Name()))
			}
		}
		binDir = filepath.Join(parent, strconv.Itoa(os.Getpid()))
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			binDirErr = fmt.Errorf("create test binary directory: %w", err)
		}
	})
	return binDir, binDirErr
}
