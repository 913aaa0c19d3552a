package daemon

import "github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"

// schedStore is the catalog the tests run on: the memory catalog, which
// implements the schedule contract (fenced slots, leadership, daemons).
type schedStore = memstore.Store

func newSchedStore() *schedStore { return memstore.New() }
