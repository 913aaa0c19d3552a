package provider

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

var _ resource.ResourceWithModifyPlan = (*clusterResource)(nil)

// agentTLS builds the TLS config for agents from ca_file and the client
// certificate (mutual TLS); nil when none is set (system roots).
func agentTLS(cfg providerModelV0, caFile string) (*tls.Config, diag.Diagnostics) {
	var diags diag.Diagnostics
	certFile := firstNonEmpty(cfg.ClientCertFile.ValueString(), os.Getenv("CLUSTERGUARD_CLIENT_CERT_FILE"))
	keyFile := firstNonEmpty(cfg.ClientKeyFile.ValueString(), os.Getenv("CLUSTERGUARD_CLIENT_KEY_FILE"))
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, diags
	}
	if caFile != "" {
		if _, err := engine.LoadCA(caFile); err != nil {
			diags.Append(diagBadCAFile(path.Root("ca_file"), caFile, err))
			return nil, diags
		}
	}
	tlsConfig, err := engine.LoadAgentTLS(caFile, certFile, keyFile)
	if err != nil {
		at := path.Root("client_cert_file")
		if certFile != "" && keyFile == "" {
			at = path.Root("client_key_file")
		}
		diags.AddAttributeError(at, "Unusable Client Certificate",
			detail("The client certificate for agents that require mutual TLS could not be loaded.",
				"Set client_cert_file and client_key_file to a PEM certificate signed by the CA in the agents' client_ca_file and its PEM key (see the README, \"Transport security\").", err))
		return nil, diags
	}
	return tlsConfig, diags
}

// ModifyPlan refuses, at plan time, plain-HTTP endpoints to other hosts
// unless the provider sets insecure_plaintext; the engine's dialer refuses
// them again at apply.
func (r *clusterResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if r.engine == nil || req.Plan.Raw.IsNull() {
		return // not configured yet, or a destroy
	}
	var m clusterResourceModelV0
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.Nodes.IsUnknown() || m.Nodes.IsNull() {
		return
	}
	nodes := map[string]string{}
	if d := m.Nodes.ElementsAs(ctx, &nodes, false); d.HasError() {
		return // element-level unknowns; the dialer checks at apply
	}
	for _, name := range slices.Sorted(maps.Keys(nodes)) {
		if err := engine.CheckAgentTransport(nodes[name], r.insecurePlaintext); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("nodes").AtMapKey(name), "Plain HTTP Agent Endpoint",
				detail(fmt.Sprintf("Node %s's endpoint %q would send the agent token in clear text over the network.", name, nodes[name]),
					"Give the agent a tls block and use https:// (see the README, \"Transport security\"), or set insecure_plaintext = true in the provider block (and in the agent config) if the network is trusted.", err))
		}
	}
}
