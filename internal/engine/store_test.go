package engine

import (
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/postgres"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlite"
)

// Every catalog implementation is a Store.
var (
	_ Store = (*sqlite.Store)(nil)
	_ Store = (*postgres.Store)(nil)
	_ Store = (*memstore.Store)(nil)
)
