package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/catalogtest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlite"
)

// catalogtest.Store mirrors engine.Store, which the catalog may not import.
var _ catalogtest.Store = (*sqlite.Store)(nil)

func TestConformance(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalogtest.Store {
		return openTemp(t)
	})
}

func openTemp(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "catalog.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}
