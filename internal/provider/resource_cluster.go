package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

var (
	_ resource.ResourceWithConfigure      = (*clusterResource)(nil)
	_ resource.ResourceWithImportState    = (*clusterResource)(nil)
	_ resource.ResourceWithValidateConfig = (*clusterResource)(nil)
)

// NewClusterResource is the constructor the provider registers.
func NewClusterResource() resource.Resource { return &clusterResource{} }

type clusterResource struct {
	engine *engine.Engine
	// insecurePlaintext: the provider allows http:// endpoints to other hosts.
	insecurePlaintext bool
}

func (r *clusterResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster"
}

func (r *clusterResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Registers a cluster of nodes that share a volume (M1, M2). Create verifies that every node's " +
			"agent is reachable, accepts the provider's token, calls itself by the node name given here, and serves the " +
			"same shared volume; then records the cluster in the engine's catalog. Refresh probes every node again: a node " +
			"that became unreachable or now serves another volume is left out of `nodes` in the refreshed state (with a " +
			"warning), so the next plan shows it as drift. Destroy only unregisters the cluster: workloads are never touched.",
		Attributes: map[string]schema.Attribute{
			"id":   idAttribute("The cluster name."),
			"name": catalogNameReplacing("Cluster name, unique in the catalog: 1-63 letters, digits, `-`, `_` or `.`. Changing it replaces the registration."),
			"shared_volume": schema.StringAttribute{
				MarkdownDescription: "Absolute path where every node mounts the shared volume; must equal each agent's `shared_volume` setting.",
				Required:            true,
				Validators:          []validator.String{validate.AbsolutePath()},
			},
			"nodes": schema.MapAttribute{
				MarkdownDescription: "Node name → agent endpoint (`https://HOST:PORT`; `http://` only to loopback unless the provider sets `insecure_plaintext`). Each key must be the `node` name in that agent's configuration; endpoints must be unique.",
				Required:            true,
				ElementType:         types.StringType,
				Validators: []validator.Map{
					mapvalidator.SizeAtLeast(1),
					mapvalidator.KeysAre(validate.Name()),
					mapvalidator.ValueStringsAre(validate.Endpoint()),
				},
			},
			"join_order": schema.StringAttribute{
				MarkdownDescription: "How nodes are verified when registering (M2): `sequential` (one at a time in `join_sequence` order, stopping at the first failure) or `parallel` (all at once, reporting every failure). Default `sequential`.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(engine.JoinSequential),
				Validators:          []validator.String{stringvalidator.OneOf(engine.JoinOrders...)},
			},
			"join_sequence": schema.ListAttribute{
				MarkdownDescription: "Order of nodes for a sequential join: every node name once. Default: node names sorted.",
				Optional:            true,
				ElementType:         types.StringType,
				Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.UniqueValues()},
			},
			"master_policy": schema.StringAttribute{
				MarkdownDescription: "How the master node that starts a backup run is chosen (E1): `fixed` (`master_node`), `random`, `most_free_resources` (free memory weighted by idle CPU) or `lowest_failure_rate` (agent failures per hour). Default `most_free_resources`.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(engine.MasterMostFreeResources),
				Validators:          []validator.String{stringvalidator.OneOf(engine.MasterPolicies...)},
			},
			"master_node": schema.StringAttribute{
				MarkdownDescription: "The master node when `master_policy = \"fixed\"`; must be a key of `nodes`.",
				Optional:            true,
				Validators:          []validator.String{validate.Name()},
			},
			"shared_volume_id": schema.StringAttribute{
				MarkdownDescription: "Identity of the shared volume, read from `.clusterguard/volume-id` on the volume when the cluster was registered.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"node_status": schema.MapNestedAttribute{
				MarkdownDescription: "Per node, what the last refresh observed.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"endpoint":         schema.StringAttribute{MarkdownDescription: "Agent endpoint.", Computed: true},
					"reachable":        schema.BoolAttribute{MarkdownDescription: "Whether the agent answered.", Computed: true},
					"agent_version":    schema.StringAttribute{MarkdownDescription: "Version the agent reports.", Computed: true},
					"active_workloads": schema.Int64Attribute{MarkdownDescription: "Number of workloads active on the node.", Computed: true},
					"shared_volume_id": schema.StringAttribute{MarkdownDescription: "Volume identity the node reports.", Computed: true},
					"problem":          schema.StringAttribute{MarkdownDescription: "Empty when healthy, else `unreachable`, `unauthorized`, `name_mismatch`, `volume_mismatch` or `agent_error`.", Computed: true},
					"error":            schema.StringAttribute{MarkdownDescription: "What failed, when `problem` is set.", Computed: true},
				}},
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Read: true, Update: true, Delete: true}),
		},
	}
}

func (r *clusterResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if data := providerDataFrom(req.ProviderData, &resp.Diagnostics); data != nil {
		r.engine, r.insecurePlaintext = data.engine, data.insecurePlaintext
	}
}

func (r *clusterResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m clusterResourceModelV0
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.Nodes.IsUnknown() || m.MasterPolicy.IsUnknown() || m.MasterNode.IsUnknown() || m.JoinSequence.IsUnknown() {
		return
	}
	spec, diags := m.spec(ctx)
	if diags.HasError() {
		return // element-level unknowns; checked again at apply
	}
	if spec.MasterPolicy == "" {
		spec.MasterPolicy = engine.MasterMostFreeResources
	}
	resp.Diagnostics.Append(diagValidation(engine.ValidateClusterRelations(spec))...)
}

func (r *clusterResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var plan clusterResourceModelV0
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, 5*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	spec, diags := plan.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if _, err := r.engine.GetCluster(ctx, spec.Name); err == nil {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cluster Already Registered",
			detail(fmt.Sprintf("A cluster named %q is already in the engine's catalog.", spec.Name),
				fmt.Sprintf("Import it instead (terraform import <address> %s), or choose another name.", spec.Name), nil))
		return
	} else if !isNotFound(err) {
		resp.Diagnostics.Append(diagCatalogError("looking up the cluster", err))
		return
	}
	tflog.Info(ctx, "registering cluster", map[string]any{"cluster": spec.Name, "nodes": len(spec.Nodes), "join_order": spec.JoinOrder})
	st, err := r.engine.RegisterCluster(ctx, spec)
	if err != nil {
		resp.Diagnostics.Append(diagClusterVerification(spec.Name, err)...)
		return
	}
	resp.Diagnostics.Append(plan.fill(ctx, st, plan.JoinSequence)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *clusterResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var state clusterResourceModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Read(ctx, 2*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	name := state.Name.ValueString()
	if name == "" {
		name = state.ID.ValueString()
	}
	st, err := r.engine.ClusterStatus(ctx, name)
	if isNotFound(err) {
		tflog.Warn(ctx, "cluster no longer in the catalog; removing from state", map[string]any{"cluster": name})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(diagCatalogError("reading the cluster", err))
		return
	}
	for _, n := range st.Nodes {
		if n.Err != nil {
			resp.Diagnostics.Append(diagNodeDrift(name, n))
		}
	}
	resp.Diagnostics.Append(registrationDrift(ctx, r.engine, st.Cluster)...)
	resp.Diagnostics.Append(state.fill(ctx, st, state.JoinSequence)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *clusterResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var plan clusterResourceModelV0
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, 5*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	spec, diags := plan.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Info(ctx, "re-verifying and updating cluster", map[string]any{"cluster": spec.Name})
	st, err := r.engine.RegisterCluster(ctx, spec)
	if err != nil {
		resp.Diagnostics.Append(diagClusterVerification(spec.Name, err)...)
		return
	}
	resp.Diagnostics.Append(plan.fill(ctx, st, plan.JoinSequence)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *clusterResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var state clusterResourceModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, 2*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	err := r.engine.UnregisterCluster(ctx, state.Name.ValueString())
	if err != nil && !isNotFound(err) {
		resp.Diagnostics.Append(diagCatalogError("unregistering the cluster", err))
	}
}

func (r *clusterResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if err := engine.ValidateName("name", req.ID); err != nil {
		resp.Diagnostics.AddError("Invalid Import ID", detail(fmt.Sprintf("%q is not a cluster name.", req.ID), "Import with the cluster's name: terraform import clusterguard_cluster.NAME CLUSTER_NAME", err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), req.ID)...)
}

type clusterResourceModelV0 struct {
	ID             types.String   `tfsdk:"id"`
	Name           types.String   `tfsdk:"name"`
	SharedVolume   types.String   `tfsdk:"shared_volume"`
	Nodes          types.Map      `tfsdk:"nodes"`
	JoinOrder      types.String   `tfsdk:"join_order"`
	JoinSequence   types.List     `tfsdk:"join_sequence"`
	MasterPolicy   types.String   `tfsdk:"master_policy"`
	MasterNode     types.String   `tfsdk:"master_node"`
	SharedVolumeID types.String   `tfsdk:"shared_volume_id"`
	NodeStatus     types.Map      `tfsdk:"node_status"`
	Timeouts       timeouts.Value `tfsdk:"timeouts"`
}

var nodeStatusType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"endpoint":         types.StringType,
	"reachable":        types.BoolType,
	"agent_version":    types.StringType,
	"active_workloads": types.Int64Type,
	"shared_volume_id": types.StringType,
	"problem":          types.StringType,
	"error":            types.StringType,
}}

func (m clusterResourceModelV0) spec(ctx context.Context) (engine.ClusterSpec, diag.Diagnostics) {
	var diags diag.Diagnostics
	s := engine.ClusterSpec{
		Name:         m.Name.ValueString(),
		SharedVolume: m.SharedVolume.ValueString(),
		MasterPolicy: m.MasterPolicy.ValueString(),
		MasterNode:   m.MasterNode.ValueString(),
		JoinOrder:    m.JoinOrder.ValueString(),
	}
	diags.Append(m.Nodes.ElementsAs(ctx, &s.Nodes, false)...)
	if !m.JoinSequence.IsNull() {
		diags.Append(m.JoinSequence.ElementsAs(ctx, &s.JoinSequence, false)...)
	}
	return s, diags
}

// fill writes what the engine observed into the model. Nodes that fail
// verification now are left out of nodes, so the next plan shows drift.
func (m *clusterResourceModelV0) fill(ctx context.Context, st engine.ClusterStatus, joinSequence types.List) diag.Diagnostics {
	var diags diag.Diagnostics
	c := st.Cluster
	m.ID = types.StringValue(c.Name)
	m.Name = types.StringValue(c.Name)
	m.SharedVolume = types.StringValue(c.SharedVolume)
	m.SharedVolumeID = types.StringValue(c.SharedVolumeID)
	m.MasterPolicy = types.StringValue(c.MasterPolicy)
	m.MasterNode = types.StringNull()
	if c.MasterNode != "" {
		m.MasterNode = types.StringValue(c.MasterNode)
	}
	m.JoinOrder = types.StringValue(c.JoinOrder)
	m.JoinSequence = joinSequence
	problems := map[string]bool{}
	status := map[string]attr.Value{}
	for _, n := range st.Nodes {
		errText := ""
		if n.Err != nil {
			problems[n.Name] = true
			errText = n.Err.Error()
		}
		obj, d := types.ObjectValue(nodeStatusType.AttrTypes, map[string]attr.Value{
			"endpoint":         types.StringValue(n.Endpoint),
			"reachable":        types.BoolValue(n.Reachable),
			"agent_version":    types.StringValue(n.AgentVersion),
			"active_workloads": types.Int64Value(int64(n.ActiveWorkloads)),
			"shared_volume_id": types.StringValue(n.SharedVolumeID),
			"problem":          types.StringValue(string(n.Problem)),
			"error":            types.StringValue(errText),
		})
		diags.Append(d...)
		status[n.Name] = obj
	}
	// Keep the user's spelling of endpoints for healthy nodes so a
	// normalised form (case, trailing slash) never shows as a diff.
	prior := map[string]string{}
	if !m.Nodes.IsNull() && !m.Nodes.IsUnknown() {
		diags.Append(m.Nodes.ElementsAs(ctx, &prior, false)...)
	}
	nodes := map[string]attr.Value{}
	for _, n := range c.Nodes {
		if problems[n.Name] {
			continue
		}
		ep := n.Endpoint
		if p, ok := prior[n.Name]; ok {
			if norm, err := engine.NormalizeEndpoint(p); err == nil && norm == n.Endpoint {
				ep = p
			}
		}
		nodes[n.Name] = types.StringValue(ep)
	}
	var d diag.Diagnostics
	m.Nodes, d = types.MapValue(types.StringType, nodes)
	diags.Append(d...)
	m.NodeStatus, d = types.MapValue(nodeStatusType, status)
	diags.Append(d...)
	return diags
}
