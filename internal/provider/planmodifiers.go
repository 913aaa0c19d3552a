package provider

import (
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
)

func int64UseState() planmodifier.Int64 { return int64planmodifier.UseStateForUnknown() }
