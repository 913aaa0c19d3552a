package postgres_test

import (
	"context"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/catalogtest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/postgres"
	pgtest "github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
)

// catalogtest.Store mirrors engine.Store, which the catalog may not import.
var _ catalogtest.Store = (*postgres.Store)(nil)

func TestConformance(t *testing.T) {
	srv := pgtest.Start(t)
	catalogtest.Run(t, func(t *testing.T) catalogtest.Store {
		s, err := postgres.Open(context.Background(), srv.CreateDatabase(t), postgres.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}
