// Package validate holds the provider's custom plan-time validators; the
// rules themselves live in the engine so the CLI and daemon apply the same.
package validate

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

type stringFunc struct {
	desc  string
	check func(string) error
}

func (v stringFunc) Description(context.Context) string         { return v.desc }
func (v stringFunc) MarkdownDescription(context.Context) string { return v.desc }

func (v stringFunc) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Attribute Value", fmt.Sprintf("%s: %s", req.Path, err))
	}
}

// NonEmpty refuses "" (null is left to Optional/Required).
func NonEmpty() validator.String {
	return stringFunc{desc: "must not be empty", check: func(s string) error {
		if s == "" {
			return fmt.Errorf("must not be empty; omit the attribute to use the default")
		}
		return nil
	}}
}

// Duration requires a Go duration between min and max.
func Duration(min, max time.Duration) validator.String {
	return stringFunc{desc: fmt.Sprintf("a duration such as 30s or 5m, between %s and %s", min, max), check: func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration; write it like 30s, 5m or 1h30m", s)
		}
		if d < min || d > max {
			return fmt.Errorf("%s is out of range; use a value between %s and %s", d, min, max)
		}
		return nil
	}}
}

// Endpoint requires an agent endpoint URL: http(s)://host:port.
func Endpoint() validator.String {
	return stringFunc{desc: "an agent endpoint such as https://10.0.0.5:7420", check: func(s string) error {
		_, err := engine.NormalizeEndpoint(s)
		return err
	}}
}

// Name requires a clusterguard name (cluster, node, workload).
func Name() validator.String {
	return stringFunc{desc: "1-63 letters, digits, '-', '_' or '.', starting with a letter or digit", check: func(s string) error {
		if err := engine.ValidateName("name", s); err != nil {
			if v, ok := engine.AsValidation(err); ok {
				return errors.New(v.Reason)
			}
			return err
		}
		return nil
	}}
}

// Regex requires a valid RE2 regular expression.
func Regex() validator.String {
	return stringFunc{desc: "a regular expression (RE2 syntax)", check: func(s string) error {
		if _, err := regexp.Compile(s); err != nil {
			return fmt.Errorf("%q is not a valid regular expression: %w", s, err)
		}
		return nil
	}}
}

// AbsolutePath requires an absolute slash-separated path.
func AbsolutePath() validator.String {
	return stringFunc{desc: "an absolute path", check: func(s string) error {
		if len(s) == 0 || s[0] != '/' {
			return fmt.Errorf("%q must be an absolute path (starting with /)", s)
		}
		return nil
	}}
}

// RepositoryURL requires a directory path or s3://bucket[/prefix].
func RepositoryURL() validator.String {
	return stringFunc{desc: "an absolute directory path or s3://bucket/prefix", check: engine.ValidateRepositoryURL}
}

// Pattern requires s to match re, explaining what is expected.
func Pattern(re *regexp.Regexp, what string) validator.String {
	return stringFunc{desc: what, check: func(s string) error {
		if !re.MatchString(s) {
			return fmt.Errorf("%q is not %s", s, what)
		}
		return nil
	}}
}

// RFC3339 requires a time such as 2026-11-22T10:00:00Z.
func RFC3339() validator.String {
	return stringFunc{desc: "a time in RFC 3339 format, e.g. 2026-11-22T10:00:00Z", check: func(s string) error {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return fmt.Errorf("%q is not an RFC 3339 time; write it like 2026-11-22T10:00:00Z", s)
		}
		return nil
	}}
}

// RelativePath requires a path inside the shared volume: relative, no '..'.
func RelativePath() validator.String {
	return stringFunc{desc: "a path relative to the shared volume", check: engine.ValidateRelativePath}
}
