package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

var _ resource.ResourceWithConfigure = (*copyPolicyResource)(nil)

// NewCopyPolicyResource is the constructor the provider registers.
func NewCopyPolicyResource() resource.Resource { return &copyPolicyResource{} }

type copyPolicyResource struct {
	engine *engine.Engine
}

type copyPolicyModel struct {
	ID         types.String    `tfsdk:"id"`
	Group      types.String    `tfsdk:"group"`
	Repository types.String    `tfsdk:"repository"`
	Retention  *retentionModel `tfsdk:"retention"`
	Triggers   types.Map       `tfsdk:"triggers"`
	Copies     types.Map       `tfsdk:"copies"`
	Copied     types.Int64     `tfsdk:"copied"`
}

func (r *copyPolicyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_copy_policy"
}

func (r *copyPolicyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Offsite copies (M11) of a protection group's recovery points in a second repository. Create (and " +
			"every replacement, e.g. through `triggers` naming the latest `clusterguard_backup_run`) copies every recovery " +
			"point of the group the target lacks: only chunks the target does not hold are sent, re-encrypted with the " +
			"target's keys, resumed after an interruption, and read back to verify. Then the copies' own `retention` is " +
			"applied on the target, and the copies are indexed as recovery points of the target repository, so a " +
			"`clusterguard_restore_job` can restore from them when the primary repository is lost. On an S3 target " +
			"written with Object Lock, copies cannot be deleted before their retention passes. Destroy leaves the copies.",
		Attributes: map[string]schema.Attribute{
			"id": idAttribute("`<group>-><repository>`."),
			"group": schema.StringAttribute{
				MarkdownDescription: "Protection group whose recovery points are copied.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"repository": schema.StringAttribute{
				MarkdownDescription: "Target repository (a `clusterguard_repository` other than the group's own).",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"retention": retentionAttribute("The copies' own retention on the target, applied after each copy. Without it every copy is kept."),
			"triggers": schema.MapAttribute{
				MarkdownDescription: "Arbitrary values; a change replaces the resource and so copies again. Set it to the id " +
					"of the group's latest `clusterguard_backup_run` to copy after each run.",
				ElementType:   types.StringType,
				Optional:      true,
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"copies": schema.MapAttribute{
				MarkdownDescription: "Recovery point id in the group's repository → id of its copy (a recovery point of the target repository).",
				ElementType:         types.StringType,
				Computed:            true,
			},
			"copied": schema.Int64Attribute{
				MarkdownDescription: "New copies made by the last copy.",
				Computed:            true,
			},
		},
	}
}

func (r *copyPolicyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if data := providerDataFrom(req.ProviderData, &resp.Diagnostics); data != nil {
		r.engine = data.engine
	}
}

func (m copyPolicyModel) policy() engine.CopyPolicy {
	p := engine.CopyPolicy{Group: m.Group.ValueString(), Target: m.Repository.ValueString()}
	if m.Retention != nil {
		p.Retention = catalog.Retention{
			KeepLast: int(m.Retention.KeepLast.ValueInt64()), KeepHourly: int(m.Retention.KeepHourly.ValueInt64()),
			KeepDaily: int(m.Retention.KeepDaily.ValueInt64()), KeepWeekly: int(m.Retention.KeepWeekly.ValueInt64()),
			KeepMonthly: int(m.Retention.KeepMonthly.ValueInt64()), KeepYearly: int(m.Retention.KeepYearly.ValueInt64()),
		}
		if s := m.Retention.KeepWithin.ValueString(); s != "" {
			p.Retention.KeepWithin, _ = time.ParseDuration(s) // validated at plan time
		}
	}
	return p
}

// copyNow runs the copy and fills the computed attributes.
func (r *copyPolicyResource) copyNow(ctx context.Context, m *copyPolicyModel) diag.Diagnostics {
	var diags diag.Diagnostics
	rep, err := r.engine.CopyRecoveryPoints(ctx, m.policy())
	if err != nil {
		diags.AddError("Copying recovery points failed",
			detail(fmt.Sprintf("copying the recovery points of group %q to repository %q", m.Group.ValueString(), m.Repository.ValueString()),
				"check that both repositories are reachable, then apply again: the copy resumes where it stopped", err))
		return diags
	}
	m.ID = types.StringValue(m.Group.ValueString() + "->" + m.Repository.ValueString())
	m.Copied = types.Int64Value(int64(rep.Copied))
	diags.Append(r.fillCopies(ctx, m)...)
	return diags
}

func (r *copyPolicyResource) fillCopies(ctx context.Context, m *copyPolicyModel) diag.Diagnostics {
	var diags diag.Diagnostics
	g, err := r.engine.GetGroup(ctx, m.Group.ValueString())
	if err != nil {
		diags.AddError("Reading the protection group failed", err.Error())
		return diags
	}
	copies, err := r.engine.CopiesOf(ctx, g.Repository, m.Repository.ValueString())
	if err != nil {
		diags.AddError("Listing copies failed", err.Error())
		return diags
	}
	v, d := types.MapValueFrom(ctx, types.StringType, copies)
	diags.Append(d...)
	m.Copies = v
	return diags
}

func (r *copyPolicyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var m copyPolicyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(r.copyNow(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *copyPolicyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var m copyPolicyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// Unreachable repositories must not fail a plan: keep the last known copies.
	if d := r.fillCopies(ctx, &m); d.HasError() {
		resp.Diagnostics.AddWarning("Could not list the copies", fmt.Sprintf("%v", d.Errors()))
		resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *copyPolicyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var m copyPolicyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(r.copyNow(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// Delete forgets the policy; the copies stay in the target repository.
func (r *copyPolicyResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {
}
