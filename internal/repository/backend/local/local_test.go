package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) repository.Backend {
		b, err := local.Create(filepath.Join(t.TempDir(), "repo"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestConformanceOpenedWithoutLayout(t *testing.T) {
	// A repository directory without the type directories (copied by a tool
	// that drops empty directories) must still work: saves create them.
	backendtest.Run(t, func(t *testing.T) repository.Backend {
		b, err := local.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestLayoutAndPermissions(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "repo")
	b, err := local.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	id := backendtest.ID("layout")
	saves := map[repository.Handle]string{
		{Type: repository.ConfigFile, Name: "config"}: "config",
		{Type: repository.KeyFile, Name: id}:          "keys/" + id,
		{Type: repository.PackFile, Name: id}:         "data/" + id[:2] + "/" + id,
		{Type: repository.IndexFile, Name: id}:        "index/" + id,
		{Type: repository.SnapshotFile, Name: id}:     "snapshots/" + id,
		{Type: repository.LockFile, Name: id}:         "locks/" + id,
		{Type: repository.PackFile, Name: "ABCDEF01"}: "data/AB/ABCDEF01",
	}
	for h, rel := range saves {
		if err := b.Save(ctx, h, []byte(rel)); err != nil {
			t.Fatalf("Save %v: %v", h, err)
		}
		p := filepath.Join(root, rel)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != rel {
			t.Errorf("%s/%s not at %s: %q, %v", h.Type, h.Name, rel, got, err)
			continue
		}
		fi, _ := os.Stat(p)
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %o, want 0600", rel, perm)
		}
		di, _ := os.Stat(filepath.Dir(p))
		if perm := di.Mode().Perm(); perm != 0o700 {
			t.Errorf("directory of %s has mode %o, want 0700", rel, perm)
		}
	}
	if fi, _ := os.Stat(root); fi.Mode().Perm() != 0o700 {
		t.Errorf("repository directory has mode %o, want 0700", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "data")); len(entries) != 257 {
		t.Errorf("data/ has %d entries, want 256 fan-out directories plus AB", len(entries))
	}
	assertNoTempFiles(t, root)
}

func assertNoTempFiles(t *testing.T, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

func TestCancelledSaveLeavesNoTempFile(t *testing.T) {
	root := t.TempDir()
	b, err := local.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Save(ctx, repository.Handle{Type: repository.PackFile, Name: backendtest.ID("c")}, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Save = %v, want context.Canceled", err)
	}
	assertNoTempFiles(t, root)
}

func TestListIgnoresTempAndForeignFiles(t *testing.T) {
	// A crash between create and rename leaves a temporary file; other tools
	// may leave dot-files or directories. None of them are objects.
	root := t.TempDir()
	b, err := local.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	id := backendtest.ID("real")
	if err := b.Save(context.Background(), repository.Handle{Type: repository.PackFile, Name: id}, []byte("pack")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"data/" + id[:2] + "/." + id + ".tmp-123",
		"index/.abc.tmp-9",
		"snapshots/.DS_Store",
		".config.tmp-77",
	} {
		if err := os.WriteFile(filepath.Join(root, p), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "index", "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got := backendtest.SortedNames(t, b, repository.PackFile); len(got) != 1 || got[0] != id {
		t.Errorf("List data = %v, want [%s]", got, id)
	}
	for _, ft := range []repository.FileType{repository.IndexFile, repository.SnapshotFile, repository.ConfigFile} {
		if got := backendtest.SortedNames(t, b, ft); len(got) != 0 {
			t.Errorf("List %s = %v, want nothing", ft, got)
		}
	}
}

func TestRejectsNamesThatEscape(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "repo")
	b, err := local.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, h := range []repository.Handle{
		{Type: repository.SnapshotFile, Name: "../escaped"},
		{Type: repository.SnapshotFile, Name: ".."},
		{Type: repository.IndexFile, Name: "a/b"},
		{Type: repository.KeyFile, Name: `a\b`},
		{Type: repository.PackFile, Name: "x"},
		{Type: repository.PackFile, Name: ".hidden"},
		{Type: repository.ConfigFile, Name: "data"},
		{Type: repository.FileType("bogus"), Name: "abcd"},
	} {
		if err := b.Save(ctx, h, []byte("x")); err == nil {
			t.Errorf("Save %q/%q succeeded, want an error", h.Type, h.Name)
		}
		if _, err := b.Load(ctx, h, 0, 0); err == nil || errors.Is(err, repository.ErrNotExist) {
			t.Errorf("Load %q/%q = %v, want a name error", h.Type, h.Name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(parent, "escaped")); err == nil {
		t.Error("a name with ../ wrote outside the repository")
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	if _, err := local.Open(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open of a missing directory = %v, want a 'does not exist' error", err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Open(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Open of a file = %v, want 'not a directory'", err)
	}
	// Create then Open sees the same objects.
	root := filepath.Join(dir, "repo")
	b, err := local.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	h := repository.Handle{Type: repository.ConfigFile, Name: "config"}
	if err := b.Save(context.Background(), h, []byte("cfg")); err != nil {
		t.Fatal(err)
	}
	b2, err := local.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b2.Load(context.Background(), h, 0, 0); err != nil || string(got) != "cfg" {
		t.Fatalf("Load via Open = %q, %v", got, err)
	}
	// Create on an existing repository keeps its objects.
	b3, err := local.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b3.Stat(context.Background(), h); err != nil {
		t.Fatalf("Create over an existing directory lost the config: %v", err)
	}
	if b3.Location() != "local:"+root {
		t.Errorf("Location = %q", b3.Location())
	}
}
