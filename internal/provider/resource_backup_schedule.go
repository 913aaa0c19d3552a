package provider

import (
	"context"
	"sort"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/schedule"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

var (
	_ resource.ResourceWithConfigure      = (*backupScheduleResource)(nil)
	_ resource.ResourceWithImportState    = (*backupScheduleResource)(nil)
	_ resource.ResourceWithValidateConfig = (*backupScheduleResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*backupScheduleResource)(nil)
)

// NewBackupScheduleResource is the constructor the provider registers.
func NewBackupScheduleResource() resource.Resource { return &backupScheduleResource{} }

type backupScheduleResource struct {
	engine *engine.Engine
}

// maxScheduleDuration bounds the schedule's durations (a year and a day:
// a yearly cron's gap).
const maxScheduleDuration = 366 * 24 * time.Hour

func (r *backupScheduleResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backup_schedule"
}

func (r *backupScheduleResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	durationAttr := func(description string, lo time.Duration) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: description, Optional: true, Validators: []validator.String{validate.Duration(lo, maxScheduleDuration)}}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Backs up a protection group by itself, on a cron expression or an interval. The schedule is " +
			"recorded in the engine's catalog; the engine daemon (`terraform-provider-clusterguard engine serve`) runs each " +
			"due slot exactly once through the same engine code as `clusterguard_backup_run`, tags its recovery points and " +
			"applies the schedule's retention. Every plan refreshes what the schedule did (`next_run_at`, `last_run`, " +
			"failures, missed slots) and warns when no daemon is running, when the last run failed, or when the group's " +
			"RPO is shorter than the longest gap between slots. Destroy forgets the schedule and its slots; recovery points stay.",
		Attributes: map[string]schema.Attribute{
			"id":               idAttribute("The schedule name."),
			"name":             catalogNameReplacing("Schedule name, unique in the catalog. Changing it replaces the schedule (its slot history starts again)."),
			"protection_group": catalogName("Name of the protection group the schedule backs up (reference `clusterguard_protection_group.<name>.name`)."),
			"cron": schema.StringAttribute{
				MarkdownDescription: "When slots fall due: a five-field cron expression (minute hour day-of-month month day-of-week, robfig/cron syntax, e.g. `30 2 * * *`) or a descriptor (`@daily`, `@hourly`, `@weekly`), read in `time_zone`. Exactly one of `cron` and `interval`.",
				Optional:            true,
				Validators: []validator.String{
					stringvalidator.ExactlyOneOf(path.MatchRoot("interval")),
					stringvalidator.LengthAtLeast(1),
				},
			},
			"time_zone": schema.StringAttribute{
				MarkdownDescription: "IANA time zone the `cron` expression is read in (e.g. `Europe/Berlin`); default UTC. Across DST changes a skipped time runs after the gap and a repeated time runs once. Only with `cron`.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.ConflictsWith(path.MatchRoot("interval")), stringvalidator.LengthAtLeast(1)},
			},
			"interval":          durationAttr("Plain interval between slots (e.g. `6h`), at least 1m; slots are whole multiples of it since the Unix epoch, so every daemon computes the same ones. Exactly one of `cron` and `interval`.", schedule.MinInterval),
			"start_window":      durationAttr("A slot that cannot start within this long after its due time is recorded as missed, with the reason. At most the shortest gap between slots; default 1h or that gap if shorter.", time.Second),
			"completion_window": durationAttr("A run still going this long after it started is cancelled, and its slot records why. Default: no bound.", time.Minute),
			"jitter":            durationAttr("Each slot starts after a random delay up to this long (the same for a slot on every daemon), to spread schedules due at the same time. Must be shorter than the start window.", time.Second),
			"paused": schema.BoolAttribute{
				MarkdownDescription: "A paused schedule starts no run; after unpausing, `catch_up` decides what happens to the slots it passed. Default `false`.",
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
			},
			"catch_up": schema.StringAttribute{
				MarkdownDescription: "After downtime of every daemon over one or more slots: `latest` runs the latest missed slot once (never a burst), `skip` records them missed and waits for the next slot. Default `latest`.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(catalog.CatchUpLatest),
				Validators:          []validator.String{stringvalidator.OneOf(catalog.CatchUpLatest, catalog.CatchUpSkip)},
			},
			"tags": schema.SetAttribute{
				MarkdownDescription: "Tags stored on every recovery point the schedule makes (e.g. `daily`); the schedule's `retention` applies to its own recovery points, found by these tags.",
				Optional:            true,
				ElementType:         types.StringType,
				Validators:          []validator.Set{setvalidator.SizeAtLeast(1), setvalidator.ValueStringsAre(validate.Name())},
			},
			"retention":    retentionAttribute("Which of this schedule's own recovery points (those with its `tags`) are kept, applied by the daemon after each run; the rest are forgotten and pruned on the daemon's cadence. Without it the schedule forgets nothing (the group's retention still applies)."),
			"verify_every": durationAttr("Verify the group's repository this often on the engine daemon (every pack read back and checked, like a PBS verify job); results show in the daemon's `/health` and metrics. Default: no scheduled verification.", time.Hour),
			"next_run_at": schema.StringAttribute{
				MarkdownDescription: "Next due slot (RFC 3339, before jitter), as of the last refresh; empty while paused.",
				Computed:            true,
			},
			"last_run": schema.SingleNestedAttribute{
				MarkdownDescription: "The newest slot that started (or tried to start) a run, as of the last refresh; null until one did.",
				Computed:            true,
				Attributes: map[string]schema.Attribute{
					"id":          schema.StringAttribute{MarkdownDescription: "Backup run id (empty when the slot failed before its run started).", Computed: true},
					"slot":        schema.StringAttribute{MarkdownDescription: "Nominal due time of the slot (RFC 3339).", Computed: true},
					"status":      schema.StringAttribute{MarkdownDescription: "`running`, `succeeded`, `partial` or `failed`.", Computed: true},
					"started_at":  schema.StringAttribute{MarkdownDescription: "When the run started (RFC 3339), empty if it did not.", Computed: true},
					"finished_at": schema.StringAttribute{MarkdownDescription: "When the run finished (RFC 3339), empty while running.", Computed: true},
					"errors": schema.ListAttribute{
						MarkdownDescription: "What went wrong: the slot's reason, the run's error and `WORKLOAD on NODE: ERROR` for each failed workload.",
						Computed:            true,
						ElementType:         types.StringType,
					},
				},
			},
			"consecutive_failures": schema.Int64Attribute{MarkdownDescription: "Failed or partial runs since the last successful one.", Computed: true},
			"missed_slots":         schema.Int64Attribute{MarkdownDescription: "Slots recorded as missed among the schedule's newest 1,000.", Computed: true},
			"last_missed_reason":   schema.StringAttribute{MarkdownDescription: "Why the newest missed slot was missed; empty if none.", Computed: true},
			"timeouts":             timeouts.Attributes(ctx, timeouts.Opts{Create: true, Read: true, Update: true, Delete: true}),
		},
	}
}

func (r *backupScheduleResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if data := providerDataFrom(req.ProviderData, &resp.Diagnostics); data != nil {
		r.engine = data.engine
	}
}

// ValidateConfig runs the planner's checks at plan time (cron syntax,
// unknown zone, windows and jitter against the gap between slots) once the
// values they need are known.
func (r *backupScheduleResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m backupScheduleModelV0
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	for _, v := range []types.String{m.Cron, m.TimeZone, m.Interval, m.StartWindow, m.CompletionWindow, m.Jitter, m.CatchUp} {
		if v.IsUnknown() {
			return
		}
	}
	if m.Cron.IsNull() == m.Interval.IsNull() {
		return // ExactlyOneOf says so
	}
	s, diags := m.record(ctx)
	if diags.HasError() {
		return // a malformed duration: its validator says so
	}
	s.Name, s.Group = "plan", "plan" // checked by their own validators, maybe unknown yet
	verrs, _ := engine.ValidationErrors(engine.ValidateSchedule(s))
	for _, v := range verrs {
		switch v.Field {
		case schedule.FieldCron, schedule.FieldTimeZone, schedule.FieldInterval, schedule.FieldStartWindow,
			schedule.FieldCompletionWindow, schedule.FieldJitter, schedule.FieldCatchUp:
			resp.Diagnostics.Append(diagValidation(v)...)
		}
	}
}

// ModifyPlan warns about protection that is not happening: no daemon, a
// failed last run, an RPO the slots cannot meet.
func (r *backupScheduleResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if r.engine == nil || req.Plan.Raw.IsNull() {
		return
	}
	var plan backupScheduleModelV0
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || plan.Cron.IsUnknown() || plan.Interval.IsUnknown() || plan.TimeZone.IsUnknown() ||
		plan.StartWindow.IsUnknown() || plan.Jitter.IsUnknown() || plan.CompletionWindow.IsUnknown() {
		return
	}
	s, diags := plan.record(ctx)
	if diags.HasError() {
		return
	}
	c, err := r.engine.CheckSchedule(ctx, s, r.engine.Now())
	if err != nil {
		tflog.Warn(ctx, "schedule check unavailable at plan time", map[string]any{"schedule": s.Name, "error": err.Error()})
		return
	}
	if !c.DaemonSeen && !s.Paused {
		resp.Diagnostics.Append(diagSchedulesNotRunning(c.DaemonSeenAt))
	}
	if c.RPOUnmet && !plan.ProtectionGroup.IsUnknown() {
		resp.Diagnostics.Append(diagRPOUnmetBySchedule(s.Group, c))
	}
	if req.State.Raw.IsNull() {
		return
	}
	var state backupScheduleModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if run := state.lastRun(ctx); run != nil && (run.Status == catalog.SlotFailed || run.Status == catalog.SlotPartial) {
		resp.Diagnostics.Append(diagLastRunFailed(state.Name.ValueString(), run, int(state.ConsecutiveFailures.ValueInt64())))
	}
}

func (r *backupScheduleResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.write(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics, true)
}

func (r *backupScheduleResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.write(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics, false)
}

func (r *backupScheduleResource) write(ctx context.Context, get func(context.Context, any) diag.Diagnostics, st stateSetter, diags *diag.Diagnostics, create bool) {
	if r.engine == nil {
		diags.Append(diagUnconfigured())
		return
	}
	var plan backupScheduleModelV0
	diags.Append(get(ctx, &plan)...)
	if diags.HasError() {
		return
	}
	timeout, d := plan.Timeouts.Create(ctx, 2*time.Minute)
	if !create {
		timeout, d = plan.Timeouts.Update(ctx, 2*time.Minute)
	}
	diags.Append(d...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	s, d := plan.record(ctx)
	diags.Append(d...)
	if diags.HasError() {
		return
	}
	if create {
		if _, err := r.engine.GetSchedule(ctx, s.Name); err == nil {
			diags.Append(diagScheduleAlreadyRegistered(s.Name))
			return
		}
	}
	if err := r.engine.PutSchedule(ctx, s); err != nil {
		diags.Append(diagSchedule(s.Name, "writing", err)...)
		return
	}
	tflog.Info(ctx, "backup schedule recorded", map[string]any{"schedule": s.Name, "group": s.Group})
	status, err := r.engine.ScheduleStatus(ctx, s.Name, r.engine.Now())
	if err != nil {
		diags.Append(diagSchedule(s.Name, "reading the status of", err)...)
		return
	}
	plan.ID = types.StringValue(s.Name)
	diags.Append(plan.fillStatus(ctx, status)...)
	diags.Append(st.Set(ctx, &plan)...)
}

func (r *backupScheduleResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var state backupScheduleModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, d := state.Timeouts.Read(ctx, time.Minute)
	resp.Diagnostics.Append(d...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	name := state.ID.ValueString()
	if name == "" {
		name = state.Name.ValueString()
	}
	status, err := r.engine.ScheduleStatus(ctx, name, r.engine.Now())
	if isNotFound(err) {
		tflog.Warn(ctx, "backup schedule no longer in the catalog; removing from state", map[string]any{"schedule": name})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(diagSchedule(name, "reading", err)...)
		return
	}
	if status.PlanErr != nil {
		resp.Diagnostics.Append(diagScheduleNotPlannable(name, status.PlanErr))
	}
	resp.Diagnostics.Append(state.fillRecord(ctx, status.Schedule)...)
	resp.Diagnostics.Append(state.fillStatus(ctx, status)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *backupScheduleResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var state backupScheduleModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, d := state.Timeouts.Delete(ctx, time.Minute)
	resp.Diagnostics.Append(d...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.engine.DeleteSchedule(ctx, state.Name.ValueString()); err != nil && !isNotFound(err) {
		resp.Diagnostics.Append(diagSchedule(state.Name.ValueString(), "deleting", err)...)
	}
}

func (r *backupScheduleResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), req.ID)...)
}

type backupScheduleModelV0 struct {
	ID                  types.String    `tfsdk:"id"`
	Name                types.String    `tfsdk:"name"`
	ProtectionGroup     types.String    `tfsdk:"protection_group"`
	Cron                types.String    `tfsdk:"cron"`
	TimeZone            types.String    `tfsdk:"time_zone"`
	Interval            types.String    `tfsdk:"interval"`
	StartWindow         types.String    `tfsdk:"start_window"`
	CompletionWindow    types.String    `tfsdk:"completion_window"`
	Jitter              types.String    `tfsdk:"jitter"`
	Paused              types.Bool      `tfsdk:"paused"`
	CatchUp             types.String    `tfsdk:"catch_up"`
	Tags                types.Set       `tfsdk:"tags"`
	Retention           *retentionModel `tfsdk:"retention"`
	VerifyEvery         types.String    `tfsdk:"verify_every"`
	NextRunAt           types.String    `tfsdk:"next_run_at"`
	LastRun             types.Object    `tfsdk:"last_run"`
	ConsecutiveFailures types.Int64     `tfsdk:"consecutive_failures"`
	MissedSlots         types.Int64     `tfsdk:"missed_slots"`
	LastMissedReason    types.String    `tfsdk:"last_missed_reason"`
	Timeouts            timeouts.Value  `tfsdk:"timeouts"`
}

var lastRunType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"id":          types.StringType,
	"slot":        types.StringType,
	"status":      types.StringType,
	"started_at":  types.StringType,
	"finished_at": types.StringType,
	"errors":      types.ListType{ElemType: types.StringType},
}}

// record is the catalog schedule the configuration describes. Durations
// were validated at plan time; a malformed one is reported here too.
func (m backupScheduleModelV0) record(ctx context.Context) (catalog.Schedule, diag.Diagnostics) {
	var diags diag.Diagnostics
	s := catalog.Schedule{
		Name: m.Name.ValueString(), Group: m.ProtectionGroup.ValueString(),
		Cron: m.Cron.ValueString(), TimeZone: m.TimeZone.ValueString(),
		Paused: m.Paused.ValueBool(), CatchUp: m.CatchUp.ValueString(),
	}
	for _, f := range []struct {
		name string
		v    types.String
		dst  *time.Duration
	}{
		{"interval", m.Interval, &s.Interval}, {"start_window", m.StartWindow, &s.StartWindow},
		{"completion_window", m.CompletionWindow, &s.CompletionWindow}, {"jitter", m.Jitter, &s.Jitter},
		{"verify_every", m.VerifyEvery, &s.VerifyEvery},
	} {
		if f.v.IsNull() || f.v.IsUnknown() {
			continue
		}
		d, err := time.ParseDuration(f.v.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root(f.name), "Invalid "+titleField(f.name), err.Error())
			continue
		}
		*f.dst = d
	}
	if !m.Tags.IsNull() && !m.Tags.IsUnknown() {
		diags.Append(m.Tags.ElementsAs(ctx, &s.Tags, false)...)
		sort.Strings(s.Tags)
	}
	if m.Retention != nil {
		s.Retention = catalog.Retention{
			KeepLast: int(m.Retention.KeepLast.ValueInt64()), KeepHourly: int(m.Retention.KeepHourly.ValueInt64()),
			KeepDaily: int(m.Retention.KeepDaily.ValueInt64()), KeepWeekly: int(m.Retention.KeepWeekly.ValueInt64()),
			KeepMonthly: int(m.Retention.KeepMonthly.ValueInt64()), KeepYearly: int(m.Retention.KeepYearly.ValueInt64()),
		}
		if v := m.Retention.KeepWithin.ValueString(); v != "" {
			s.Retention.KeepWithin, _ = time.ParseDuration(v) // validated at plan time
		}
	}
	return s, diags
}

// fillRecord sets the configuration attributes from the catalog (import,
// refresh), keeping the user's spelling of durations when equal.
func (m *backupScheduleModelV0) fillRecord(ctx context.Context, s catalog.Schedule) diag.Diagnostics {
	var diags diag.Diagnostics
	m.ID, m.Name, m.ProtectionGroup = types.StringValue(s.Name), types.StringValue(s.Name), types.StringValue(s.Group)
	m.Cron, m.TimeZone = optionalString(s.Cron), optionalString(s.TimeZone)
	m.Interval = keepDuration(m.Interval, s.Interval)
	m.StartWindow = keepDuration(m.StartWindow, s.StartWindow)
	m.CompletionWindow = keepDuration(m.CompletionWindow, s.CompletionWindow)
	m.Jitter = keepDuration(m.Jitter, s.Jitter)
	m.VerifyEvery = keepDuration(m.VerifyEvery, s.VerifyEvery)
	m.Paused, m.CatchUp = types.BoolValue(s.Paused), types.StringValue(s.CatchUp)
	var d diag.Diagnostics
	m.Tags, d = optionalSet(ctx, s.Tags)
	diags.Append(d...)
	if s.Retention != (catalog.Retention{}) {
		prior := types.StringNull()
		if m.Retention != nil {
			prior = m.Retention.KeepWithin
		}
		m.Retention = &retentionModel{
			KeepLast: optionalInt(s.Retention.KeepLast), KeepHourly: optionalInt(s.Retention.KeepHourly),
			KeepDaily: optionalInt(s.Retention.KeepDaily), KeepWeekly: optionalInt(s.Retention.KeepWeekly),
			KeepMonthly: optionalInt(s.Retention.KeepMonthly), KeepYearly: optionalInt(s.Retention.KeepYearly),
			KeepWithin: keepDuration(prior, s.Retention.KeepWithin),
		}
	} else {
		m.Retention = nil
	}
	return diags
}

func (m *backupScheduleModelV0) fillStatus(ctx context.Context, st engine.ScheduleStatus) diag.Diagnostics {
	var diags diag.Diagnostics
	m.NextRunAt = types.StringValue(rfc3339OrEmpty(st.NextRunAt))
	m.ConsecutiveFailures = types.Int64Value(int64(st.ConsecutiveFailures))
	m.MissedSlots = types.Int64Value(int64(st.MissedSlots))
	m.LastMissedReason = types.StringValue(st.LastMissedReason)
	m.LastRun = types.ObjectNull(lastRunType.AttrTypes)
	if run := st.LastRun; run != nil {
		errs, d := types.ListValueFrom(ctx, types.StringType, nonNil(run.Errors))
		diags.Append(d...)
		m.LastRun, d = types.ObjectValue(lastRunType.AttrTypes, map[string]attr.Value{
			"id": types.StringValue(run.RunID), "slot": types.StringValue(rfc3339OrEmpty(run.Slot)),
			"status": types.StringValue(run.Status), "started_at": types.StringValue(rfc3339OrEmpty(run.StartedAt)),
			"finished_at": types.StringValue(rfc3339OrEmpty(run.FinishedAt)), "errors": errs,
		})
		diags.Append(d...)
	}
	return diags
}

// lastRun reads last_run back from state (nil when there is none).
func (m backupScheduleModelV0) lastRun(ctx context.Context) *engine.ScheduleRun {
	if m.LastRun.IsNull() || m.LastRun.IsUnknown() {
		return nil
	}
	var v struct {
		ID         string   `tfsdk:"id"`
		Slot       string   `tfsdk:"slot"`
		Status     string   `tfsdk:"status"`
		StartedAt  string   `tfsdk:"started_at"`
		FinishedAt string   `tfsdk:"finished_at"`
		Errors     []string `tfsdk:"errors"`
	}
	if d := m.LastRun.As(ctx, &v, basetypes.ObjectAsOptions{}); d.HasError() {
		return nil
	}
	slot, _ := time.Parse(time.RFC3339, v.Slot)
	return &engine.ScheduleRun{Slot: slot, RunID: v.ID, Status: v.Status, Errors: v.Errors}
}

func rfc3339OrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
