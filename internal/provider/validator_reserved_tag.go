package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// notReservedTag refuses tags with a prefix the engine daemon reserves for
// scheduled recovery points (catalog.ReservedTagPrefixes): a user tag such
// as "schedule:nightly@..." would put the point in that schedule's
// retention tier, which could then forget it.
type notReservedTag struct{}

func (notReservedTag) Description(context.Context) string {
	return "must not start with a reserved prefix (schedule:, retry-of:)"
}

func (v notReservedTag) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (notReservedTag) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := catalog.CheckUserTag(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Reserved tag", err.Error())
	}
}
