package provider

import (
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

// diagRepositoryNotOnNodes explains, one diagnostic per node, a repository
// some agents cannot open: agents open only the repositories their own
// config defines, under the clusterguard_repository's name. ok is false
// when err is another error.
func diagRepositoryNotOnNodes(attr string, err error) (diags diag.Diagnostics, ok bool) {
	var rerr *engine.RepositoryNotOnNodesError
	if !errors.As(err, &rerr) {
		return nil, false
	}
	for _, n := range rerr.Nodes {
		summary, todo := "Repository Not Configured On Agent", fmt.Sprintf(
			"Agents open only the repositories their config defines (they take no URL or password from the engine). The agent config of node %q needs a `repository %q { url = \"...\", password_file = \"...\" }` block with the repository's url and a file (mode 0600) holding its password; the block's name must equal the clusterguard_repository's name. Restart the agent after adding it.",
			n.Node, rerr.Repository)
		diags.AddAttributeError(path.Root(attr), summary,
			detail(fmt.Sprintf("Node %q (%s) of cluster %q cannot use repository %q: %s.", n.Node, n.Endpoint, rerr.Cluster, rerr.Repository, n.Detail), todo, nil))
	}
	return diags, true
}
