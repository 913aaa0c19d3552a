package provider

// Every diagnostic the provider shows is worded here: a title-case summary,
// then what failed, what to do, and the original error.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

func detail(what, todo string, err error) string {
	var b strings.Builder
	b.WriteString(what)
	if todo != "" {
		b.WriteString("\n\n" + todo)
	}
	if err != nil {
		b.WriteString("\n\nError: " + err.Error())
	}
	return b.String()
}

func diagMissingToken(p path.Path) diag.Diagnostic {
	return diag.NewAttributeErrorDiagnostic(p, "Missing Agent Token",
		detail("The provider has no token to authenticate to the clusterguard agents.",
			"Set agent_token in the provider block, or the environment variable CLUSTERGUARD_AGENT_TOKEN, to the content of the agents' token_file.", nil))
}

func diagBadCAFile(p path.Path, file string, err error) diag.Diagnostic {
	return diag.NewAttributeErrorDiagnostic(p, "Unusable CA File",
		detail(fmt.Sprintf("The certificate authority file %q could not be used to verify agent certificates.", file),
			"Point ca_file at a readable PEM file holding the CA certificate that signed the agents' TLS certificates.", err))
}

func diagCatalogOpen(p path.Path, file string, err error) diag.Diagnostic {
	hint := "Check that the directory is writable and the file is a clusterguard catalog; set catalog (or CLUSTERGUARD_CATALOG) to another path if needed."
	if isPostgresCatalog(file) {
		hint = "Check that the PostgreSQL server is running and reachable from here, and the URL's host, port, database, user, " +
			"password and sslmode (verify-full unless the URL says otherwise), and that a catalog key is set (CLUSTERGUARD_CATALOG_KEY)."
	}
	return diag.NewAttributeErrorDiagnostic(p, "Cannot Open Catalog",
		detail(fmt.Sprintf("The engine's catalog at %q could not be opened.", file), hint, err))
}

func diagInternal(during string, err error) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Internal Error",
		detail("Unexpected failure while "+during+".", "Please report this issue with the provider log (TF_LOG=DEBUG).", err))
}

func diagUnexpectedProviderData(got any) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Unexpected Provider Data",
		detail(fmt.Sprintf("Expected *providerData, got %T.", got), "Please report this issue to the provider developers.", nil))
}

func diagUnconfigured() diag.Diagnostic {
	return diag.NewErrorDiagnostic("Provider Not Configured",
		detail("The clusterguard provider was not configured, so the engine is not available.",
			"Make sure the provider block's values are known at plan time (not derived from resources not yet created).", nil))
}

// diagValidation turns engine validation errors into attribute errors.
func diagValidation(err error) diag.Diagnostics {
	var diags diag.Diagnostics
	verrs, rest := engine.ValidationErrors(err)
	for _, v := range verrs {
		p := path.Root(v.Field)
		if v.Key != "" {
			p = p.AtMapKey(v.Key)
		}
		diags.AddAttributeError(p, "Invalid "+titleField(v.Field), v.Reason)
	}
	for _, e := range rest {
		diags.AddError("Invalid Configuration", e.Error())
	}
	return diags
}

// diagClusterVerification explains every node that failed a check.
func diagClusterVerification(cluster string, err error) diag.Diagnostics {
	var diags diag.Diagnostics
	var cerr *engine.ClusterCheckError
	if !errors.As(err, &cerr) {
		if _, ok := engine.AsValidation(err); ok {
			return diagValidation(err)
		}
		diags.AddError("Cluster Registration Failed",
			detail(fmt.Sprintf("Cluster %q could not be registered.", cluster), "", err))
		return diags
	}
	for _, n := range cerr.Nodes {
		diags.AddAttributeError(path.Root("nodes").AtMapKey(n.Node), nodeProblemSummary(n.Problem),
			detail(fmt.Sprintf("Node %q at %s failed verification for cluster %q: %s.", n.Node, n.Endpoint, cluster, n.Detail),
				nodeProblemAdvice(n.Problem), n.Err))
	}
	return diags
}

func diagNodeDrift(cluster string, n engine.NodeStatus) diag.Diagnostic {
	return diag.NewAttributeWarningDiagnostic(path.Root("nodes").AtMapKey(n.Name), nodeProblemSummary(n.Problem),
		detail(fmt.Sprintf("Node %q of cluster %q no longer passes verification, so it is left out of the refreshed state and the next plan re-adds it.", n.Name, cluster),
			nodeProblemAdvice(n.Problem), n.Err))
}

func diagDigestUnreachable(cluster string, n *engine.NodeError) diag.Diagnostic {
	return diag.NewWarningDiagnostic(nodeProblemSummary(n.Problem),
		detail(fmt.Sprintf("Node %q (%s) of cluster %q could not be asked for its workloads; workloads not seen active elsewhere are reported with state \"unknown\".", n.Node, n.Endpoint, cluster),
			nodeProblemAdvice(n.Problem), n))
}

func diagClusterNotRegistered(cluster string, err error) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Cluster Not Registered",
		detail(fmt.Sprintf("Cluster %q is not in the engine's catalog.", cluster),
			"Create it with a clusterguard_cluster resource first (or check the provider's catalog setting points at the catalog that holds it).", err))
}

func diagCatalogError(during string, err error) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Catalog Error",
		detail("The engine's catalog failed while "+during+".", "Check the catalog file is writable and not on a full disk; retry the operation.", err))
}

func nodeProblemSummary(p engine.NodeProblem) string {
	switch p {
	case engine.ProblemUnreachable:
		return "Agent Unreachable"
	case engine.ProblemUnauthorized:
		return "Agent Refused Token"
	case engine.ProblemNameMismatch:
		return "Agent Node Name Mismatch"
	case engine.ProblemVolumeMismatch:
		return "Shared Volume Mismatch"
	default:
		return "Agent Error"
	}
}

func nodeProblemAdvice(p engine.NodeProblem) string {
	switch p {
	case engine.ProblemUnreachable:
		return "Check that the agent runs on the node (terraform-provider-clusterguard agent --config FILE), that the endpoint's host and port are right, and that nothing blocks the connection."
	case engine.ProblemUnauthorized:
		return "Set the provider's agent_token (or CLUSTERGUARD_AGENT_TOKEN) to the token in the agent's token_file."
	case engine.ProblemNameMismatch:
		return "Each key in nodes must be the node name the agent at that endpoint is configured with."
	case engine.ProblemVolumeMismatch:
		return "Every node must mount the same shared volume at the path given in shared_volume."
	default:
		return "See the agent's log on that node."
	}
}

func isNotFound(err error) bool { return errors.Is(err, catalog.ErrNotFound) }

func titleField(f string) string {
	words := strings.Split(f, "_")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

func diagRepository(name, during string, err error) diag.Diagnostics {
	if _, ok := engine.AsValidation(err); ok {
		return diagValidation(err)
	}
	var diags diag.Diagnostics
	switch {
	case errors.Is(err, engine.ErrWrongPassword):
		diags.AddAttributeError(path.Root("password"), "Wrong Repository Password",
			detail(fmt.Sprintf("Repository %q already exists at its url and the password does not open it.", name),
				"Use the repository's password, or point url at an empty location to create a new repository.", err))
	case isNotFound(err):
		diags.AddError("Repository Not Registered", detail(fmt.Sprintf("Repository %q is not in the engine's catalog.", name),
			"Create it with a clusterguard_repository resource, or import it.", err))
	default:
		diags.AddError("Repository Error", detail(fmt.Sprintf("Failed %s repository %q.", during, name),
			"Check that the location is reachable from this machine and from every node, and that the credentials allow reading and writing.", err))
	}
	return diags
}
