package provider

import (
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

// Attribute shapes the resources share.

// idAttribute is a resource's computed id, fixed once it is created.
func idAttribute(description string) schema.StringAttribute {
	return createdString(description)
}

// createdString is a computed string set when the resource is created and
// kept by every later plan (so plans do not show it as "known after apply").
func createdString(description string) schema.StringAttribute {
	return schema.StringAttribute{
		MarkdownDescription: description,
		Computed:            true,
		PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
	}
}

// catalogName is a required name of a catalog object (a cluster, a
// repository, a group), checked at plan time.
func catalogName(description string) schema.StringAttribute {
	return schema.StringAttribute{
		MarkdownDescription: description,
		Required:            true,
		Validators:          []validator.String{validate.Name()},
	}
}

// catalogNameReplacing is a catalog name whose change replaces the resource.
func catalogNameReplacing(description string) schema.StringAttribute {
	a := catalogName(description)
	a.PlanModifiers = []planmodifier.String{stringplanmodifier.RequiresReplace()}
	return a
}

// retentionAttribute is the retention block of protection groups and
// backup schedules (restic's keep rules).
func retentionAttribute(description string) schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{
		MarkdownDescription: description,
		Optional:            true,
		Attributes: map[string]schema.Attribute{
			"keep_last":    schema.Int64Attribute{MarkdownDescription: "Keep the newest N.", Optional: true, Validators: []validator.Int64{int64validator.AtLeast(1)}},
			"keep_hourly":  schema.Int64Attribute{MarkdownDescription: "Keep the newest of each of the last N hours.", Optional: true, Validators: []validator.Int64{int64validator.AtLeast(1)}},
			"keep_daily":   schema.Int64Attribute{MarkdownDescription: "Keep the newest of each of the last N days.", Optional: true, Validators: []validator.Int64{int64validator.AtLeast(1)}},
			"keep_weekly":  schema.Int64Attribute{MarkdownDescription: "Keep the newest of each of the last N weeks.", Optional: true, Validators: []validator.Int64{int64validator.AtLeast(1)}},
			"keep_monthly": schema.Int64Attribute{MarkdownDescription: "Keep the newest of each of the last N months.", Optional: true, Validators: []validator.Int64{int64validator.AtLeast(1)}},
			"keep_yearly":  schema.Int64Attribute{MarkdownDescription: "Keep the newest of each of the last N years.", Optional: true, Validators: []validator.Int64{int64validator.AtLeast(1)}},
			"keep_within":  schema.StringAttribute{MarkdownDescription: "Keep everything younger than this duration (e.g. `240h` for 10 days).", Optional: true, Validators: []validator.String{validate.Duration(time.Minute, 100*365*24*time.Hour)}},
		},
	}
}
