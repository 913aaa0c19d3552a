package provider

import (
	"context"
	"log/slog"

	"github.com/hashicorp/terraform-plugin-log/tflog"
)

// tflogLogger returns a slog.Logger that writes to Terraform's log through
// the request context each engine call carries, so engine progress shows up
// with TF_LOG=INFO next to the provider's own entries.
func tflogLogger(context.Context) *slog.Logger {
	return slog.New(tflogHandler{})
}

type tflogHandler struct {
	attrs []slog.Attr
}

func (tflogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h tflogHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := make(map[string]any, r.NumAttrs()+len(h.attrs))
	for _, a := range h.attrs {
		fields[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		fields[a.Key] = a.Value.Any()
		return true
	})
	switch {
	case r.Level >= slog.LevelError:
		tflog.Error(ctx, r.Message, fields)
	case r.Level >= slog.LevelWarn:
		tflog.Warn(ctx, r.Message, fields)
	case r.Level >= slog.LevelInfo:
		tflog.Info(ctx, r.Message, fields)
	default:
		tflog.Debug(ctx, r.Message, fields)
	}
	return nil
}

func (h tflogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return tflogHandler{attrs: append(append([]slog.Attr{}, h.attrs...), attrs...)}
}

// Groups are flattened: tflog fields are a flat map.
func (h tflogHandler) WithGroup(string) slog.Handler { return h }
