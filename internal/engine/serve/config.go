package serve

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/catalogopen"
)

// Defaults of the daemon config.
const (
	DefaultListen            = "127.0.0.1:7430"
	DefaultRequestTimeout    = 30 * time.Second
	DefaultMaxConcurrentRuns = 4
	DefaultLeaderTTL         = 15 * time.Second
	DefaultTick              = time.Second
	// MinTokenLength is the shortest token accepted, as on the agent.
	MinTokenLength = agent.MinTokenLength
)

// Config is a validated `engine serve` configuration. Secrets are read from
// the files the config names and held as agent.Secret, which never prints.
type Config struct {
	Path                  string
	Catalog               string // SQLite path (absolute) or PostgreSQL URL without a password
	CatalogKeyFile        string
	AgentTokenFile        string
	AgentToken            agent.Secret
	AgentTokenFiles       map[string]string // node -> file
	AgentTokens           map[string]agent.Secret
	CAFile                string
	ClientCertFile        string
	ClientKeyFile         string
	InsecurePlaintext     bool
	RequestTimeout        time.Duration
	Listen                string
	TLS                   *agent.TLSConfig
	RegistrationTokenFile string
	RegistrationToken     agent.Secret
	MaxConcurrentRuns     int
	LeaderTTL             time.Duration
	Tick                  time.Duration
	LogLevel              slog.Level
}

// ConfigError lists every problem of a config file, each as
// "file:line:col: summary: detail".
type ConfigError struct {
	Path        string
	Diagnostics hcl.Diagnostics
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	errs := e.Diagnostics.Errs()
	fmt.Fprintf(&b, "invalid engine config %s (%d problem", e.Path, len(errs))
	if len(errs) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, d := range e.Diagnostics {
		if d.Severity != hcl.DiagError {
			continue
		}
		pos := e.Path
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		b.WriteString("\n  " + pos + ": " + d.Summary)
		if d.Detail != "" {
			b.WriteString(": " + d.Detail)
		}
	}
	return b.String()
}

var (
	rootSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "catalog", Required: true},
			{Name: "catalog_key_file"},
			{Name: "agent_token_file"},
			{Name: "agent_tokens"},
			{Name: "ca_file"},
			{Name: "client_cert_file"},
			{Name: "client_key_file"},
			{Name: "insecure_plaintext"},
			{Name: "request_timeout"},
			{Name: "listen"},
			{Name: "registration_token_file"},
			{Name: "max_concurrent_runs"},
			{Name: "leader_ttl"},
			{Name: "tick"},
			{Name: "log_level"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "tls"}},
	}
	tlsSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "cert_file", Required: true},
			{Name: "key_file", Required: true},
			{Name: "client_ca_file"},
		},
	}
	nodePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	logLevels   = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}
)

// LoadConfig reads and validates a daemon config file; on failure the error
// is a *ConfigError naming every problem with its position.
func LoadConfig(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read engine config: %w; pass the path of an existing HCL file with --config", err)
	}
	return ParseConfig(path, src)
}

// ParseConfig validates config source; every path in it must be absolute.
func ParseConfig(path string, src []byte) (*Config, error) {
	file, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, &ConfigError{Path: path, Diagnostics: diags}
	}
	p := &parser{cfg: &Config{Path: path}}
	p.parse(file.Body)
	if p.diags.HasErrors() {
		return nil, &ConfigError{Path: path, Diagnostics: p.diags}
	}
	return p.cfg, nil
}

type parser struct {
	cfg   *Config
	diags hcl.Diagnostics
}

func (p *parser) errorAt(rng hcl.Range, summary, detail string) {
	p.diags = append(p.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()})
}

// decode evaluates a literal attribute into target (a pointer).
func (p *parser) decode(expr hcl.Expression, target any) bool {
	v, diags := expr.Value(nil)
	p.diags = append(p.diags, diags...)
	if diags.HasErrors() {
		return false
	}
	ty, err := gocty.ImpliedType(target)
	if err != nil {
		panic(fmt.Sprintf("engine config: cannot decode into %T: %v", target, err)) // programming error
	}
	if v.IsNull() {
		p.errorAt(expr.Range(), "Missing value", fmt.Sprintf("null is not allowed here; give a %s", ty.FriendlyName()))
		return false
	}
	if v, err = convert.Convert(v, ty); err == nil {
		err = gocty.FromCtyValue(v, target)
	}
	if err != nil {
		p.errorAt(expr.Range(), "Wrong type", fmt.Sprintf("expected a %s: %v", ty.FriendlyName(), err))
		return false
	}
	return true
}

func (p *parser) duration(a *hcl.Attribute, min, max time.Duration, def time.Duration) time.Duration {
	if a == nil {
		return def
	}
	var s string
	if !p.decode(a.Expr, &s) {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < min || d > max {
		p.errorAt(a.Expr.Range(), "Invalid duration", fmt.Sprintf("%s = %q is not a duration from %s to %s; write it like \"30s\" or \"1m\"", a.Name, s, min, max))
		return def
	}
	return d
}

// absFile decodes an attribute naming a file that must exist.
func (p *parser) absFile(a *hcl.Attribute) string {
	if a == nil {
		return ""
	}
	var f string
	if !p.decode(a.Expr, &f) {
		return ""
	}
	if !filepath.IsAbs(f) {
		// Not repeated: a secret itself may have been written here.
		p.errorAt(a.Expr.Range(), "Relative path", fmt.Sprintf("%s is not an absolute path; give the absolute path of the file (the daemon's working directory is not fixed under systemd)", a.Name))
		return ""
	}
	return filepath.Clean(f)
}

// token reads a bearer token from the file a names.
func (p *parser) token(rng hcl.Range, file, attr string) agent.Secret {
	raw, err := agent.ReadSecretFile(file, attr)
	if err != nil {
		p.errorAt(rng, "Unusable "+attr, fmt.Sprintf("%v; the file must hold a random token of at least %d characters (e.g. `openssl rand -hex 32 > %s && chmod 600 %s`)", err, MinTokenLength, file, file))
		return ""
	}
	t := strings.TrimSpace(string(raw))
	if len(t) < MinTokenLength || strings.ContainsAny(t, " \t\r\n") {
		p.errorAt(rng, "Unusable "+attr, fmt.Sprintf("%s does not hold one word of at least %d characters; write a random token into it", file, MinTokenLength))
		return ""
	}
	return agent.Secret(t)
}

func (p *parser) parse(body hcl.Body) {
	content, diags := body.Content(rootSchema)
	p.diags = append(p.diags, diags...)
	at := content.Attributes
	cfg := p.cfg

	if a := at["catalog"]; a != nil && p.decode(a.Expr, &cfg.Catalog) {
		p.checkCatalog(a)
	}
	cfg.CatalogKeyFile = p.absFile(at["catalog_key_file"])
	if cfg.CatalogKeyFile != "" {
		if _, err := catalogopen.SecretBox(cfg.Catalog, catalogopen.Options{KeyFile: cfg.CatalogKeyFile, NoEnv: true}); err != nil {
			p.errorAt(at["catalog_key_file"].Expr.Range(), "Unusable catalog key file", fmt.Sprintf("%v; give a file (mode 0600) holding the catalog key, 32 random bytes as base64, the same for every engine on this catalog", err))
		}
	} else if catalogopen.IsPostgres(cfg.Catalog) {
		p.errorAt(at["catalog"].Expr.Range(), "Missing catalog_key_file", "a PostgreSQL catalog needs catalog_key_file: a file (mode 0600) holding the catalog key (32 random bytes as base64, `head -c 32 /dev/urandom | base64`), the same on every engine and provider sharing the catalog")
	}

	if a := at["agent_token_file"]; a != nil {
		if cfg.AgentTokenFile = p.absFile(a); cfg.AgentTokenFile != "" {
			cfg.AgentToken = p.token(a.Expr.Range(), cfg.AgentTokenFile, "agent_token_file")
		}
	}
	if a := at["agent_tokens"]; a != nil {
		var m map[string]string
		if p.decode(a.Expr, &m) {
			cfg.AgentTokenFiles, cfg.AgentTokens = map[string]string{}, map[string]agent.Secret{}
			for _, node := range slices.Sorted(maps.Keys(m)) {
				f := m[node]
				switch {
				case !nodePattern.MatchString(node):
					p.errorAt(a.Expr.Range(), "Invalid node name", fmt.Sprintf("agent_tokens key %q is not a node name; use the node names of clusterguard_cluster", node))
				case !filepath.IsAbs(f):
					p.errorAt(a.Expr.Range(), "Relative path", fmt.Sprintf("agent_tokens[%q] is not an absolute path; give the absolute path of the file holding that node's agent token (never the token itself)", node))
				default:
					cfg.AgentTokenFiles[node] = f
					cfg.AgentTokens[node] = p.token(a.Expr.Range(), f, fmt.Sprintf("agent_tokens[%q]", node))
				}
			}
		}
	}
	if at["agent_token_file"] == nil && at["agent_tokens"] == nil {
		p.errorAt(content.MissingItemRange, "Missing agent token", "the daemon needs a token to drive the agents: set agent_token_file (and agent_tokens = { node = file } for per-node tokens)")
	}

	cfg.CAFile = p.absFile(at["ca_file"])
	cfg.ClientCertFile = p.absFile(at["client_cert_file"])
	cfg.ClientKeyFile = p.absFile(at["client_key_file"])
	if (at["client_cert_file"] != nil) != (at["client_key_file"] != nil) {
		rng := content.MissingItemRange
		if a := at["client_cert_file"]; a != nil {
			rng = a.Expr.Range()
		} else if a := at["client_key_file"]; a != nil {
			rng = a.Expr.Range()
		}
		p.errorAt(rng, "Incomplete client certificate", "set client_cert_file and client_key_file together (mutual TLS to agents)")
	} else if cfg.CAFile != "" || cfg.ClientCertFile != "" {
		if _, err := engine.LoadAgentTLS(cfg.CAFile, cfg.ClientCertFile, cfg.ClientKeyFile); err != nil {
			rng := content.MissingItemRange
			for _, n := range []string{"ca_file", "client_cert_file"} {
				if a := at[n]; a != nil {
					rng = a.Expr.Range()
					break
				}
			}
			p.errorAt(rng, "Unusable agent TLS files", fmt.Sprintf("%v; give the PEM CA of the agents' certificates and, for mutual TLS, a PEM client certificate and key", err))
		}
	}
	if a := at["insecure_plaintext"]; a != nil {
		p.decode(a.Expr, &cfg.InsecurePlaintext)
	}
	cfg.RequestTimeout = p.duration(at["request_timeout"], time.Second, time.Hour, DefaultRequestTimeout)
	cfg.LeaderTTL = p.duration(at["leader_ttl"], 3*time.Second, 10*time.Minute, DefaultLeaderTTL)
	cfg.Tick = p.duration(at["tick"], 100*time.Millisecond, time.Minute, DefaultTick)
	if cfg.Tick*3 > cfg.LeaderTTL && at["tick"] != nil {
		p.errorAt(at["tick"].Expr.Range(), "Tick too long", fmt.Sprintf("tick (%s) must be at most a third of leader_ttl (%s), so leadership is renewed in time; lower tick or raise leader_ttl", cfg.Tick, cfg.LeaderTTL))
	}
	cfg.MaxConcurrentRuns = DefaultMaxConcurrentRuns
	if a := at["max_concurrent_runs"]; a != nil && p.decode(a.Expr, &cfg.MaxConcurrentRuns) && (cfg.MaxConcurrentRuns < 1 || cfg.MaxConcurrentRuns > 256) {
		p.errorAt(a.Expr.Range(), "Invalid max_concurrent_runs", fmt.Sprintf("max_concurrent_runs = %d; give a number from 1 to 256 (default %d)", cfg.MaxConcurrentRuns, DefaultMaxConcurrentRuns))
	}
	cfg.LogLevel = slog.LevelInfo
	if a := at["log_level"]; a != nil {
		var s string
		if p.decode(a.Expr, &s) {
			l, ok := logLevels[s]
			if !ok {
				p.errorAt(a.Expr.Range(), "Invalid log level", fmt.Sprintf("%q is not a log level; use one of debug, info, warn, error", s))
			}
			cfg.LogLevel = l
		}
	}
	if a := at["registration_token_file"]; a != nil {
		if cfg.RegistrationTokenFile = p.absFile(a); cfg.RegistrationTokenFile != "" {
			cfg.RegistrationToken = p.token(a.Expr.Range(), cfg.RegistrationTokenFile, "registration_token_file")
			if cfg.RegistrationToken != "" && (cfg.RegistrationToken == cfg.AgentToken || slices.Contains(slices.Collect(maps.Values(cfg.AgentTokens)), cfg.RegistrationToken)) {
				p.errorAt(a.Expr.Range(), "Registration token equals the agent token", "an agent presents the registration token to the daemon; if it were the agent token, every agent could drive every other node: write a different random token into registration_token_file")
			}
		}
	}
	p.parseListen(at, content.Blocks)
}

// checkCatalog refuses relative SQLite paths and passwords in a PostgreSQL
// URL: the config file is not a secret file.
func (p *parser) checkCatalog(a *hcl.Attribute) {
	c := p.cfg.Catalog
	if catalogopen.IsPostgres(c) {
		if red := catalogopen.RedactURL(c); red != c || strings.Contains(strings.ToLower(c), "password=") {
			p.cfg.Catalog = red
			p.errorAt(a.Expr.Range(), "Password in the catalog URL", "the config file is not a secret file: remove the password from the URL and give it in a file, with the URL's passfile parameter (`?passfile=/etc/clusterguard/pgpass`, mode 0600, format host:port:db:user:password) or a client certificate (sslcert, sslkey)")
		}
		return
	}
	if !filepath.IsAbs(c) {
		p.errorAt(a.Expr.Range(), "Relative catalog path", fmt.Sprintf("catalog = %q is neither a postgres:// URL nor an absolute path; give the SQLite file's absolute path, e.g. \"/var/lib/clusterguard/catalog.db\"", c))
		return
	}
	p.cfg.Catalog = filepath.Clean(c)
}

// parseListen reads listen and the tls block. Off loopback the daemon
// serves HTTPS only: agents send the registration token to it.
func (p *parser) parseListen(at hcl.Attributes, blocks hcl.Blocks) {
	cfg := p.cfg
	cfg.Listen = DefaultListen
	if a := at["listen"]; a != nil && p.decode(a.Expr, &cfg.Listen) {
		_, port, err := net.SplitHostPort(cfg.Listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			p.errorAt(a.Expr.Range(), "Invalid listen address", fmt.Sprintf("%q is not host:port; use e.g. \"127.0.0.1:7430\", \"0.0.0.0:7430\" (with a tls block) or \"127.0.0.1:0\" for any free port", cfg.Listen))
			return
		}
	}
	for _, b := range blocks {
		if b.Type != "tls" {
			continue
		}
		if cfg.TLS != nil {
			p.errorAt(b.DefRange, "Duplicate tls block", "keep a single tls block")
			continue
		}
		content, diags := b.Body.Content(tlsSchema)
		p.diags = append(p.diags, diags...)
		t := &agent.TLSConfig{}
		ca, ka := content.Attributes["cert_file"], content.Attributes["key_file"]
		if ca == nil || ka == nil || !p.decode(ca.Expr, &t.CertFile) || !p.decode(ka.Expr, &t.KeyFile) {
			cfg.TLS = &agent.TLSConfig{}
			continue
		}
		cfg.TLS = t
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			p.errorAt(ca.Expr.Range(), "Invalid TLS certificate or key", fmt.Sprintf("loading %s and %s: %v; give a PEM certificate and its matching PEM private key", t.CertFile, t.KeyFile, err))
		}
		if a := content.Attributes["client_ca_file"]; a != nil && p.decode(a.Expr, &t.ClientCAFile) {
			if _, err := engine.LoadCA(t.ClientCAFile); err != nil {
				p.errorAt(a.Expr.Range(), "Invalid client CA file", fmt.Sprintf("%v; give the PEM CA that signed the agents' client certificates", err))
			}
		}
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if cfg.TLS == nil && !api.IsLoopbackHost(host) && !cfg.InsecurePlaintext {
		rng := hcl.Range{Filename: cfg.Path}
		if a := at["listen"]; a != nil {
			rng = a.Expr.Range()
		}
		p.errorAt(rng, "Plain HTTP on a non-loopback address",
			fmt.Sprintf("listen = %q is reachable from other hosts and there is no tls block, so registration tokens would cross the network in clear text; add tls { cert_file key_file } or listen on 127.0.0.1 (or set insecure_plaintext = true on a trusted network)", cfg.Listen))
	}
}
