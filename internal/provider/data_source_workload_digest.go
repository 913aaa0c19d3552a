package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/datasource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

var _ datasource.DataSourceWithConfigure = (*workloadDigestDataSource)(nil)

// NewWorkloadDigestDataSource is the constructor the provider registers.
func NewWorkloadDigestDataSource() datasource.DataSource { return &workloadDigestDataSource{} }

type workloadDigestDataSource struct {
	engine *engine.Engine
}

func (d *workloadDigestDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_workload_digest"
}

func (d *workloadDigestDataSource) Schema(ctx context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The digest of a cluster's workloads (E14): where every workload is and in which state, asked " +
			"of every node's agent in parallel at read time. A workload active on two or more nodes is reported with state " +
			"`conflict` and all of those nodes, never resolved silently. A node that cannot be asked produces a warning, and " +
			"workloads not seen active elsewhere get state `unknown`; the rest of the digest is still returned.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{MarkdownDescription: "The cluster name.", Computed: true},
			"cluster": schema.StringAttribute{
				MarkdownDescription: "Name of a registered cluster (`clusterguard_cluster.<name>.name`).",
				Required:            true,
				Validators:          []validator.String{validate.Name()},
			},
			"node": schema.StringAttribute{
				MarkdownDescription: "Only workloads active on this node.",
				Optional:            true,
				Validators:          []validator.String{validate.Name()},
			},
			"state": schema.StringAttribute{
				MarkdownDescription: "Only workloads in this state: `active`, `inactive`, `failed`, `unknown` or `conflict`.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.OneOf(engine.DigestStates...)},
			},
			"driver": schema.StringAttribute{
				MarkdownDescription: "Only workloads of this driver: `exec`, `postgresql` or `qemu`.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.OneOf(api.Drivers...)},
			},
			"name_regex": schema.StringAttribute{
				MarkdownDescription: "Only workloads whose name matches this regular expression (RE2 syntax).",
				Optional:            true,
				Validators:          []validator.String{validate.Regex()},
			},
			"backup_older_than": schema.StringAttribute{
				MarkdownDescription: "Only workloads whose newest recovery point is older than this duration (e.g. `24h`), or that have none: the ones to worry about.",
				Optional:            true,
				Validators:          []validator.String{validate.Duration(time.Minute, 100*365*24*time.Hour)},
			},
			"restore_older_than": schema.StringAttribute{
				MarkdownDescription: "Only workloads last restored longer ago than this duration (e.g. `720h`), or never: the ones whose restore has not been exercised lately.",
				Optional:            true,
				Validators:          []validator.String{validate.Duration(time.Minute, 100*365*24*time.Hour)},
			},
			"min_backup_failure_rate": schema.Float64Attribute{
				MarkdownDescription: "Only workloads whose `backup_failure_rate` is at least this fraction (0 < x <= 1); workloads no run has tried to back up are left out.",
				Optional:            true,
				Validators:          []validator.Float64{float64validator.Between(0.000001, 1)},
			},
			"unreachable_nodes": schema.ListAttribute{
				MarkdownDescription: "Nodes whose agent could not be asked at read time.",
				Computed:            true,
				ElementType:         types.StringType,
			},
			"workloads": schema.ListNestedAttribute{
				MarkdownDescription: "Matching workloads, sorted by name.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name":                schema.StringAttribute{MarkdownDescription: "Workload name.", Computed: true},
					"node":                schema.StringAttribute{MarkdownDescription: "Node the workload is active on; empty unless it is active on exactly one node.", Computed: true},
					"nodes":               schema.ListAttribute{MarkdownDescription: "Every node the workload is active on (two or more when `state` is `conflict`).", Computed: true, ElementType: types.StringType},
					"state":               schema.StringAttribute{MarkdownDescription: "`active`, `inactive`, `failed`, `unknown` or `conflict`.", Computed: true},
					"driver":              schema.StringAttribute{MarkdownDescription: "Workload driver.", Computed: true},
					"paths":               schema.ListAttribute{MarkdownDescription: "Data paths relative to the shared volume.", Computed: true, ElementType: types.StringType},
					"error":               schema.StringAttribute{MarkdownDescription: "Why the state is `failed`, `unknown` or `conflict`; empty otherwise.", Computed: true},
					"observed_at":         schema.StringAttribute{MarkdownDescription: "When an agent last probed the workload (RFC 3339).", Computed: true},
					"last_backup_at":      schema.StringAttribute{MarkdownDescription: "Time of the workload's newest recovery point in this cluster (RFC 3339); empty if none.", Computed: true},
					"last_recovery_point": schema.StringAttribute{MarkdownDescription: "Id of that recovery point; empty if none.", Computed: true},
					"last_restore_at":     schema.StringAttribute{MarkdownDescription: "When a restore of the workload (or of some of its files) last completed, from the catalog's restore operations (RFC 3339); empty if never.", Computed: true},
					"backup_attempts":     schema.Int64Attribute{MarkdownDescription: fmt.Sprintf("Finished backup runs, among the last %d of each protection group, that expected the workload.", engine.HistoryRuns), Computed: true},
					"backup_failure_rate": schema.Float64Attribute{MarkdownDescription: "Fraction of those runs that did not capture the workload (0 to 1; 0 when `backup_attempts` is 0).", Computed: true},
				}},
			},
			"timeouts": timeouts.Attributes(ctx),
		},
	}
}

func (d *workloadDigestDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	if data := providerDataFrom(req.ProviderData, &resp.Diagnostics); data != nil {
		d.engine = data.engine
	}
}

func (d *workloadDigestDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if d.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var m workloadDigestModelV0
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := m.Timeouts.Read(ctx, 2*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cluster := m.Cluster.ValueString()
	digest, err := d.engine.Digest(ctx, cluster, engine.DigestFilter{
		Node: m.Node.ValueString(), State: m.State.ValueString(), Driver: m.Driver.ValueString(), NameRegex: m.NameRegex.ValueString(),
		BackupOlderThan:      parseDuration(m.BackupOlderThan.ValueString()),
		RestoreOlderThan:     parseDuration(m.RestoreOlderThan.ValueString()),
		MinBackupFailureRate: m.MinBackupFailureRate.ValueFloat64(),
	})
	switch {
	case isNotFound(err):
		resp.Diagnostics.Append(diagClusterNotRegistered(cluster, err))
		return
	case err != nil:
		var none *engine.NoNodeAnsweredError
		if _, ok := engine.AsValidation(err); ok {
			resp.Diagnostics.Append(diagValidation(err)...)
		} else if errors.As(err, &none) {
			resp.Diagnostics.AddError("No Node Answered",
				detail(fmt.Sprintf("Not one agent of cluster %q reported its workloads, so the digest cannot say where any workload runs (an empty digest would claim none runs).", cluster),
					"Check the agents run and answer at their endpoints, and that the provider's agent_token is the token in the agents' token_file; then read the digest again.", err))
		} else {
			resp.Diagnostics.Append(diagCatalogError("building the workload digest", err))
		}
		return
	}
	unreachable := make([]string, 0, len(digest.Unreachable))
	for _, n := range digest.Unreachable {
		resp.Diagnostics.Append(diagDigestUnreachable(cluster, n))
		unreachable = append(unreachable, n.Node)
	}
	tflog.Info(ctx, "workload digest read", map[string]any{"cluster": cluster, "workloads": len(digest.Workloads), "unreachable_nodes": len(unreachable)})

	m.ID = types.StringValue(cluster)
	m.UnreachableNodes, diags = types.ListValueFrom(ctx, types.StringType, unreachable)
	resp.Diagnostics.Append(diags...)
	m.Workloads = make([]digestWorkloadModelV0, len(digest.Workloads))
	for i, w := range digest.Workloads {
		nodes, d1 := types.ListValueFrom(ctx, types.StringType, w.Nodes)
		paths, d2 := types.ListValueFrom(ctx, types.StringType, nonNil(w.Paths))
		resp.Diagnostics.Append(d1...)
		resp.Diagnostics.Append(d2...)
		observed := ""
		if !w.ObservedAt.IsZero() {
			observed = w.ObservedAt.UTC().Format(time.RFC3339)
		}
		m.Workloads[i] = digestWorkloadModelV0{
			Name: types.StringValue(w.Name), Node: types.StringValue(w.Node), Nodes: nodes,
			State: types.StringValue(w.State), Driver: types.StringValue(w.Driver), Paths: paths,
			Error: types.StringValue(w.Error), ObservedAt: types.StringValue(observed),
			LastBackupAt: types.StringValue(formatTime(w.LastBackupAt)), LastRecoveryPoint: types.StringValue(w.LastRecoveryPoint),
			LastRestoreAt:  types.StringValue(formatTime(w.LastRestoreAt)),
			BackupAttempts: types.Int64Value(int64(w.BackupAttempts)), BackupFailureRate: types.Float64Value(w.BackupFailureRate()),
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

type workloadDigestModelV0 struct {
	ID                   types.String            `tfsdk:"id"`
	Cluster              types.String            `tfsdk:"cluster"`
	Node                 types.String            `tfsdk:"node"`
	State                types.String            `tfsdk:"state"`
	Driver               types.String            `tfsdk:"driver"`
	NameRegex            types.String            `tfsdk:"name_regex"`
	BackupOlderThan      types.String            `tfsdk:"backup_older_than"`
	RestoreOlderThan     types.String            `tfsdk:"restore_older_than"`
	MinBackupFailureRate types.Float64           `tfsdk:"min_backup_failure_rate"`
	UnreachableNodes     types.List              `tfsdk:"unreachable_nodes"`
	Workloads            []digestWorkloadModelV0 `tfsdk:"workloads"`
	Timeouts             timeouts.Value          `tfsdk:"timeouts"`
}

type digestWorkloadModelV0 struct {
	Name       types.String `tfsdk:"name"`
	Node       types.String `tfsdk:"node"`
	Nodes      types.List   `tfsdk:"nodes"`
	State      types.String `tfsdk:"state"`
	Driver     types.String `tfsdk:"driver"`
	Paths      types.List   `tfsdk:"paths"`
	Error      types.String `tfsdk:"error"`
	ObservedAt types.String `tfsdk:"observed_at"`

	LastBackupAt      types.String `tfsdk:"last_backup_at"`
	LastRecoveryPoint types.String `tfsdk:"last_recovery_point"`
	LastRestoreAt     types.String `tfsdk:"last_restore_at"`

	BackupAttempts    types.Int64   `tfsdk:"backup_attempts"`
	BackupFailureRate types.Float64 `tfsdk:"backup_failure_rate"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// parseDuration reads a duration validated at plan time; "" is 0.
func parseDuration(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}

// formatTime renders a time as RFC 3339, or "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
