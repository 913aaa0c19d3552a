package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/datasource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

var _ datasource.DataSourceWithConfigure = (*registeredNodesDataSource)(nil)

// NewRegisteredNodesDataSource is the constructor the provider registers.
func NewRegisteredNodesDataSource() datasource.DataSource { return &registeredNodesDataSource{} }

type registeredNodesDataSource struct {
	engine *engine.Engine
}

func (d *registeredNodesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_registered_nodes"
}

func (d *registeredNodesDataSource) Schema(ctx context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Nodes whose agents announced themselves to an engine daemon (agents with an `engine` block " +
			"announce every 30s by default). Use it to find nodes to declare in a `clusterguard_cluster`, or agents that " +
			"stopped announcing (`stale`: not seen for three default announce intervals).",
		Attributes: map[string]schema.Attribute{
			"cluster": schema.StringAttribute{MarkdownDescription: "Only nodes that announced this cluster; default all.", Optional: true, Validators: []validator.String{validate.Name()}},
			"nodes": schema.ListNestedAttribute{
				MarkdownDescription: "Announced nodes, by cluster then node name.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"cluster":   schema.StringAttribute{MarkdownDescription: "Cluster the agent says it belongs to (empty if it does not know).", Computed: true},
					"node":      schema.StringAttribute{MarkdownDescription: "Node name in the agent's configuration.", Computed: true},
					"endpoint":  schema.StringAttribute{MarkdownDescription: "Endpoint the agent advertises (use it in `clusterguard_cluster.nodes`).", Computed: true},
					"volume_id": schema.StringAttribute{MarkdownDescription: "Identity of the shared volume the agent serves.", Computed: true},
					"version":   schema.StringAttribute{MarkdownDescription: "Agent version.", Computed: true},
					"workloads": schema.ListAttribute{MarkdownDescription: "Workloads the agent manages.", Computed: true, ElementType: types.StringType},
					"seen_at":   schema.StringAttribute{MarkdownDescription: "Last announcement (RFC 3339).", Computed: true},
					"stale":     schema.BoolAttribute{MarkdownDescription: "Whether the last announcement is older than three default announce intervals (90s).", Computed: true},
				}},
			},
			"timeouts": timeouts.Attributes(ctx),
		},
	}
}

func (d *registeredNodesDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	if data := providerDataFrom(req.ProviderData, &resp.Diagnostics); data != nil {
		d.engine = data.engine
	}
}

func (d *registeredNodesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if d.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var m registeredNodesModelV0
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := m.Timeouts.Read(ctx, time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nodes, err := d.engine.RegisteredNodes(ctx, m.Cluster.ValueString())
	if err != nil {
		resp.Diagnostics.Append(diagCatalogError("listing registered nodes", err))
		return
	}
	tflog.Info(ctx, "registered nodes listed", map[string]any{"count": len(nodes)})
	m.Nodes = make([]registeredNodeModelV0, len(nodes))
	for i, n := range nodes {
		w, d := types.ListValueFrom(ctx, types.StringType, nonNil(n.Workloads))
		resp.Diagnostics.Append(d...)
		m.Nodes[i] = registeredNodeModelV0{
			Cluster: types.StringValue(n.Cluster), Node: types.StringValue(n.Node), Endpoint: types.StringValue(n.Endpoint),
			VolumeID: types.StringValue(n.VolumeID), Version: types.StringValue(n.Version), Workloads: w,
			SeenAt: types.StringValue(rfc3339OrEmpty(n.SeenAt)), Stale: types.BoolValue(n.Stale),
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// registrationDrift warns about nodes that announced themselves for
// cluster but are not declared, and declared nodes that stopped announcing.
// A catalog error only goes to the log: registrations are advisory.
func registrationDrift(ctx context.Context, eng *engine.Engine, c catalog.Cluster) diag.Diagnostics {
	var diags diag.Diagnostics
	cluster := c.Name
	declared := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		declared[i] = n.Name
	}
	undeclared, stale, err := eng.RegistrationDrift(ctx, cluster, declared)
	if err != nil {
		tflog.Warn(ctx, "node registrations unavailable", map[string]any{"cluster": cluster, "error": err.Error()})
		return nil
	}
	for _, n := range undeclared {
		diags.Append(diagNodeRegisteredUndeclared(cluster, n))
	}
	for _, n := range stale {
		diags.Append(diagNodeRegistrationStale(cluster, n))
	}
	return diags
}

type registeredNodesModelV0 struct {
	Cluster  types.String            `tfsdk:"cluster"`
	Nodes    []registeredNodeModelV0 `tfsdk:"nodes"`
	Timeouts timeouts.Value          `tfsdk:"timeouts"`
}

type registeredNodeModelV0 struct {
	Cluster   types.String `tfsdk:"cluster"`
	Node      types.String `tfsdk:"node"`
	Endpoint  types.String `tfsdk:"endpoint"`
	VolumeID  types.String `tfsdk:"volume_id"`
	Version   types.String `tfsdk:"version"`
	Workloads types.List   `tfsdk:"workloads"`
	SeenAt    types.String `tfsdk:"seen_at"`
	Stale     types.Bool   `tfsdk:"stale"`
}
