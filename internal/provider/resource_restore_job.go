package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

var (
	_ resource.ResourceWithConfigure      = (*restoreJobResource)(nil)
	_ resource.ResourceWithImportState    = (*restoreJobResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*restoreJobResource)(nil)
	_ resource.ResourceWithValidateConfig = (*restoreJobResource)(nil)
)

// NewRestoreJobResource is the constructor the provider registers.
func NewRestoreJobResource() resource.Resource { return &restoreJobResource{} }

type restoreJobResource struct {
	engine *engine.Engine
	hooks  engine.RestoreHooks
}

func (r *restoreJobResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_restore_job"
}

func (r *restoreJobResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	replaceBool := []planmodifier.Bool{boolplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Restores workloads as code (E11-E16, M8, M9). The plan is the preview (T3): `plan` shows, for " +
			"every workload, the recovery point, the restore node and the node where a running copy is stopped first. Apply " +
			"re-checks and fails, saying what changed, if a recovery point or node is gone. Workloads are restored one after " +
			"another (E15): a running copy is stopped first (a workload is never active on two nodes), the restore node " +
			"becomes the fenced coordinating node, the agent inspects the recovery point (`verify`), restores into a staging " +
			"area and swaps it in atomically (a failed restore leaves the previous data in place), then the workload is " +
			"started if asked. The operation is recorded before work starts: an apply interrupted midway is resumed by the " +
			"next apply instead of restoring twice. Change `triggers` to restore again. Destroy only forgets the record: it " +
			"does not undo a restore.",
		Attributes: map[string]schema.Attribute{
			"id":         createdString("The operation id."),
			"cluster":    schema.StringAttribute{MarkdownDescription: "Name of the registered cluster.", Required: true, Validators: []validator.String{validate.Name()}, PlanModifiers: replace},
			"repository": schema.StringAttribute{MarkdownDescription: "Name of the registered repository holding the recovery points.", Required: true, Validators: []validator.String{validate.Name()}, PlanModifiers: replace},
			"workloads": schema.ListNestedAttribute{
				MarkdownDescription: "Workloads to restore, in this order (E15).",
				Required:            true,
				Validators:          []validator.List{listvalidator.SizeAtLeast(1)},
				PlanModifiers:       []planmodifier.List{listplanmodifier.RequiresReplace()},
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name": schema.StringAttribute{MarkdownDescription: "Workload name.", Required: true, Validators: []validator.String{validate.Name()}},
					"recovery_point": schema.StringAttribute{
						MarkdownDescription: "`latest` (default), or a recovery point id (or a prefix of at least 8 characters).",
						Optional:            true, Computed: true, Default: stringdefault.StaticString("latest"),
					},
					"before": schema.StringAttribute{
						MarkdownDescription: "Instead of `recovery_point`: the newest recovery point taken before this time (RFC 3339).",
						Optional:            true, Validators: []validator.String{validate.RFC3339()},
					},
					"target": schema.StringAttribute{
						MarkdownDescription: "Restore node: `active_node` (default: where it runs now, or by free resources if it runs nowhere, E11), `node` (with `node`, E12), or a policy `most_free_resources`, `lowest_failure_rate`, `fewest_workloads` (E12).",
						Optional:            true, Computed: true, Default: stringdefault.StaticString(engine.TargetActiveNode),
						Validators: []validator.String{stringvalidator.OneOf(engine.RestoreTargets...)},
					},
					"node": schema.StringAttribute{MarkdownDescription: "The restore node, with `target = \"node\"`.", Optional: true, Validators: []validator.String{validate.Name()}},
					"on_conflict": schema.StringAttribute{
						MarkdownDescription: "A copy running on another node is `deactivate`d (stopped there; started on the restore node only with `activate_after`) or `migrate`d (stopped there and started on the restore node). Default `deactivate`.",
						Optional:            true, Computed: true, Default: stringdefault.StaticString(engine.ConflictDeactivate),
						Validators: []validator.String{stringvalidator.OneOf(engine.RestoreConflicts...)},
					},
					"files": schema.ListAttribute{
						MarkdownDescription: "File-level restore (M9): only these paths of the recovery point (relative to the shared volume, e.g. `apps/web/config.yml`).",
						Optional:            true, ElementType: types.StringType,
						Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(validate.RelativePath())},
					},
					"destination": schema.SingleNestedAttribute{
						MarkdownDescription: "With `files`: write them under `path` (relative to the shared volume) by the agent of `node`, instead of in place. The workload is not stopped for a restore elsewhere. The agent refuses a `path` outside the workload's own paths unless its config lists it in `restore_destinations`.",
						Optional:            true,
						Attributes: map[string]schema.Attribute{
							"node": schema.StringAttribute{MarkdownDescription: "Node whose agent writes the files (default: where the workload runs).", Optional: true, Validators: []validator.String{validate.Name()}},
							"path": schema.StringAttribute{MarkdownDescription: "Directory relative to the shared volume.", Required: true, Validators: []validator.String{validate.RelativePath()}},
						},
					},
				}},
			},
			"colocate": schema.BoolAttribute{
				MarkdownDescription: "Restore all listed workloads to one node (E16), e.g. a web server and its application server. Default `false`.",
				Optional:            true, Computed: true, Default: booldefault.StaticBool(false), PlanModifiers: replaceBool,
			},
			"verify": schema.StringAttribute{
				MarkdownDescription: "Integrity inspection before anything is written (M8): `none`, `metadata` (the recovery point and its files exist) or `full` (every chunk needed is read and authenticated). A failing inspection aborts with nothing changed and names what is damaged. Default `metadata`.",
				Optional:            true, Computed: true, Default: stringdefault.StaticString(api.VerifyMetadata),
				Validators: []validator.String{stringvalidator.OneOf(engine.VerifyModes...)}, PlanModifiers: replace,
			},
			"activate_after": schema.BoolAttribute{
				MarkdownDescription: "Start each workload on its restore node afterwards (M8). Default `true`.",
				Optional:            true, Computed: true, Default: booldefault.StaticBool(true), PlanModifiers: replaceBool,
			},
			"assume_down": schema.ListAttribute{
				MarkdownDescription: "Nodes you confirm are down (powered off or fenced), like Pacemaker's manual fencing confirmation. " +
					"A node that cannot be asked may still run a workload, so plan and apply refuse to restore or start it while any node is " +
					"unreachable; listing the node here lets the restore go on without it. It is honoured only once the node's ownership " +
					"lease on the workload (kept on the shared volume) has expired, and ignored for a node that answers. Never list a node " +
					"that may still be running: two nodes would write the same data.",
				Optional: true, ElementType: types.StringType,
				Validators: []validator.List{listvalidator.ValueStringsAre(validate.Name())},
			},
			"keep_setuid": schema.BoolAttribute{
				MarkdownDescription: "Keep the setuid and setgid bits of restored files. Default `false`: the agents drop them, so a recovery point (whoever wrote into the repository) cannot place a setuid program on a node. Directories keep setgid and every entry keeps the sticky bit.",
				Optional:            true, Computed: true, Default: booldefault.StaticBool(false), PlanModifiers: replaceBool,
			},
			"triggers": schema.MapAttribute{
				MarkdownDescription: "Arbitrary values; changing any of them restores again (the resource is replaced).",
				Optional:            true, ElementType: types.StringType,
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"plan": schema.ListNestedAttribute{
				MarkdownDescription: "The preview, resolved at plan time: per workload, in order, what apply will do.",
				Computed:            true,
				PlanModifiers:       []planmodifier.List{listplanmodifier.UseStateForUnknown()},
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"workload":            schema.StringAttribute{MarkdownDescription: "Workload name.", Computed: true},
					"recovery_point":      schema.StringAttribute{MarkdownDescription: "Recovery point id.", Computed: true},
					"recovery_point_time": schema.StringAttribute{MarkdownDescription: "When it was taken (RFC 3339).", Computed: true},
					"node":                schema.StringAttribute{MarkdownDescription: "Restore node.", Computed: true},
					"deactivate_on":       schema.StringAttribute{MarkdownDescription: "Node where a running copy is stopped first (empty: none runs).", Computed: true},
					"migrate":             schema.BoolAttribute{MarkdownDescription: "Whether the running copy moves to the restore node.", Computed: true},
					"activate":            schema.BoolAttribute{MarkdownDescription: "Whether the workload is started on the restore node afterwards.", Computed: true},
				}},
			},
			"operation_id": createdString("Id of the restore operation in the catalog."),
			"status":       createdString("`succeeded` or `failed`."),
			"resumed":      schema.BoolAttribute{MarkdownDescription: "Whether this apply continued an operation an earlier, interrupted apply had started.", Computed: true, PlanModifiers: []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()}},
			"steps": schema.ListNestedAttribute{
				MarkdownDescription: "What happened, per workload in order.",
				Computed:            true,
				PlanModifiers:       []planmodifier.List{listplanmodifier.UseStateForUnknown()},
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"workload":       schema.StringAttribute{MarkdownDescription: "Workload name.", Computed: true},
					"node":           schema.StringAttribute{MarkdownDescription: "Restore node (coordinator of the step).", Computed: true},
					"epoch":          schema.Int64Attribute{MarkdownDescription: "Coordinator fencing epoch.", Computed: true},
					"deactivated_on": schema.StringAttribute{MarkdownDescription: "Node where a running copy was stopped first.", Computed: true},
					"activated":      schema.BoolAttribute{MarkdownDescription: "Whether it was started on the restore node.", Computed: true},
					"bytes_written":  schema.Int64Attribute{MarkdownDescription: "Bytes written to the shared volume.", Computed: true},
					"started_at":     schema.StringAttribute{MarkdownDescription: "Start (RFC 3339).", Computed: true},
					"finished_at":    schema.StringAttribute{MarkdownDescription: "End (RFC 3339).", Computed: true},
					"error":          schema.StringAttribute{MarkdownDescription: "Why the step failed; empty on success.", Computed: true},
				}},
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true}),
		},
	}
}

func (r *restoreJobResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if data := providerDataFrom(req.ProviderData, &resp.Diagnostics); data != nil {
		r.engine, r.hooks = data.engine, data.restoreHooks
	}
}

func (r *restoreJobResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m restoreJobModelV0
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.Workloads == nil {
		return
	}
	for i, w := range m.Workloads {
		p := path.Root("workloads").AtListIndex(i)
		if !w.Before.IsNull() && !w.RecoveryPoint.IsNull() && !w.RecoveryPoint.IsUnknown() && w.RecoveryPoint.ValueString() != "latest" {
			resp.Diagnostics.AddAttributeError(p.AtName("before"), "Conflicting Recovery Point", "Set recovery_point or before, not both.")
		}
		target := w.Target.ValueString()
		if (target == engine.TargetNode) != (!w.Node.IsNull() && w.Node.ValueString() != "") && !w.Target.IsUnknown() && !w.Node.IsUnknown() {
			resp.Diagnostics.AddAttributeError(p.AtName("node"), "Restore Node Mismatch", `target = "node" needs node, and node is only used with target = "node".`)
		}
		if w.Destination != nil && w.Files.IsNull() {
			resp.Diagnostics.AddAttributeError(p.AtName("destination"), "Destination Without Files", "A destination needs files: name the files to restore there.")
		}
	}
}

// ModifyPlan resolves the preview (T3) when the job is created.
func (r *restoreJobResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if r.engine == nil || req.Plan.Raw.IsNull() || !req.State.Raw.IsNull() {
		return
	}
	var m restoreJobModelV0
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || !m.known() {
		return
	}
	spec, diags := m.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	plan, resuming, err := r.engine.PreviewRestore(ctx, spec)
	if err != nil {
		resp.Diagnostics.Append(diagRestore("planning", err)...)
		return
	}
	if resuming {
		resp.Diagnostics.AddWarning("Resuming Restore", "An earlier apply started this same restore and did not finish; apply continues it (steps already done are not repeated).")
	}
	for _, s := range plan.Steps {
		tflog.Info(ctx, "restore preview", map[string]any{"workload": s.Workload, "recovery_point": s.RecoveryPoint, "node": s.Node, "deactivate_on": s.DeactivateOn, "migrate": s.Migrate})
		for _, n := range s.Notes {
			resp.Diagnostics.AddWarning("Restore of "+s.Workload, n)
		}
	}
	var d diag.Diagnostics
	m.Plan, d = planValue(plan)
	resp.Diagnostics.Append(d...)
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &m)...)
}

func (r *restoreJobResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var m restoreJobModelV0
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := m.Timeouts.Create(ctx, 60*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	spec, diags := m.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	var shown *engine.RestorePlan
	if !m.Plan.IsUnknown() && !m.Plan.IsNull() {
		p, d := planFromValue(ctx, m.Plan)
		resp.Diagnostics.Append(d...)
		shown = &p
	}
	rep, err := r.engine.RunRestore(ctx, spec, shown, r.hooks)
	if err != nil && rep.Operation.ID == "" {
		resp.Diagnostics.Append(diagRestore("running", err)...)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(diagRestore("running", err)...)
		return
	}
	if m.Plan.IsUnknown() || m.Plan.IsNull() {
		m.Plan, diags = planValue(rep.Plan)
		resp.Diagnostics.Append(diags...)
	}
	resp.Diagnostics.Append(m.fill(rep.Operation, rep.Steps, rep.Resumed)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *restoreJobResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var m restoreJobModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	op, steps, err := r.engine.GetRestore(ctx, m.ID.ValueString())
	if isNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(diagCatalogError("reading the restore job", err))
		return
	}
	resp.Diagnostics.Append(m.fill(op, steps, m.Resumed.ValueBool())...)
	if m.Cluster.IsNull() || m.Cluster.ValueString() == "" {
		m.Cluster, m.Repository = types.StringValue(op.Cluster), types.StringValue(op.Repository)
	}
	// Drift of the result: a workload this job activated no longer runs there.
	if where, err := r.engine.ActiveNodes(ctx, op.Cluster); err == nil {
		for _, s := range steps {
			if s.Activated && where[s.Workload] != s.Node {
				resp.Diagnostics.AddWarning("Restored Workload Moved",
					fmt.Sprintf("Workload %q, restored and started on node %q by restore job %s, is now active on %q. Destroying this job does not undo the restore; change triggers to restore again.",
						s.Workload, s.Node, op.ID, orNone(where[s.Workload])))
			}
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *restoreJobResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m restoreJobModelV0
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *restoreJobResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var m restoreJobModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.engine.ForgetRestore(ctx, m.ID.ValueString()); err != nil && !isNotFound(err) {
		resp.Diagnostics.Append(diagCatalogError("forgetting the restore job", err))
	}
}

func (r *restoreJobResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}

type restoreJobModelV0 struct {
	ID            types.String             `tfsdk:"id"`
	Cluster       types.String             `tfsdk:"cluster"`
	Repository    types.String             `tfsdk:"repository"`
	Workloads     []restoreWorkloadModelV0 `tfsdk:"workloads"`
	Colocate      types.Bool               `tfsdk:"colocate"`
	Verify        types.String             `tfsdk:"verify"`
	ActivateAfter types.Bool               `tfsdk:"activate_after"`
	KeepSetuid    types.Bool               `tfsdk:"keep_setuid"`
	Triggers      types.Map                `tfsdk:"triggers"`
	AssumeDown    types.List               `tfsdk:"assume_down"`
	Plan          types.List               `tfsdk:"plan"`
	OperationID   types.String             `tfsdk:"operation_id"`
	Status        types.String             `tfsdk:"status"`
	Resumed       types.Bool               `tfsdk:"resumed"`
	Steps         types.List               `tfsdk:"steps"`
	Timeouts      timeouts.Value           `tfsdk:"timeouts"`
}

type restoreWorkloadModelV0 struct {
	Name          types.String        `tfsdk:"name"`
	RecoveryPoint types.String        `tfsdk:"recovery_point"`
	Before        types.String        `tfsdk:"before"`
	Target        types.String        `tfsdk:"target"`
	Node          types.String        `tfsdk:"node"`
	OnConflict    types.String        `tfsdk:"on_conflict"`
	Files         types.List          `tfsdk:"files"`
	Destination   *restoreDestination `tfsdk:"destination"`
}

type restoreDestination struct {
	Node types.String `tfsdk:"node"`
	Path types.String `tfsdk:"path"`
}

var restorePlanType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"workload": types.StringType, "recovery_point": types.StringType, "recovery_point_time": types.StringType,
	"node": types.StringType, "deactivate_on": types.StringType, "migrate": types.BoolType, "activate": types.BoolType,
}}

var restoreStepType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"workload": types.StringType, "node": types.StringType, "epoch": types.Int64Type, "deactivated_on": types.StringType,
	"activated": types.BoolType, "bytes_written": types.Int64Type, "started_at": types.StringType,
	"finished_at": types.StringType, "error": types.StringType,
}}

// known reports whether everything the preview needs is known at plan time.
func (m restoreJobModelV0) known() bool {
	if m.Cluster.IsUnknown() || m.Repository.IsUnknown() || m.Triggers.IsUnknown() || m.AssumeDown.IsUnknown() || m.Workloads == nil {
		return false
	}
	for _, w := range m.Workloads {
		if w.Name.IsUnknown() || w.RecoveryPoint.IsUnknown() || w.Before.IsUnknown() || w.Node.IsUnknown() || w.Files.IsUnknown() {
			return false
		}
		if w.Destination != nil && (w.Destination.Node.IsUnknown() || w.Destination.Path.IsUnknown()) {
			return false
		}
	}
	return true
}

func (m restoreJobModelV0) spec(ctx context.Context) (engine.RestoreSpec, diag.Diagnostics) {
	var diags diag.Diagnostics
	s := engine.RestoreSpec{
		Cluster: m.Cluster.ValueString(), Repository: m.Repository.ValueString(), Colocate: m.Colocate.ValueBool(),
		Verify: m.Verify.ValueString(), ActivateAfter: m.ActivateAfter.ValueBool(),
	}
	s.KeepSetuid = m.KeepSetuid.ValueBool()
	if !m.Triggers.IsNull() {
		diags.Append(m.Triggers.ElementsAs(ctx, &s.Triggers, false)...)
	}
	if !m.AssumeDown.IsNull() {
		diags.Append(m.AssumeDown.ElementsAs(ctx, &s.AssumeDown, false)...)
	}
	for _, w := range m.Workloads {
		rw := engine.RestoreWorkload{Name: w.Name.ValueString(), RecoveryPoint: w.RecoveryPoint.ValueString(),
			Target: w.Target.ValueString(), Node: w.Node.ValueString(), OnConflict: w.OnConflict.ValueString()}
		if b := w.Before.ValueString(); b != "" {
			rw.Before, _ = time.Parse(time.RFC3339, b) // validated at plan time
			rw.RecoveryPoint = ""
		}
		if !w.Files.IsNull() {
			diags.Append(w.Files.ElementsAs(ctx, &rw.Files, false)...)
		}
		if w.Destination != nil {
			rw.DestinationNode, rw.DestinationPath = w.Destination.Node.ValueString(), w.Destination.Path.ValueString()
		}
		s.Workloads = append(s.Workloads, rw)
	}
	return s, diags
}

func planValue(p engine.RestorePlan) (types.List, diag.Diagnostics) {
	var diags diag.Diagnostics
	items := make([]attr.Value, 0, len(p.Steps))
	for _, s := range p.Steps {
		obj, d := types.ObjectValue(restorePlanType.AttrTypes, map[string]attr.Value{
			"workload": types.StringValue(s.Workload), "recovery_point": types.StringValue(s.RecoveryPoint),
			"recovery_point_time": types.StringValue(s.RecoveryPointTime.UTC().Format(time.RFC3339)),
			"node":                types.StringValue(s.Node), "deactivate_on": types.StringValue(s.DeactivateOn),
			"migrate": types.BoolValue(s.Migrate), "activate": types.BoolValue(s.Activate),
		})
		diags.Append(d...)
		items = append(items, obj)
	}
	l, d := types.ListValue(restorePlanType, items)
	diags.Append(d...)
	return l, diags
}

func planFromValue(ctx context.Context, l types.List) (engine.RestorePlan, diag.Diagnostics) {
	type step struct {
		Workload          string `tfsdk:"workload"`
		RecoveryPoint     string `tfsdk:"recovery_point"`
		RecoveryPointTime string `tfsdk:"recovery_point_time"`
		Node              string `tfsdk:"node"`
		DeactivateOn      string `tfsdk:"deactivate_on"`
		Migrate           bool   `tfsdk:"migrate"`
		Activate          bool   `tfsdk:"activate"`
	}
	var steps []step
	diags := l.ElementsAs(ctx, &steps, false)
	var p engine.RestorePlan
	for _, s := range steps {
		t, _ := time.Parse(time.RFC3339, s.RecoveryPointTime)
		p.Steps = append(p.Steps, engine.RestoreStepPlan{Workload: s.Workload, RecoveryPoint: s.RecoveryPoint, RecoveryPointTime: t,
			Node: s.Node, DeactivateOn: s.DeactivateOn, Migrate: s.Migrate, Activate: s.Activate})
	}
	return p, diags
}

func (m *restoreJobModelV0) fill(op catalog.RestoreOperation, steps []catalog.RestoreStep, resumed bool) diag.Diagnostics {
	var diags diag.Diagnostics
	m.ID, m.OperationID, m.Status = types.StringValue(op.ID), types.StringValue(op.ID), types.StringValue(op.Status)
	m.Resumed = types.BoolValue(resumed)
	items := make([]attr.Value, 0, len(steps))
	for _, s := range steps {
		finished := ""
		if !s.FinishedAt.IsZero() {
			finished = s.FinishedAt.UTC().Format(time.RFC3339)
		}
		obj, d := types.ObjectValue(restoreStepType.AttrTypes, map[string]attr.Value{
			"workload": types.StringValue(s.Workload), "node": types.StringValue(s.Node), "epoch": types.Int64Value(s.Epoch),
			"deactivated_on": types.StringValue(s.DeactivatedOn), "activated": types.BoolValue(s.Activated),
			"bytes_written": types.Int64Value(s.BytesWritten), "started_at": types.StringValue(s.StartedAt.UTC().Format(time.RFC3339)),
			"finished_at": types.StringValue(finished), "error": types.StringValue(s.Error),
		})
		diags.Append(d...)
		items = append(items, obj)
	}
	var d diag.Diagnostics
	m.Steps, d = types.ListValue(restoreStepType, items)
	diags.Append(d...)
	return diags
}

func orNone(s string) string {
	if s == "" {
		return "no node"
	}
	return s
}

func diagRestore(during string, err error) diag.Diagnostics {
	if _, ok := engine.AsValidation(err); ok {
		return diagValidation(err)
	}
	var diags diag.Diagnostics
	var changed *engine.PlanChangedError
	var step *engine.RestoreStepError
	var unreachable *engine.UnreachableNodesError
	switch {
	case errors.As(err, &step):
		// The step error says what was stopped and whether it was started again.
		diags.AddError("Restore Failed", detail(fmt.Sprintf("The restore job failed while %s.", during),
			"Workloads restored before the failure stay restored; what happened to the failed one is said above. Fix the cause and apply again: the job resumes where it stopped.", err))
	case errors.As(err, &unreachable):
		diags.AddError("Workload Location Unknown", detail("A node that may run the workload could not be asked, so restoring or starting it could make two nodes write the same data.",
			"Nothing was stopped or restored. Bring the node's agent back, or, only if the node is really down (powered off or fenced), list it in assume_down.", err))
	case errors.As(err, &changed):
		diags.AddError("Restore Plan No Longer Holds",
			detail("Since the plan was made:\n- "+strings.Join(changed.Changes, "\n- "), "Nothing was restored. Run terraform plan again to see what a restore would do now, then apply that plan.", nil))
	case isNotFound(err):
		diags.AddError("Restore Reference Not Found", detail("The cluster or repository of the restore job is not registered.", "Reference the clusterguard_cluster and clusterguard_repository resources so they exist first.", err))
	default:
		diags.AddError("Restore Failed", detail(fmt.Sprintf("The restore job failed while %s.", during),
			"Nothing was stopped or restored. Fix the cause and plan again.", err))
	}
	return diags
}
