package repocli_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/repocli"
)

// A changed fixed-block file backed up without --changed-ranges reports the
// blocks taken from the parent, with the fast hash and with
// --secure-block-compare, and restores exactly.
func TestCLIBackupWithoutHintsReusesParentBlocks(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(repocli.EnvPassword, "pw-one-long-enough")
	r := runner{t: t, repo: filepath.Join(dir, "repo")}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	img := make([]byte, 64<<10)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range img {
		img[i] = byte(rnd.Uint32())
	}
	p := filepath.Join(src, "img")
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func() {
		t.Helper()
		if err := os.WriteFile(p, img, 0o600); err != nil {
			t.Fatal(err)
		}
		mtime = mtime.Add(time.Minute)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write()
	r.ok("init", "--kdf-memory", "64K", "--kdf-time", "1")
	flags := []string{"backup", "--workload", "vm", "--fixed-threshold", "16K", "--fixed-block", "4K"}
	r.ok(append(flags, src)...)
	for i, extra := range [][]string{nil, {"--secure-block-compare"}} {
		copy(img[4096*(3+i):], "changed")
		write()
		out := r.ok(append(append(flags, extra...), src)...)
		if !strings.Contains(out, "blocks:      15 of changed files equal to the parent's") {
			t.Fatalf("backup %v: %s", extra, out)
		}
	}
	target := filepath.Join(dir, "restore")
	r.ok("restore", "latest", "--target", target)
	if b, _ := os.ReadFile(filepath.Join(target, "img")); !bytes.Equal(b, img) {
		t.Fatal("restored img differs from the source")
	}
}
