package provider

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

var (
	_ resource.ResourceWithConfigure      = (*protectionGroupResource)(nil)
	_ resource.ResourceWithImportState    = (*protectionGroupResource)(nil)
	_ resource.ResourceWithValidateConfig = (*protectionGroupResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*protectionGroupResource)(nil)
)

// NewProtectionGroupResource is the constructor the provider registers.
func NewProtectionGroupResource() resource.Resource { return &protectionGroupResource{} }

type protectionGroupResource struct {
	engine *engine.Engine
}

func (r *protectionGroupResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_protection_group"
}

func (r *protectionGroupResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A protection group (M5, M12): workloads of one cluster backed up together into one repository, " +
			"with one consistency mode, node order, retention and RPO. Its computed attributes are the protection status as of " +
			"the last apply; every plan compares them with reality (where each workload runs now, recovery points, RPO) and, " +
			"when they differ, plans an in-place update with a warning that names every change — a workload that moved, " +
			"vanished or breached its RPO, or a new workload that matches the selector but is not yet protected (T2).",
		Attributes: map[string]schema.Attribute{
			"id":         idAttribute("The group name."),
			"name":       catalogNameReplacing("Group name, unique in the catalog."),
			"cluster":    catalogNameReplacing("Name of the registered cluster whose workloads the group protects."),
			"repository": catalogName("Name of the registered repository the group's recovery points go to."),
			"workloads": schema.SetAttribute{
				MarkdownDescription: "Workloads selected by name. Combined with `selector` (union); at least one of the two is required.",
				Optional:            true,
				ElementType:         types.StringType,
				Validators:          []validator.Set{setvalidator.SizeAtLeast(1), setvalidator.ValueStringsAre(validate.Name())},
			},
			"selector": schema.SingleNestedAttribute{
				MarkdownDescription: "Workloads selected by attributes; every set field must match. A selector matches workloads running somewhere (any state but `inactive`): a stopped workload has nothing to quiesce; list it in `workloads` to insist on it.",
				Optional:            true,
				Attributes: map[string]schema.Attribute{
					"name_regex": schema.StringAttribute{MarkdownDescription: "Workload name matches this regular expression (RE2).", Optional: true, Validators: []validator.String{validate.Regex()}},
					"driver":     schema.StringAttribute{MarkdownDescription: "Workload driver (`exec`, `postgresql`, `qemu`).", Optional: true, Validators: []validator.String{stringvalidator.OneOf(api.Drivers...)}},
					"node":       schema.StringAttribute{MarkdownDescription: "Workload is active on this node (M12: protect a whole host).", Optional: true, Validators: []validator.String{validate.Name()}},
				},
			},
			"exclude": schema.SetAttribute{
				MarkdownDescription: "Workloads never selected, even if listed or matched.",
				Optional:            true,
				ElementType:         types.StringType,
				Validators:          []validator.Set{setvalidator.ValueStringsAre(validate.Name())},
			},
			"consistency": schema.StringAttribute{
				MarkdownDescription: "`application`: each workload is quiesced (its pending writes flushed) for its point-in-time copy and then released; a PostgreSQL workload is instead copied online (`pg_backup_start`/`pg_backup_stop`) and never stopped, unless its agent sets `backup_method = \"freeze\"`. `crash`: each workload is paused only while its point-in-time view is taken, then resumed: milliseconds for VM disks (a copy-before-write view) and for file workloads on a volume with reflinks or btrfs snapshots, the time of the mirror copy elsewhere. Default `application`.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(api.ConsistencyApplication),
				Validators:          []validator.String{stringvalidator.OneOf(engine.Consistencies...)},
			},
			"node_order": schema.StringAttribute{
				MarkdownDescription: "Order in which nodes back up their workloads (E5): `master_last`, `master_first`, `most_workloads_first`, `most_free_resources_first`, `highest_failure_rate_first`, `critical_first` (with `critical_workloads`) or `random`. Ties keep the cluster's join order. Default `master_last`.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(engine.OrderMasterLast),
				Validators:          []validator.String{stringvalidator.OneOf(engine.NodeOrders...)},
			},
			"critical_workloads": schema.ListAttribute{
				MarkdownDescription: "With `node_order = \"critical_first\"`: workloads, most critical first, whose nodes are backed up first.",
				Optional:            true,
				ElementType:         types.StringType,
			},
			"extract_at": schema.StringAttribute{
				MarkdownDescription: "E6: `backup` stores each workload's own files; `restore` stores each node's whole shared-volume view once and extracts a workload's files when restoring (less compute at backup time, more storage). Default `backup`.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(engine.ExtractAtBackup),
				Validators:          []validator.String{stringvalidator.OneOf(engine.ExtractAts...)},
			},
			"retention": retentionAttribute("Which recovery points are kept after each run (per workload); the rest are forgotten and their data pruned. Without it everything is kept."),
			"rpo": schema.StringAttribute{
				MarkdownDescription: "Recovery point objective as a duration (`1h`, `15m`): the newest recovery point of every workload must be younger. A breach shows in `workload_status` and in the plan.",
				Optional:            true,
				Validators:          []validator.String{validate.Duration(time.Minute, 365*24*time.Hour)},
			},
			"workload_status": schema.MapNestedAttribute{
				MarkdownDescription: "Per selected workload, as of the last apply: where it runs and how well it is protected.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"node":                schema.StringAttribute{MarkdownDescription: "Node the workload is active on (empty unless exactly one).", Computed: true},
					"state":               schema.StringAttribute{MarkdownDescription: "Digest state, or `missing` when no agent reports the workload.", Computed: true},
					"last_backup_at":      schema.StringAttribute{MarkdownDescription: "Time of the newest recovery point (RFC 3339), empty if none.", Computed: true},
					"last_recovery_point": schema.StringAttribute{MarkdownDescription: "Id of the newest recovery point, empty if none.", Computed: true},
					"rpo_met":             schema.BoolAttribute{MarkdownDescription: "Whether the newest recovery point is younger than `rpo` (false when there is none).", Computed: true},
				}},
			},
			"unprotected": schema.ListAttribute{
				MarkdownDescription: "Workloads the selection matches that have no recovery point yet.",
				Computed:            true,
				ElementType:         types.StringType,
			},
			"missing": schema.ListAttribute{
				MarkdownDescription: "Selected workloads that no agent reports.",
				Computed:            true,
				ElementType:         types.StringType,
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Read: true, Update: true}),
		},
	}
}

func (r *protectionGroupResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if data := providerDataFrom(req.ProviderData, &resp.Diagnostics); data != nil {
		r.engine = data.engine
	}
}

func (r *protectionGroupResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m protectionGroupModelV0
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if m.Workloads.IsNull() && m.Selector == nil {
		resp.Diagnostics.AddAttributeError(path.Root("workloads"), "Empty Selection",
			"The protection group selects no workload: set workloads (names), selector (name_regex, driver, node), or both.")
	}
	if m.Selector != nil && m.Selector.NameRegex.IsNull() && m.Selector.Driver.IsNull() && m.Selector.Node.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("selector"), "Empty Selector",
			"An empty selector would match every workload: set name_regex = \".*\" to mean that, or set driver or node.")
	}
	if m.NodeOrder.IsUnknown() || m.CriticalWorkloads.IsUnknown() {
		return
	}
	order := m.NodeOrder.ValueString()
	if order == "" {
		order = engine.OrderMasterLast
	}
	hasCritical := !m.CriticalWorkloads.IsNull() && len(m.CriticalWorkloads.Elements()) > 0
	switch {
	case order == engine.OrderCriticalFirst && !hasCritical:
		resp.Diagnostics.AddAttributeError(path.Root("critical_workloads"), "Missing Critical Workloads",
			`node_order "critical_first" needs critical_workloads: the workloads, most critical first, whose nodes are backed up first.`)
	case order != engine.OrderCriticalFirst && hasCritical:
		resp.Diagnostics.AddAttributeError(path.Root("critical_workloads"), "Unused Critical Workloads",
			fmt.Sprintf(`critical_workloads is only used with node_order "critical_first" (node_order is %q); remove it or change node_order.`, order))
	}
}

// ModifyPlan shows drift: when reality differs from the protection status
// recorded at the last apply, the status is planned as unknown (an in-place
// update) and a warning names each change.
func (r *protectionGroupResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if r.engine == nil || req.State.Raw.IsNull() || req.Plan.Raw.IsNull() {
		return
	}
	var state, plan protectionGroupModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	st, err := r.engine.GroupStatus(ctx, state.Name.ValueString())
	if err != nil {
		tflog.Warn(ctx, "protection status unavailable at plan time", map[string]any{"group": state.Name.ValueString(), "error": err.Error()})
		return
	}
	recorded, diags := state.status(ctx)
	resp.Diagnostics.Append(diags...)
	if recorded == nil {
		return
	}
	_, changes := engine.ReconcileStatus(*recorded, st)
	if len(changes) == 0 {
		return
	}
	resp.Diagnostics.AddWarning("Protection Drift",
		fmt.Sprintf("Protection group %q differs from its last apply:\n- %s\n\nApplying records the current status; run a clusterguard_backup_run to protect what is unprotected or past its RPO.",
			state.Name.ValueString(), strings.Join(changes, "\n- ")))
	plan.WorkloadStatus = types.MapUnknown(workloadStatusType)
	plan.Unprotected = types.ListUnknown(types.StringType)
	plan.Missing = types.ListUnknown(types.StringType)
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *protectionGroupResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.write(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics, true)
}

func (r *protectionGroupResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.write(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics, false)
}

type stateSetter interface {
	Set(ctx context.Context, val any) diag.Diagnostics
}

func (r *protectionGroupResource) write(ctx context.Context, get func(context.Context, any) diag.Diagnostics, st stateSetter, diags *diag.Diagnostics, create bool) {
	if r.engine == nil {
		diags.Append(diagUnconfigured())
		return
	}
	var plan protectionGroupModelV0
	diags.Append(get(ctx, &plan)...)
	if diags.HasError() {
		return
	}
	timeout, d := plan.Timeouts.Create(ctx, 5*time.Minute)
	if !create {
		timeout, d = plan.Timeouts.Update(ctx, 5*time.Minute)
	}
	diags.Append(d...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	g, d := plan.record(ctx)
	diags.Append(d...)
	if diags.HasError() {
		return
	}
	if create {
		if _, err := r.engine.GetGroup(ctx, g.Name); err == nil {
			diags.AddAttributeError(path.Root("name"), "Protection Group Already Registered",
				detail(fmt.Sprintf("A protection group named %q is already in the engine's catalog.", g.Name),
					fmt.Sprintf("Import it instead (terraform import <address> %s), or choose another name.", g.Name), nil))
			return
		}
	}
	if err := r.engine.PutGroup(ctx, g); err != nil {
		diags.Append(diagGroup(g.Name, err)...)
		return
	}
	status, err := r.engine.GroupStatus(ctx, g.Name)
	if err != nil {
		diags.Append(diagGroup(g.Name, err)...)
		return
	}
	for _, n := range status.Unreachable {
		diags.Append(diagDigestUnreachable(g.Cluster, n))
	}
	plan.ID = types.StringValue(g.Name)
	diags.Append(plan.fillStatus(ctx, status)...)
	diags.Append(st.Set(ctx, &plan)...)
}

func (r *protectionGroupResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var state protectionGroupModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := state.ID.ValueString()
	if name == "" {
		name = state.Name.ValueString()
	}
	g, err := r.engine.GetGroup(ctx, name)
	if isNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(diagCatalogError("reading the protection group", err))
		return
	}
	resp.Diagnostics.Append(state.fillRecord(ctx, g)...)
	// Refresh accepts improvements (new recovery points, RPO met again) and
	// keeps degradations as last applied, so the plan shows them as drift;
	// an import has no recorded status and takes the current one.
	st, err := r.engine.GroupStatus(ctx, name)
	if err != nil {
		resp.Diagnostics.Append(diagGroup(name, err)...)
		return
	}
	recorded, diags := state.status(ctx)
	resp.Diagnostics.Append(diags...)
	if recorded != nil {
		st, _ = engine.ReconcileStatus(*recorded, st)
	}
	resp.Diagnostics.Append(state.fillStatus(ctx, st)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *protectionGroupResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var state protectionGroupModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.engine.DeleteGroup(ctx, state.Name.ValueString()); err != nil && !isNotFound(err) {
		resp.Diagnostics.Append(diagCatalogError("deleting the protection group", err))
	}
}

func (r *protectionGroupResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), req.ID)...)
}

type protectionGroupModelV0 struct {
	ID                types.String    `tfsdk:"id"`
	Name              types.String    `tfsdk:"name"`
	Cluster           types.String    `tfsdk:"cluster"`
	Repository        types.String    `tfsdk:"repository"`
	Workloads         types.Set       `tfsdk:"workloads"`
	Selector          *selectorModel  `tfsdk:"selector"`
	Exclude           types.Set       `tfsdk:"exclude"`
	Consistency       types.String    `tfsdk:"consistency"`
	NodeOrder         types.String    `tfsdk:"node_order"`
	CriticalWorkloads types.List      `tfsdk:"critical_workloads"`
	ExtractAt         types.String    `tfsdk:"extract_at"`
	Retention         *retentionModel `tfsdk:"retention"`
	RPO               types.String    `tfsdk:"rpo"`
	WorkloadStatus    types.Map       `tfsdk:"workload_status"`
	Unprotected       types.List      `tfsdk:"unprotected"`
	Missing           types.List      `tfsdk:"missing"`
	Timeouts          timeouts.Value  `tfsdk:"timeouts"`
}

type selectorModel struct {
	NameRegex types.String `tfsdk:"name_regex"`
	Driver    types.String `tfsdk:"driver"`
	Node      types.String `tfsdk:"node"`
}

type retentionModel struct {
	KeepLast    types.Int64  `tfsdk:"keep_last"`
	KeepHourly  types.Int64  `tfsdk:"keep_hourly"`
	KeepDaily   types.Int64  `tfsdk:"keep_daily"`
	KeepWeekly  types.Int64  `tfsdk:"keep_weekly"`
	KeepMonthly types.Int64  `tfsdk:"keep_monthly"`
	KeepYearly  types.Int64  `tfsdk:"keep_yearly"`
	KeepWithin  types.String `tfsdk:"keep_within"`
}

var workloadStatusType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"node":                types.StringType,
	"state":               types.StringType,
	"last_backup_at":      types.StringType,
	"last_recovery_point": types.StringType,
	"rpo_met":             types.BoolType,
}}

func (m protectionGroupModelV0) record(ctx context.Context) (catalog.ProtectionGroup, diag.Diagnostics) {
	var diags diag.Diagnostics
	g := catalog.ProtectionGroup{
		Name: m.Name.ValueString(), Cluster: m.Cluster.ValueString(), Repository: m.Repository.ValueString(),
		Consistency: m.Consistency.ValueString(), NodeOrder: m.NodeOrder.ValueString(), ExtractAt: m.ExtractAt.ValueString(),
	}
	if !m.Workloads.IsNull() {
		diags.Append(m.Workloads.ElementsAs(ctx, &g.Workloads, false)...)
		sort.Strings(g.Workloads)
	}
	if !m.Exclude.IsNull() {
		diags.Append(m.Exclude.ElementsAs(ctx, &g.Exclude, false)...)
		sort.Strings(g.Exclude)
	}
	if !m.CriticalWorkloads.IsNull() {
		diags.Append(m.CriticalWorkloads.ElementsAs(ctx, &g.CriticalWorkloads, false)...)
	}
	if m.Selector != nil {
		g.Selector = &catalog.Selector{NameRegex: m.Selector.NameRegex.ValueString(), Driver: m.Selector.Driver.ValueString(), Node: m.Selector.Node.ValueString()}
	}
	if m.Retention != nil {
		g.Retention = catalog.Retention{
			KeepLast: int(m.Retention.KeepLast.ValueInt64()), KeepHourly: int(m.Retention.KeepHourly.ValueInt64()),
			KeepDaily: int(m.Retention.KeepDaily.ValueInt64()), KeepWeekly: int(m.Retention.KeepWeekly.ValueInt64()),
			KeepMonthly: int(m.Retention.KeepMonthly.ValueInt64()), KeepYearly: int(m.Retention.KeepYearly.ValueInt64()),
		}
		if s := m.Retention.KeepWithin.ValueString(); s != "" {
			g.Retention.KeepWithin, _ = time.ParseDuration(s) // validated at plan time
		}
	}
	if s := m.RPO.ValueString(); s != "" {
		g.RPO, _ = time.ParseDuration(s)
	}
	return g, diags
}

// fillRecord sets the configuration attributes from the catalog (import,
// refresh), keeping the user's spelling of durations when equal.
func (m *protectionGroupModelV0) fillRecord(ctx context.Context, g catalog.ProtectionGroup) diag.Diagnostics {
	var diags diag.Diagnostics
	m.ID, m.Name, m.Cluster, m.Repository = types.StringValue(g.Name), types.StringValue(g.Name), types.StringValue(g.Cluster), types.StringValue(g.Repository)
	m.Consistency, m.NodeOrder, m.ExtractAt = types.StringValue(g.Consistency), types.StringValue(g.NodeOrder), types.StringValue(g.ExtractAt)
	var d diag.Diagnostics
	m.Workloads, d = optionalSet(ctx, g.Workloads)
	diags.Append(d...)
	m.Exclude, d = optionalSet(ctx, g.Exclude)
	diags.Append(d...)
	if len(g.CriticalWorkloads) > 0 {
		m.CriticalWorkloads, d = types.ListValueFrom(ctx, types.StringType, g.CriticalWorkloads)
		diags.Append(d...)
	} else {
		m.CriticalWorkloads = types.ListNull(types.StringType)
	}
	if g.Selector != nil {
		m.Selector = &selectorModel{NameRegex: optionalString(g.Selector.NameRegex), Driver: optionalString(g.Selector.Driver), Node: optionalString(g.Selector.Node)}
	} else {
		m.Selector = nil
	}
	m.RPO = keepDuration(m.RPO, g.RPO)
	if g.Retention != (catalog.Retention{}) {
		prior := types.StringNull()
		if m.Retention != nil {
			prior = m.Retention.KeepWithin
		}
		m.Retention = &retentionModel{
			KeepLast: optionalInt(g.Retention.KeepLast), KeepHourly: optionalInt(g.Retention.KeepHourly),
			KeepDaily: optionalInt(g.Retention.KeepDaily), KeepWeekly: optionalInt(g.Retention.KeepWeekly),
			KeepMonthly: optionalInt(g.Retention.KeepMonthly), KeepYearly: optionalInt(g.Retention.KeepYearly),
			KeepWithin: keepDuration(prior, g.Retention.KeepWithin),
		}
	} else {
		m.Retention = nil
	}
	return diags
}

func (m *protectionGroupModelV0) fillStatus(ctx context.Context, st engine.GroupStatus) diag.Diagnostics {
	var diags diag.Diagnostics
	status := map[string]attr.Value{}
	for _, w := range st.Workloads {
		last := ""
		if !w.LastBackupAt.IsZero() {
			last = w.LastBackupAt.UTC().Format(time.RFC3339)
		}
		obj, d := types.ObjectValue(workloadStatusType.AttrTypes, map[string]attr.Value{
			"node": types.StringValue(w.Node), "state": types.StringValue(w.State),
			"last_backup_at": types.StringValue(last), "last_recovery_point": types.StringValue(w.LastRecoveryPoint),
			"rpo_met": types.BoolValue(w.RPOMet),
		})
		diags.Append(d...)
		status[w.Name] = obj
	}
	var d diag.Diagnostics
	m.WorkloadStatus, d = types.MapValue(workloadStatusType, status)
	diags.Append(d...)
	m.Unprotected, d = types.ListValueFrom(ctx, types.StringType, nonNil(st.Unprotected))
	diags.Append(d...)
	m.Missing, d = types.ListValueFrom(ctx, types.StringType, nonNil(st.Missing))
	diags.Append(d...)
	return diags
}

// status reads the recorded protection status back from state; nil when
// there is none (import, or planned unknown).
func (m protectionGroupModelV0) status(ctx context.Context) (*engine.GroupStatus, diag.Diagnostics) {
	var diags diag.Diagnostics
	if m.WorkloadStatus.IsNull() || m.WorkloadStatus.IsUnknown() || m.Unprotected.IsUnknown() || m.Missing.IsUnknown() {
		return nil, diags
	}
	type ws struct {
		Node              string `tfsdk:"node"`
		State             string `tfsdk:"state"`
		LastBackupAt      string `tfsdk:"last_backup_at"`
		LastRecoveryPoint string `tfsdk:"last_recovery_point"`
		RPOMet            bool   `tfsdk:"rpo_met"`
	}
	var byName map[string]ws
	diags.Append(m.WorkloadStatus.ElementsAs(ctx, &byName, false)...)
	st := &engine.GroupStatus{}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w := byName[n]
		var last time.Time
		if w.LastBackupAt != "" {
			last, _ = time.Parse(time.RFC3339, w.LastBackupAt)
		}
		st.Workloads = append(st.Workloads, engine.ProtectedWorkload{Name: n, Node: w.Node, State: w.State, LastBackupAt: last, LastRecoveryPoint: w.LastRecoveryPoint, RPOMet: w.RPOMet})
	}
	if !m.Unprotected.IsNull() {
		diags.Append(m.Unprotected.ElementsAs(ctx, &st.Unprotected, false)...)
	}
	if !m.Missing.IsNull() {
		diags.Append(m.Missing.ElementsAs(ctx, &st.Missing, false)...)
	}
	return st, diags
}

func optionalSet(ctx context.Context, v []string) (types.Set, diag.Diagnostics) {
	if len(v) == 0 {
		return types.SetNull(types.StringType), nil
	}
	return types.SetValueFrom(ctx, types.StringType, v)
}

func optionalInt(v int) types.Int64 {
	if v == 0 {
		return types.Int64Null()
	}
	return types.Int64Value(int64(v))
}

// keepDuration keeps the configured spelling ("60m") when it means the
// stored duration, so refresh never shows "1h0m0s" as a diff.
func keepDuration(prior types.String, d time.Duration) types.String {
	if d == 0 {
		return types.StringNull()
	}
	if p, err := time.ParseDuration(prior.ValueString()); err == nil && p == d {
		return prior
	}
	return types.StringValue(shortDuration(d))
}

// shortDuration drops zero units: 1h0m0s -> 1h, 1h30m0s -> 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func diagGroup(name string, err error) diag.Diagnostics {
	if _, ok := engine.AsValidation(err); ok {
		return diagValidation(err)
	}
	if diags, ok := diagRepositoryNotOnNodes("repository", err); ok {
		return diags
	}
	var diags diag.Diagnostics
	if isNotFound(err) {
		diags.AddError("Protection Group Reference Not Found",
			detail(fmt.Sprintf("Protection group %q refers to a cluster or repository that is not registered.", name),
				"Reference the clusterguard_cluster and clusterguard_repository resources (e.g. cluster = clusterguard_cluster.prod.name) so they are created first.", err))
		return diags
	}
	diags.AddError("Protection Group Error", detail(fmt.Sprintf("Protection group %q could not be written or refreshed.", name), "", err))
	return diags
}
