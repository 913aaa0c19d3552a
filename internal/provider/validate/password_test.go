package validate

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestRepositoryPassword(t *testing.T) {
	t.Parallel()
	for pw, wantErr := range map[string]bool{"hunter2": true, "elevenchars": true, "twelve chars": false, "a much longer passphrase": false} {
		req := validator.StringRequest{Path: path.Root("password"), ConfigValue: types.StringValue(pw)}
		var resp validator.StringResponse
		RepositoryPassword().ValidateString(context.Background(), req, &resp)
		if resp.Diagnostics.HasError() != wantErr {
			t.Errorf("%d-character password: error %v, want %v", len(pw), resp.Diagnostics, wantErr)
		}
		for _, d := range resp.Diagnostics {
			if !strings.Contains(d.Detail(), "at least 12") || strings.Contains(d.Detail(), pw) {
				t.Errorf("diagnostic %q: want the minimum and never the password", d.Detail())
			}
		}
	}
}
