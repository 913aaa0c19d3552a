// Package provider is the clusterguard Terraform provider: schemas, plan-time
// validation and state mapping. Behaviour lives in the engine it calls.
package provider

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/catalogopen"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

var _ provider.Provider = (*clusterguardProvider)(nil)

// Option adjusts a provider built by New; tests inject a clock with it.
type Option func(*clusterguardProvider)

// WithClock makes the engine read time from now (RPO, retention, schedules).
func WithClock(now func() time.Time) Option {
	return func(p *clusterguardProvider) { p.now = now }
}

// New returns a constructor for the provider server.
func New(version string, opts ...Option) func() provider.Provider {
	return func() provider.Provider {
		p := &clusterguardProvider{version: version}
		for _, o := range opts {
			o(p)
		}
		return p
	}
}

type clusterguardProvider struct {
	version      string
	now          func() time.Time
	runHooks     engine.RunHooks
	restoreHooks engine.RestoreHooks
	wait         func(context.Context, time.Duration) error
}

// WithRestoreHooks lets tests act at precise points of a restore.
func WithRestoreHooks(h engine.RestoreHooks) Option {
	return func(p *clusterguardProvider) { p.restoreHooks = h }
}

// WithRunHooks lets tests act at precise points of a backup run.
func WithRunHooks(h engine.RunHooks) Option {
	return func(p *clusterguardProvider) { p.runHooks = h }
}

// WithWait replaces the engine's retry backoff (tests return at once).
func WithWait(wait func(context.Context, time.Duration) error) Option {
	return func(p *clusterguardProvider) { p.wait = wait }
}

// providerData is what Configure hands to every resource and data source.
type providerData struct {
	engine       *engine.Engine
	runHooks     engine.RunHooks
	restoreHooks engine.RestoreHooks
	// insecurePlaintext: http:// endpoints to other hosts are allowed.
	insecurePlaintext bool
}

func (p *clusterguardProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "clusterguard"
	resp.Version = p.version
}

func (p *clusterguardProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "clusterguard protects virtual machines, databases and services on a cluster of nodes " +
			"that share a volume. The provider embeds the orchestration engine, which talks to the clusterguard agent " +
			"on every node and keeps its durable state in a catalog.",
		Attributes: map[string]schema.Attribute{
			"catalog": schema.StringAttribute{
				MarkdownDescription: "The engine's catalog: the path of an embedded SQLite file, or a PostgreSQL URL " +
					"(`postgres://user@host:5432/db`) so several teams or engines share one catalog. Defaults to " +
					"`$XDG_DATA_HOME/clusterguard/catalog.db` (`~/.local/share/clusterguard/catalog.db`). " +
					"Environment variable: `CLUSTERGUARD_CATALOG`. Repository passwords and S3 secrets in the catalog are " +
					"sealed (AES-256-GCM) with a catalog key the catalog does not hold: `CLUSTERGUARD_CATALOG_KEY` (32 random " +
					"bytes, base64) or `CLUSTERGUARD_CATALOG_KEY_FILE`; for a SQLite catalog without either, `<catalog>.key` " +
					"is created beside it (mode 0600); a PostgreSQL catalog requires one. A PostgreSQL URL without `sslmode` " +
					"uses `sslmode=verify-full`.",
				Optional:   true,
				Validators: []validator.String{validate.NonEmpty()},
			},
			"agent_token": schema.StringAttribute{
				MarkdownDescription: "Bearer token the node agents require (the content of each agent's `token_file`). " +
					"Environment variable: `CLUSTERGUARD_AGENT_TOKEN`.",
				Optional:  true,
				Sensitive: true,
			},
			"agent_tokens": schema.MapAttribute{
				MarkdownDescription: "Per-node bearer tokens: node name → the content of that node's agent `token_file`, so one " +
					"leaked token opens one node only. A node without an entry uses `agent_token`.",
				Optional:    true,
				Sensitive:   true,
				ElementType: types.StringType,
			},
			"client_cert_file": schema.StringAttribute{
				MarkdownDescription: "PEM client certificate the engine presents to agents whose `tls` block sets `client_ca_file` " +
					"(mutual TLS); set together with `client_key_file`. Environment variable: `CLUSTERGUARD_CLIENT_CERT_FILE`.",
				Optional:   true,
				Validators: []validator.String{validate.NonEmpty()},
			},
			"client_key_file": schema.StringAttribute{
				MarkdownDescription: "PEM private key of `client_cert_file`. Environment variable: `CLUSTERGUARD_CLIENT_KEY_FILE`.",
				Optional:            true,
				Validators:          []validator.String{validate.NonEmpty()},
			},
			"insecure_plaintext": schema.BoolAttribute{
				MarkdownDescription: "Allow `http://` agent endpoints on hosts other than loopback (`127.0.0.0/8`, `::1`, `localhost`). " +
					"Off by default: the agent token and every request would cross the network in clear text. Only for trusted, " +
					"isolated networks; the agents must set `insecure_plaintext = true` too.",
				Optional: true,
			},
			"ca_file": schema.StringAttribute{
				MarkdownDescription: "PEM file with the certificate authority that signed the agents' TLS certificates, " +
					"for `https://` endpoints. Defaults to the system roots. Environment variable: `CLUSTERGUARD_CA_FILE`.",
				Optional:   true,
				Validators: []validator.String{validate.NonEmpty()},
			},
			"request_timeout": schema.StringAttribute{
				MarkdownDescription: "Timeout of one request to an agent, as a Go duration (`30s`, `2m`). Requests that fail " +
					"to connect or get a 5xx answer are retried with backoff. Default `30s`.",
				Optional:   true,
				Validators: []validator.String{validate.Duration(time.Second, time.Hour)},
			},
		},
	}
}

type providerModelV0 struct {
	Catalog           types.String `tfsdk:"catalog"`
	AgentToken        types.String `tfsdk:"agent_token"`
	AgentTokens       types.Map    `tfsdk:"agent_tokens"`
	CAFile            types.String `tfsdk:"ca_file"`
	ClientCertFile    types.String `tfsdk:"client_cert_file"`
	ClientKeyFile     types.String `tfsdk:"client_key_file"`
	InsecurePlaintext types.Bool   `tfsdk:"insecure_plaintext"`
	RequestTimeout    types.String `tfsdk:"request_timeout"`
}

func (p *clusterguardProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModelV0
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.Catalog.IsUnknown() || cfg.AgentToken.IsUnknown() || cfg.CAFile.IsUnknown() || cfg.RequestTimeout.IsUnknown() ||
		cfg.AgentTokens.IsUnknown() || cfg.ClientCertFile.IsUnknown() || cfg.ClientKeyFile.IsUnknown() || cfg.InsecurePlaintext.IsUnknown() {
		// Values known only after apply: configure on the next pass.
		return
	}
	catalogPath := firstNonEmpty(cfg.Catalog.ValueString(), os.Getenv("CLUSTERGUARD_CATALOG"), defaultCatalogPath())
	token := firstNonEmpty(cfg.AgentToken.ValueString(), os.Getenv("CLUSTERGUARD_AGENT_TOKEN"))
	caFile := firstNonEmpty(cfg.CAFile.ValueString(), os.Getenv("CLUSTERGUARD_CA_FILE"))
	timeout := 30 * time.Second
	if s := cfg.RequestTimeout.ValueString(); s != "" {
		timeout, _ = time.ParseDuration(s) // validated at plan time
	}
	nodeTokens := map[string]string{}
	resp.Diagnostics.Append(cfg.AgentTokens.ElementsAs(ctx, &nodeTokens, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if token == "" && len(nodeTokens) == 0 {
		resp.Diagnostics.Append(diagMissingToken(path.Root("agent_token")))
		return
	}
	tlsConfig, diags := agentTLS(cfg, caFile)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	store, err := openCatalog(ctx, catalogPath)
	if err != nil {
		resp.Diagnostics.Append(diagCatalogOpen(path.Root("catalog"), redactURL(catalogPath), err))
		return
	}
	dial := engine.HTTPDialer(engine.HTTPDialerOptions{Token: token, NodeTokens: nodeTokens, TLSConfig: tlsConfig,
		InsecurePlaintext: cfg.InsecurePlaintext.ValueBool(), RequestTimeout: timeout, Logger: tflogLogger(ctx)})
	eng, err := engine.New(engine.Options{
		Store:  store,
		Dial:   dial,
		Now:    p.now,
		Wait:   p.wait,
		Logger: tflogLogger(ctx),
	})
	if err != nil {
		resp.Diagnostics.Append(diagInternal("configuring the engine", err))
		return
	}
	tflog.Debug(ctx, "clusterguard engine configured", map[string]any{"catalog": redactURL(catalogPath), "request_timeout": timeout.String(), "tls_ca": caFile != ""})
	data := &providerData{engine: eng, runHooks: p.runHooks, restoreHooks: p.restoreHooks, insecurePlaintext: cfg.InsecurePlaintext.ValueBool()}
	resp.ResourceData = data
	resp.DataSourceData = data
}

func (p *clusterguardProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewClusterResource,
		NewRepositoryResource,
		NewProtectionGroupResource,
		NewBackupRunResource,
		NewRestoreJobResource,
		NewBackupScheduleResource,
	}
}

func (p *clusterguardProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewWorkloadDigestDataSource,
		NewRecoveryPointsDataSource,
		NewFileVersionsDataSource,
		NewRegisteredNodesDataSource,
	}
}

// openCatalog opens the catalog as every engine process does
// (catalogopen): the key from CLUSTERGUARD_CATALOG_KEY(_FILE) or beside a
// SQLite file.
func openCatalog(ctx context.Context, where string) (engine.Store, error) {
	return catalogopen.Open(ctx, where, catalogopen.Options{})
}

// redactURL drops a password from a catalog URL before it is shown.
func redactURL(s string) string { return catalogopen.RedactURL(s) }

func defaultCatalogPath() string {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "clusterguard", "catalog.db")
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// providerDataFrom is what every resource and data source does in
// Configure: nil before the provider is configured, a diagnostic (never a
// panic) for a value of the wrong type.
func providerDataFrom(v any, diags *diag.Diagnostics) *providerData {
	if v == nil {
		return nil
	}
	data, ok := v.(*providerData)
	if !ok {
		diags.Append(diagUnexpectedProviderData(v))
		return nil
	}
	return data
}
