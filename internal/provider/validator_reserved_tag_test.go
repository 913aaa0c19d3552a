package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// A backup run's tag may not pretend to be a schedule's or a retry's.
func TestNotReservedTag(t *testing.T) {
	for tag, bad := range map[string]bool{"pre-upgrade": false, "schedules": false, "schedule:nightly@1": true, "retry-of:run-1": true} {
		var resp validator.StringResponse
		notReservedTag{}.ValidateString(context.Background(), validator.StringRequest{Path: path.Root("tags"), ConfigValue: types.StringValue(tag)}, &resp)
		if resp.Diagnostics.HasError() != bad {
			t.Errorf("tag %q: error %v, want %v (%v)", tag, resp.Diagnostics.HasError(), bad, resp.Diagnostics)
		}
	}
}
