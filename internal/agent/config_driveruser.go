package agent

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/runas"
)

// driverUser decodes a driver block's user attribute (a user name or uid)
// and checks that the user exists on this node; why says what it is for.
func (p *configParser) driverUser(a *hcl.Attribute, why string) string {
	if a == nil {
		return ""
	}
	var name string
	if !p.decode(a.Expr, &name) {
		return ""
	}
	if name == "" {
		p.errorAt(a.Expr.Range(), "Empty user", fmt.Sprintf("give a user name or uid (%s), or remove user", why))
		return ""
	}
	if _, err := runas.Lookup(name); err != nil {
		p.errorAt(a.Expr.Range(), "Unknown user", fmt.Sprintf("%v: %s; create it on this node (with the same uid on every node) or name another", err, why))
	}
	return name
}
