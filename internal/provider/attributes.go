package provider

import (
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
