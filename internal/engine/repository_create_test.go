package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
)

func newRepoTestEngine(t *testing.T) *Engine {
	t.Helper()
	eng, err := New(Options{Store: memstore.New(), Dial: func(node, endpoint string) (AgentClient, error) {
		return nil, errors.New("no agents in this test")
	}})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// Registering a repository at a path that holds none (a typo) fails with a
// message that says so and how to create one, and creates nothing;
// CreateRepository initialises it, after which RegisterRepository attaches.
func TestRegisterRepositoryNeverCreates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := newRepoTestEngine(t)
	dir := filepath.Join(t.TempDir(), "repo")
	r := catalog.Repository{Name: "r", URL: dir, Password: "long enough password"}
	_, err := eng.RegisterRepository(ctx, r)
	if err == nil || !strings.Contains(err.Error(), "no repository at") || !strings.Contains(err.Error(), "set create = true") {
		t.Fatalf("register at an empty path: %v, want \"no repository at ...; set create = true\"", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("register at a missing path created %s (%v)", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RegisterRepository(ctx, r); err == nil || !strings.Contains(err.Error(), "set create = true") {
		t.Fatalf("register at an empty directory: %v", err)
	}
	if _, err := eng.GetRepository(ctx, "r"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("failed register recorded the repository: %v", err)
	}
	info, err := eng.CreateRepository(ctx, r)
	if err != nil || !info.Created {
		t.Fatalf("create: %+v, %v", info, err)
	}
	r.Name = "again"
	info, err = eng.RegisterRepository(ctx, r)
	if err != nil || info.Created {
		t.Fatalf("attach to the created repository: %+v, %v", info, err)
	}
}

// A new repository's password must have repository.MinPasswordLength
// characters; so must a changed one.
func TestCreateRepositoryRefusesShortPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := newRepoTestEngine(t)
	dir := filepath.Join(t.TempDir(), "repo")
	_, err := eng.CreateRepository(ctx, catalog.Repository{Name: "r", URL: dir, Password: "short"})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "password" || !strings.Contains(err.Error(), "at least 12") {
		t.Fatalf("create with a short password: %v, want a password validation error", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("refused create made %s (%v)", dir, err)
	}
	if _, err := eng.CreateRepository(ctx, catalog.Repository{Name: "r", URL: dir, Password: "long enough password"}); err != nil {
		t.Fatal(err)
	}
	if err := eng.ChangeRepositoryPassword(ctx, "r", "tiny"); !errors.As(err, &ve) {
		t.Fatalf("change to a short password: %v, want a validation error", err)
	}
}
