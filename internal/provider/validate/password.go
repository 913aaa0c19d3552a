package validate

import (
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

// RepositoryPassword requires a password of at least
// engine.MinRepositoryPasswordLength characters. Its message gives the
// length, never the value.
func RepositoryPassword() validator.String {
	return stringFunc{
		desc:  fmt.Sprintf("at least %d characters", engine.MinRepositoryPasswordLength),
		check: engine.ValidateRepositoryPassword,
	}
}
