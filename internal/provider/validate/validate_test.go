package validate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestValidators(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		v       validator.String
		value   types.String
		wantErr string // substring; empty means valid
	}{
		{"endpoint ok", Endpoint(), types.StringValue("https://10.0.0.5:7420"), ""},
		{"endpoint http ok", Endpoint(), types.StringValue("http://127.0.0.1:1234"), ""},
		{"endpoint no scheme", Endpoint(), types.StringValue("10.0.0.5:7420"), "http:// or https://"},
		{"endpoint no port", Endpoint(), types.StringValue("https://node1"), "no port"},
		{"endpoint path", Endpoint(), types.StringValue("https://node1:7420/v1"), "no path"},
		{"endpoint garbage", Endpoint(), types.StringValue("http://%zz:1"), "not a URL"},
		{"endpoint null", Endpoint(), types.StringNull(), ""},
		{"endpoint unknown", Endpoint(), types.StringUnknown(), ""},
		{"duration ok", Duration(time.Second, time.Hour), types.StringValue("30s"), ""},
		{"duration bad", Duration(time.Second, time.Hour), types.StringValue("thirty"), "not a duration"},
		{"duration low", Duration(time.Second, time.Hour), types.StringValue("10ms"), "out of range"},
		{"name ok", Name(), types.StringValue("prod-1"), ""},
		{"name empty", Name(), types.StringValue(""), "must not be empty"},
		{"name bad", Name(), types.StringValue("-x y"), "not a valid name"},
		{"regex ok", Regex(), types.StringValue("^db-.*"), ""},
		{"regex bad", Regex(), types.StringValue("(["), "not a valid regular expression"},
		{"abs ok", AbsolutePath(), types.StringValue("/srv/shared"), ""},
		{"abs rel", AbsolutePath(), types.StringValue("srv"), "absolute"},
		{"nonempty", NonEmpty(), types.StringValue(""), "must not be empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := &validator.StringResponse{}
			tc.v.ValidateString(context.Background(), validator.StringRequest{Path: path.Root("x"), ConfigValue: tc.value}, resp)
			if tc.wantErr == "" {
				if resp.Diagnostics.HasError() {
					t.Fatalf("unexpected error: %v", resp.Diagnostics)
				}
				return
			}
			if !resp.Diagnostics.HasError() {
				t.Fatalf("want error containing %q, got none", tc.wantErr)
			}
			if got := resp.Diagnostics[0].Detail(); !strings.Contains(got, tc.wantErr) {
				t.Fatalf("error %q does not contain %q", got, tc.wantErr)
			}
		})
	}
}
