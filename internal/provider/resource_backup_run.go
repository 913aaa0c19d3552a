package provider

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

var (
	_ resource.ResourceWithConfigure   = (*backupRunResource)(nil)
	_ resource.ResourceWithImportState = (*backupRunResource)(nil)
)

// NewBackupRunResource is the constructor the provider registers.
func NewBackupRunResource() resource.Resource { return &backupRunResource{} }

type backupRunResource struct {
	engine *engine.Engine
	hooks  engine.RunHooks
}

func (r *backupRunResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backup_run"
}

func (r *backupRunResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "One federated backup of a protection group, run on create (E1-E10): the master node is chosen by " +
			"the cluster's policy, nodes are visited in the group's `node_order`, each becomes the fenced coordinating node in " +
			"turn and backs up the workloads active on it (quiesced or paused for their point-in-time copy), then verification " +
			"finds workloads that moved during the run and backs them up where they are now. Use it for a backup before a risky " +
			"change, or on demand by changing `triggers`. A `partial` run is a warning naming each workload not backed up and " +
			"why; a `failed` run is an error. Destroy only forgets the record: recovery points follow the group's retention.",
		Attributes: map[string]schema.Attribute{
			"id": idAttribute("The run id."),
			"group": schema.StringAttribute{
				MarkdownDescription: "Name of the protection group to back up.",
				Required:            true,
				Validators:          []validator.String{validate.Name()},
				PlanModifiers:       replace,
			},
			"triggers": schema.MapAttribute{
				MarkdownDescription: "Arbitrary values; changing any of them runs a new backup (the resource is replaced).",
				Optional:            true,
				ElementType:         types.StringType,
				PlanModifiers:       []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"tags": schema.ListAttribute{
				MarkdownDescription: "Tags stored on every recovery point of the run (e.g. `pre-upgrade`). The prefixes `schedule:` and `retry-of:` are reserved for scheduled recovery points.",
				Optional:            true,
				ElementType:         types.StringType,
				PlanModifiers:       []planmodifier.List{listplanmodifier.RequiresReplace()},
				Validators:          []validator.List{listvalidator.ValueStringsAre(notReservedTag{})},
			},
			"run_id": createdString("The run id in the catalog."),
			"status": createdString("`succeeded`, `partial` or `failed`."),
			"master": createdString("Master node of the run, or `engine`."),
			"node_order": schema.ListAttribute{
				MarkdownDescription: "Nodes in the order they were visited.",
				Computed:            true, ElementType: types.StringType,
				PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
			},
			"started_at":  createdString("Start time (RFC 3339)."),
			"finished_at": createdString("End time (RFC 3339)."),
			"error":       createdString("Why the run is not `succeeded`; empty otherwise."),
			"workloads": schema.MapNestedAttribute{
				MarkdownDescription: "Per expected workload: where and how it was backed up, or why not.",
				Computed:            true,
				PlanModifiers:       []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"node":           schema.StringAttribute{MarkdownDescription: "Node that backed it up (empty if none did).", Computed: true},
					"epoch":          schema.Int64Attribute{MarkdownDescription: "Coordinator fencing epoch of that node's turn.", Computed: true},
					"phase":          schema.StringAttribute{MarkdownDescription: "`node` (in node order) or `verify` (found elsewhere by verification, E8).", Computed: true},
					"recovery_point": schema.StringAttribute{MarkdownDescription: "Recovery point (snapshot) id.", Computed: true},
					"bytes":          schema.Int64Attribute{MarkdownDescription: "Logical size of the recovery point.", Computed: true},
					"bytes_added":    schema.Int64Attribute{MarkdownDescription: "New data stored in the repository.", Computed: true},
					"stun_ms":        schema.Int64Attribute{MarkdownDescription: "Milliseconds the workload was quiesced or paused.", Computed: true},
					"incremental":    schema.BoolAttribute{MarkdownDescription: "QEMU VMs: `true` when only the disk extents changed since the previous recovery point were read (dirty bitmaps); `false` for a full read.", Computed: true},
					"bytes_read":     schema.Int64Attribute{MarkdownDescription: "QEMU VMs: bytes read from the disks' point-in-time view.", Computed: true},
					"checkpoint":     schema.StringAttribute{MarkdownDescription: "QEMU VMs: the dirty-bitmap generation the recovery point covers (the next backup is incremental from it).", Computed: true},
					"error":          schema.StringAttribute{MarkdownDescription: "Why it was not backed up; empty on success.", Computed: true},
				}},
			},
			"steps": schema.Int64Attribute{
				MarkdownDescription: "Number of steps recorded: workload backups attempted (in node order and by verification, E8), plus one skipped step per workload that could not be backed up, carrying the reason.",
				Computed:            true,
				PlanModifiers:       []planmodifier.Int64{int64UseState()},
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true}),
		},
	}
}

func (r *backupRunResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if data := providerDataFrom(req.ProviderData, &resp.Diagnostics); data != nil {
		r.engine, r.hooks = data.engine, data.runHooks
	}
}

func (r *backupRunResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var plan backupRunModelV0
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, 60*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var tags []string
	if !plan.Tags.IsNull() {
		resp.Diagnostics.Append(plan.Tags.ElementsAs(ctx, &tags, false)...)
	}
	group := plan.Group.ValueString()
	tflog.Info(ctx, "starting federated backup run", map[string]any{"group": group})
	rep, err := r.engine.RunBackup(ctx, engine.RunOptions{Group: group, Tags: tags, Hooks: r.hooks})
	if err != nil {
		resp.Diagnostics.Append(diagRun(group, err)...)
		return
	}
	if _, err := r.engine.ApplyRetention(ctx, group); err != nil {
		resp.Diagnostics.AddWarning("Retention Not Applied",
			detail(fmt.Sprintf("The run finished but the retention of group %q could not be applied.", group), "It is applied again after the next run.", err))
	}
	resp.Diagnostics.Append(plan.fill(ctx, rep.Run, rep.Steps)...)
	switch rep.Run.Status {
	case catalog.RunPartial:
		resp.Diagnostics.AddWarning("Backup Run Partial", runOutcomeDetail(rep))
	case catalog.RunFailed:
		resp.Diagnostics.AddError("Backup Run Failed", runOutcomeDetail(rep))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *backupRunResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var state backupRunModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	run, steps, err := r.engine.GetRun(ctx, state.ID.ValueString())
	if isNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(diagCatalogError("reading the backup run", err))
		return
	}
	state.Group = types.StringValue(run.Group)
	resp.Diagnostics.Append(state.fill(ctx, run, steps)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update is never called with a change: every configurable attribute
// requires replacement. It keeps the state as planned.
func (r *backupRunResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan backupRunModelV0
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *backupRunResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var state backupRunModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.engine.ForgetRun(ctx, state.ID.ValueString()); err != nil && !isNotFound(err) {
		resp.Diagnostics.Append(diagCatalogError("forgetting the backup run", err))
	}
}

func (r *backupRunResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}

type backupRunModelV0 struct {
	ID         types.String   `tfsdk:"id"`
	Group      types.String   `tfsdk:"group"`
	Triggers   types.Map      `tfsdk:"triggers"`
	Tags       types.List     `tfsdk:"tags"`
	RunID      types.String   `tfsdk:"run_id"`
	Status     types.String   `tfsdk:"status"`
	Master     types.String   `tfsdk:"master"`
	NodeOrder  types.List     `tfsdk:"node_order"`
	StartedAt  types.String   `tfsdk:"started_at"`
	FinishedAt types.String   `tfsdk:"finished_at"`
	Error      types.String   `tfsdk:"error"`
	Workloads  types.Map      `tfsdk:"workloads"`
	Steps      types.Int64    `tfsdk:"steps"`
	Timeouts   timeouts.Value `tfsdk:"timeouts"`
}

var runWorkloadType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"node": types.StringType, "epoch": types.Int64Type, "phase": types.StringType, "recovery_point": types.StringType,
	"bytes": types.Int64Type, "bytes_added": types.Int64Type, "stun_ms": types.Int64Type, "error": types.StringType,
	"incremental": types.BoolType, "bytes_read": types.Int64Type, "checkpoint": types.StringType,
}}

func (m *backupRunModelV0) fill(ctx context.Context, run catalog.Run, steps []catalog.Step) diag.Diagnostics {
	var diags diag.Diagnostics
	m.ID, m.RunID = types.StringValue(run.ID), types.StringValue(run.ID)
	m.Status, m.Master, m.Error = types.StringValue(run.Status), types.StringValue(run.Master), types.StringValue(run.Error)
	m.StartedAt = types.StringValue(run.StartedAt.UTC().Format(time.RFC3339))
	m.FinishedAt = types.StringValue("")
	if !run.FinishedAt.IsZero() {
		m.FinishedAt = types.StringValue(run.FinishedAt.UTC().Format(time.RFC3339))
	}
	var d diag.Diagnostics
	m.NodeOrder, d = types.ListValueFrom(ctx, types.StringType, nonNil(run.NodeOrder))
	diags.Append(d...)
	m.Steps = types.Int64Value(int64(len(steps)))
	// The last step of a workload decides its entry: a verify step that
	// succeeded after a failed node step shows the success.
	last := map[string]catalog.Step{}
	for _, s := range steps {
		if prev, ok := last[s.Workload]; !ok || prev.Outcome != catalog.StepSucceeded {
			last[s.Workload] = s
		}
	}
	wl := map[string]attr.Value{}
	for _, w := range run.Expected {
		s, ok := last[w]
		vals := map[string]attr.Value{
			"node": types.StringValue(""), "epoch": types.Int64Value(0), "phase": types.StringValue(""),
			"recovery_point": types.StringValue(""), "bytes": types.Int64Value(0), "bytes_added": types.Int64Value(0),
			"stun_ms": types.Int64Value(0), "error": types.StringValue("not attempted"),
			"incremental": types.BoolValue(false), "bytes_read": types.Int64Value(0), "checkpoint": types.StringValue(""),
		}
		if ok {
			vals["node"], vals["epoch"], vals["phase"] = types.StringValue(s.Node), types.Int64Value(s.Epoch), types.StringValue(s.Phase)
			vals["recovery_point"], vals["bytes"], vals["bytes_added"] = types.StringValue(s.SnapshotID), types.Int64Value(s.Bytes), types.Int64Value(s.BytesAdded)
			vals["stun_ms"] = types.Int64Value(s.StunMS)
			vals["incremental"], vals["bytes_read"], vals["checkpoint"] = types.BoolValue(s.Incremental), types.Int64Value(s.BytesRead), types.StringValue(s.Checkpoint)
			vals["error"] = types.StringValue(s.Error)
			if s.Outcome == catalog.StepSucceeded {
				vals["error"] = types.StringValue("")
			}
		}
		obj, d := types.ObjectValue(runWorkloadType.AttrTypes, vals)
		diags.Append(d...)
		wl[w] = obj
	}
	m.Workloads, d = types.MapValue(runWorkloadType, wl)
	diags.Append(d...)
	return diags
}

func runOutcomeDetail(rep engine.RunReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s of group %q ended %s: %d of %d workloads backed up.\n", rep.Run.ID, rep.Run.Group, rep.Run.Status,
		len(rep.Run.Expected)-len(rep.Missing), len(rep.Run.Expected))
	for _, m := range rep.Missing {
		fmt.Fprintf(&b, "\n- %s: %s", m.Name, m.Reason)
	}
	if len(rep.Missing) == 0 && rep.Run.Error != "" {
		b.WriteString("\n" + rep.Run.Error)
	}
	b.WriteString("\n\nRecovery points that were taken are kept and the repository stays valid. Fix the causes above, then run again (change triggers).")
	return b.String()
}

func diagRun(group string, err error) diag.Diagnostics {
	if _, ok := engine.AsValidation(err); ok {
		return diagValidation(err)
	}
	if diags, ok := diagRepositoryNotOnNodes("group", err); ok {
		return diags
	}
	var diags diag.Diagnostics
	if isNotFound(err) {
		diags.AddAttributeError(path.Root("group"), "Protection Group Not Found",
			detail(fmt.Sprintf("Group %q, or its cluster or repository, is not registered.", group),
				"Reference the group resource (group = clusterguard_protection_group.x.name) so it is created first.", err))
		return diags
	}
	diags.AddError("Backup Run Failed", detail(fmt.Sprintf("The backup run of group %q could not be carried out.", group), "", err))
	return diags
}
