package provider

import "github.com/clusterguard/terraform-provider-clusterguard/internal/engine/catalogopen"

// The catalog key's environment variables (catalogopen seals the catalog's
// repository secrets with it).
const (
	envCatalogKey     = catalogopen.EnvCatalogKey
	envCatalogKeyFile = catalogopen.EnvCatalogKeyFile
)

func isPostgresCatalog(where string) bool { return catalogopen.IsPostgres(where) }
