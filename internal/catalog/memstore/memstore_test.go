package memstore_test

import (
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/catalogtest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
)

func TestConformance(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalogtest.Store { return memstore.New() })
}
