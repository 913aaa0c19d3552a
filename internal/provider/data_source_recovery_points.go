package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/datasource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

var (
	_ datasource.DataSourceWithConfigure      = (*recoveryPointsDataSource)(nil)
	_ datasource.DataSourceWithValidateConfig = (*recoveryPointsDataSource)(nil)
)

// NewRecoveryPointsDataSource is the constructor the provider registers.
func NewRecoveryPointsDataSource() datasource.DataSource { return &recoveryPointsDataSource{} }

type recoveryPointsDataSource struct {
	engine *engine.Engine
}

func (d *recoveryPointsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_recovery_points"
}

func (d *recoveryPointsDataSource) Schema(ctx context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Recovery points (point-in-time copies) recorded by backup runs, newest first, filtered by " +
			"cluster, protection group, workload, repository and time. Use an `id` as a restore job's `recovery_point`. " +
			"When the catalog has none that match (a new catalog over an existing repository), the repositories of the " +
			"selected cluster, group or repository are read and indexed first.",
		Attributes: map[string]schema.Attribute{
			"cluster":    schema.StringAttribute{MarkdownDescription: "Only recovery points of this cluster.", Optional: true, Validators: []validator.String{validate.Name()}},
			"group":      schema.StringAttribute{MarkdownDescription: "Only recovery points of this protection group.", Optional: true, Validators: []validator.String{validate.Name()}},
			"workload":   schema.StringAttribute{MarkdownDescription: "Only recovery points of this workload.", Optional: true, Validators: []validator.String{validate.Name()}},
			"repository": schema.StringAttribute{MarkdownDescription: "Only recovery points in this repository.", Optional: true, Validators: []validator.String{validate.Name()}},
			"from":       schema.StringAttribute{MarkdownDescription: "Only recovery points taken at or after this time (RFC 3339).", Optional: true, Validators: []validator.String{validate.RFC3339()}},
			"to":         schema.StringAttribute{MarkdownDescription: "Only recovery points taken before this time (RFC 3339).", Optional: true, Validators: []validator.String{validate.RFC3339()}},
			"latest":     schema.StringAttribute{MarkdownDescription: "Id of the newest matching recovery point; empty if none.", Computed: true},
			"recovery_points": schema.ListNestedAttribute{
				MarkdownDescription: "Matching recovery points, newest first.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"id":          schema.StringAttribute{MarkdownDescription: "Recovery point (snapshot) id.", Computed: true},
					"created_at":  schema.StringAttribute{MarkdownDescription: "When the point-in-time copy was taken (RFC 3339).", Computed: true},
					"workload":    schema.StringAttribute{MarkdownDescription: "Workload.", Computed: true},
					"group":       schema.StringAttribute{MarkdownDescription: "Protection group.", Computed: true},
					"cluster":     schema.StringAttribute{MarkdownDescription: "Cluster.", Computed: true},
					"repository":  schema.StringAttribute{MarkdownDescription: "Repository.", Computed: true},
					"node":        schema.StringAttribute{MarkdownDescription: "Node that took it (informational: it restores to any node).", Computed: true},
					"run_id":      schema.StringAttribute{MarkdownDescription: "Backup run that took it.", Computed: true},
					"consistency": schema.StringAttribute{MarkdownDescription: "`application` or `crash`.", Computed: true},
					"size":        schema.Int64Attribute{MarkdownDescription: "Logical size in bytes.", Computed: true},
				}},
			},
			"timeouts": timeouts.Attributes(ctx),
		},
	}
}

func (d *recoveryPointsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	if data := providerDataFrom(req.ProviderData, &resp.Diagnostics); data != nil {
		d.engine = data.engine
	}
}

func (d *recoveryPointsDataSource) ValidateConfig(ctx context.Context, req datasource.ValidateConfigRequest, resp *datasource.ValidateConfigResponse) {
	var m recoveryPointsModelV0
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if m.Cluster.IsNull() && m.Group.IsNull() && m.Workload.IsNull() {
		resp.Diagnostics.AddError("Missing Filter", "Set at least one of cluster, group or workload, so the list stays about one system.")
	}
	from, errFrom := time.Parse(time.RFC3339, m.From.ValueString())
	to, errTo := time.Parse(time.RFC3339, m.To.ValueString())
	if errFrom == nil && errTo == nil && !to.After(from) {
		resp.Diagnostics.AddAttributeError(path.Root("to"), "Empty Time Range", "to must be after from.")
	}
}

func (d *recoveryPointsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if d.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var m recoveryPointsModelV0
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	f := catalog.RecoveryPointFilter{Cluster: m.Cluster.ValueString(), Group: m.Group.ValueString(), Workload: m.Workload.ValueString(), Repository: m.Repository.ValueString()}
	f.From, _ = time.Parse(time.RFC3339, m.From.ValueString())
	f.To, _ = time.Parse(time.RFC3339, m.To.ValueString())
	// With none in the catalog, the repositories are indexed first (a new
	// catalog over an old repository), as restores do.
	points, indexErr, err := d.engine.FindRecoveryPoints(ctx, f)
	if err != nil {
		resp.Diagnostics.Append(diagCatalogError("listing recovery points", err))
		return
	}
	if indexErr != nil {
		resp.Diagnostics.AddWarning("Repository Not Indexed",
			"The catalog has no matching recovery point, and reading the repository for ones it has not indexed failed, so the list may be incomplete: "+indexErr.Error())
	}
	tflog.Info(ctx, "recovery points listed", map[string]any{"count": len(points)})
	m.Latest = types.StringValue("")
	if len(points) > 0 {
		m.Latest = types.StringValue(points[0].ID)
	}
	m.RecoveryPoints = make([]recoveryPointModelV0, len(points))
	for i, p := range points {
		m.RecoveryPoints[i] = recoveryPointModelV0{
			ID: types.StringValue(p.ID), CreatedAt: types.StringValue(p.CreatedAt.UTC().Format(time.RFC3339Nano)),
			Workload: types.StringValue(p.Workload), Group: types.StringValue(p.Group), Cluster: types.StringValue(p.Cluster),
			Repository: types.StringValue(p.Repository), Node: types.StringValue(p.Node), RunID: types.StringValue(p.RunID),
			Consistency: types.StringValue(p.Consistency), Size: types.Int64Value(p.Size),
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

type recoveryPointsModelV0 struct {
	Cluster        types.String           `tfsdk:"cluster"`
	Group          types.String           `tfsdk:"group"`
	Workload       types.String           `tfsdk:"workload"`
	Repository     types.String           `tfsdk:"repository"`
	From           types.String           `tfsdk:"from"`
	To             types.String           `tfsdk:"to"`
	Latest         types.String           `tfsdk:"latest"`
	RecoveryPoints []recoveryPointModelV0 `tfsdk:"recovery_points"`
	Timeouts       timeouts.Value         `tfsdk:"timeouts"`
}

type recoveryPointModelV0 struct {
	ID          types.String `tfsdk:"id"`
	CreatedAt   types.String `tfsdk:"created_at"`
	Workload    types.String `tfsdk:"workload"`
	Group       types.String `tfsdk:"group"`
	Cluster     types.String `tfsdk:"cluster"`
	Repository  types.String `tfsdk:"repository"`
	Node        types.String `tfsdk:"node"`
	RunID       types.String `tfsdk:"run_id"`
	Consistency types.String `tfsdk:"consistency"`
	Size        types.Int64  `tfsdk:"size"`
}
