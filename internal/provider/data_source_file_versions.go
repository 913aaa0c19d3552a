package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/datasource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

var _ datasource.DataSourceWithConfigure = (*fileVersionsDataSource)(nil)

// NewFileVersionsDataSource is the constructor the provider registers.
func NewFileVersionsDataSource() datasource.DataSource { return &fileVersionsDataSource{} }

type fileVersionsDataSource struct {
	engine *engine.Engine
}

func (d *fileVersionsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_file_versions"
}

func (d *fileVersionsDataSource) Schema(ctx context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Previous versions of one file (M9): every recovery point of a workload that holds the file, " +
			"newest first, with its size, times and a content id, and whether it changed since the version before. Pick " +
			"one and restore it with a `clusterguard_restore_job` (`files`, `destination`).",
		Attributes: map[string]schema.Attribute{
			"repository": schema.StringAttribute{MarkdownDescription: "Repository name.", Required: true, Validators: []validator.String{validate.Name()}},
			"workload":   schema.StringAttribute{MarkdownDescription: "Workload name.", Required: true, Validators: []validator.String{validate.Name()}},
			"path":       schema.StringAttribute{MarkdownDescription: "The file, relative to the shared volume as backed up (e.g. `apps/web/config.yml`).", Required: true, Validators: []validator.String{validate.RelativePath()}},
			"cluster":    schema.StringAttribute{MarkdownDescription: "Only recovery points of this cluster.", Optional: true, Validators: []validator.String{validate.Name()}},
			"group":      schema.StringAttribute{MarkdownDescription: "Only recovery points of this protection group.", Optional: true, Validators: []validator.String{validate.Name()}},
			"versions": schema.ListNestedAttribute{
				MarkdownDescription: "Versions, newest first.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"recovery_point": schema.StringAttribute{MarkdownDescription: "Recovery point holding this version.", Computed: true},
					"created_at":     schema.StringAttribute{MarkdownDescription: "When the recovery point was taken (RFC 3339).", Computed: true},
					"size":           schema.Int64Attribute{MarkdownDescription: "File size in bytes.", Computed: true},
					"mode":           schema.StringAttribute{MarkdownDescription: "File mode, e.g. `-rw-r--r--`.", Computed: true},
					"modified_at":    schema.StringAttribute{MarkdownDescription: "The file's modification time (RFC 3339).", Computed: true},
					"content_id":     schema.StringAttribute{MarkdownDescription: "Content identity: equal ids mean equal bytes (a keyed hash; it reveals nothing about the content).", Computed: true},
					"unchanged":      schema.BoolAttribute{MarkdownDescription: "Same content as the next older version.", Computed: true},
				}},
			},
			"timeouts": timeouts.Attributes(ctx),
		},
	}
}

func (d *fileVersionsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	if data := providerDataFrom(req.ProviderData, &resp.Diagnostics); data != nil {
		d.engine = data.engine
	}
}

func (d *fileVersionsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if d.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var m fileVersionsModelV0
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := m.Timeouts.Read(ctx, 5*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	versions, err := d.engine.FileVersions(ctx, m.Repository.ValueString(), engine.FileVersionQuery{
		Workload: m.Workload.ValueString(), Path: m.Path.ValueString(), Cluster: m.Cluster.ValueString(), Group: m.Group.ValueString(),
	})
	if err != nil {
		resp.Diagnostics.Append(diagRepository(m.Repository.ValueString(), "reading file versions from", err)...)
		return
	}
	if len(versions) == 0 {
		resp.Diagnostics.AddWarning("No Versions Found", fmt.Sprintf("No recovery point of workload %q in repository %q holds %q. Check the path: it is relative to the shared volume, as the workload's paths are.", m.Workload.ValueString(), m.Repository.ValueString(), m.Path.ValueString()))
	}
	tflog.Info(ctx, "file versions listed", map[string]any{"path": m.Path.ValueString(), "versions": len(versions)})
	m.Versions = make([]fileVersionModelV0, len(versions))
	for i, v := range versions {
		m.Versions[i] = fileVersionModelV0{
			RecoveryPoint: types.StringValue(v.RecoveryPoint), CreatedAt: types.StringValue(v.CreatedAt.UTC().Format(time.RFC3339Nano)),
			Size: types.Int64Value(v.Size), Mode: types.StringValue(v.Mode), ModifiedAt: types.StringValue(v.ModifiedAt.UTC().Format(time.RFC3339Nano)),
			ContentID: types.StringValue(v.ContentID), Unchanged: types.BoolValue(v.Unchanged),
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

type fileVersionsModelV0 struct {
	Repository types.String         `tfsdk:"repository"`
	Workload   types.String         `tfsdk:"workload"`
	Path       types.String         `tfsdk:"path"`
	Cluster    types.String         `tfsdk:"cluster"`
	Group      types.String         `tfsdk:"group"`
	Versions   []fileVersionModelV0 `tfsdk:"versions"`
	Timeouts   timeouts.Value       `tfsdk:"timeouts"`
}

type fileVersionModelV0 struct {
	RecoveryPoint types.String `tfsdk:"recovery_point"`
	CreatedAt     types.String `tfsdk:"created_at"`
	Size          types.Int64  `tfsdk:"size"`
	Mode          types.String `tfsdk:"mode"`
	ModifiedAt    types.String `tfsdk:"modified_at"`
	ContentID     types.String `tfsdk:"content_id"`
	Unchanged     types.Bool   `tfsdk:"unchanged"`
}
