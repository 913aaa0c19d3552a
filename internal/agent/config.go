package agent

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/postgresql"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/qemu"
)

// Exec driver commands, in the order operators usually think of them.
const (
	ActionStatus  = "status"
	ActionStart   = "start"
	ActionStop    = "stop"
	ActionQuiesce = "quiesce"
	ActionThaw    = "thaw"
	// Pause and resume are exec commands for crash-consistent backups (M6);
	// the backup endpoint runs them, they are not HTTP actions.
	ActionPause  = "pause"
	ActionResume = "resume"
)

// Actions are the state-changing operations served under POST /v1/workloads/{name}/{action}.
var Actions = []string{ActionStart, ActionStop, ActionQuiesce, ActionThaw}

// DefaultCommandTimeout bounds an exec driver command unless the config says otherwise.
const DefaultCommandTimeout = 30 * time.Second

// MinTokenLength is the shortest bearer token the agent accepts; shorter ones are guessable.
const MinTokenLength = 16

// Config is a validated agent configuration.
type Config struct {
	Path         string // the file it was loaded from
	Node         string
	Listen       string
	SharedVolume string // absolute, cleaned
	StateDir     string // absolute; node-local
	TokenFile    string
	Token        Secret // trimmed contents of TokenFile
	TLS          *TLSConfig
	LogLevel     slog.Level
	Workloads    []WorkloadConfig
	Repositories []RepositoryConfig // the only repositories the agent opens (config_repository.go)
	// RestoreDestinations are the directories, relative to the shared
	// volume, that file-level restores may write to besides each
	// workload's own paths (restoredest.go).
	RestoreDestinations []string
	// Ownership is the timing of the per-workload ownership lease
	// (ownership block; defaults without it).
	Ownership    OwnershipConfig
	ownershipSet bool
	// Warnings are problems that do not stop the agent, each prefixed with
	// its file position.
	Warnings []string

	// Transport and access settings: see config_transport.go.
	InsecurePlaintext bool   // plain HTTP on a non-loopback address, explicitly allowed
	ReadOnlyTokenFile string // optional; its token may only GET
	ReadOnlyToken     Secret
	Limits            Limits

	// Engine is the engine daemon the agent registers with (config_engine.go).
	Engine       *EngineConfig
	AdvertiseURL string // the URL the engine reaches this agent at; "" = from listen
}

// TLSConfig names the agent's certificate and key; the agent serves HTTPS when set.
type TLSConfig struct {
	CertFile string
	KeyFile  string
	// ClientCAFile, when set, makes the agent require a client certificate
	// signed by this CA on every connection (mutual TLS).
	ClientCAFile string
}

// WorkloadConfig is one workload block.
type WorkloadConfig struct {
	Name     string
	Driver   string
	Paths    []string // cleaned, relative to the shared volume
	AbsPaths []string // the same paths resolved inside the shared volume
	Exec     *ExecSettings
	Postgres *PostgresSettings
	QEMU     *QEMUSettings
}

// QEMUSettings are the settings of the qemu driver; disks are relative to
// the workload's first path.
type QEMUSettings struct {
	Disks           []string
	Binary          string
	Memory          string
	CPUs            int
	Accel           string
	ExtraArgs       []string
	ShutdownTimeout time.Duration
	Timeout         time.Duration
	User            string // operating-system user QEMU runs as
}

// PostgresSettings are the settings of the postgresql driver; the
// workload's first path is the server's data directory.
type PostgresSettings struct {
	Port            int
	BinDir          string // "" = newest /usr/lib/postgresql/*/bin
	ListenAddresses string
	User            string // operating-system user the server runs as
	DatabaseUser    string
	Timeout         time.Duration
}

// ExecSettings are the settings of the exec driver.
type ExecSettings struct {
	Commands map[string][]string      // action name -> argv; status is always present
	Timeout  time.Duration            // default for every command
	Timeouts map[string]time.Duration // per-command overrides
	Env      map[string]string
	User     string // operating-system user the commands run as; "" = the agent's
}

// Secret is a string that does not print itself, so a token cannot leak into logs
// or error messages by accident.
type Secret string

func (Secret) String() string                 { return "(redacted)" }
func (Secret) GoString() string               { return "(redacted)" }
func (Secret) LogValue() slog.Value           { return slog.StringValue("(redacted)") }
func (s Secret) Reveal() string               { return string(s) }
func (s Secret) MarshalText() ([]byte, error) { return []byte("(redacted)"), nil }

// ConfigError carries every problem found in a config file, each with its position.
type ConfigError struct {
	Path        string
	Diagnostics hcl.Diagnostics
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	errs := e.Diagnostics.Errs()
	fmt.Fprintf(&b, "invalid agent config %s (%d problem", e.Path, len(errs))
	if len(errs) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, d := range e.Diagnostics {
		if d.Severity != hcl.DiagError {
			continue
		}
		b.WriteString("\n  ")
		b.WriteString(formatDiagnostic(e.Path, d))
	}
	return b.String()
}

// formatDiagnostic renders a diagnostic as "file:line:col: summary: detail".
func formatDiagnostic(path string, d *hcl.Diagnostic) string {
	pos := path
	if d.Subject != nil {
		pos = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	if d.Detail == "" {
		return pos + ": " + d.Summary
	}
	return pos + ": " + d.Summary + ": " + d.Detail
}

var (
	rootSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "node", Required: true},
			{Name: "listen", Required: true},
			{Name: "shared_volume", Required: true},
			{Name: "state_dir"},
			{Name: "token_file", Required: true},
			{Name: "log_level"},
			{Name: "insecure_plaintext"},
			{Name: "read_only_token_file"},
			{Name: "restore_destinations"},
			{Name: "advertise_url"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "tls"},
			{Type: "limits"},
			{Type: "workload", LabelNames: []string{"name"}},
			{Type: "repository", LabelNames: []string{"name"}},
			{Type: "ownership"},
			{Type: "engine"},
		},
	}
	tlsSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "cert_file", Required: true},
			{Name: "key_file", Required: true},
			{Name: "client_ca_file"},
		},
	}
	workloadSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "driver", Required: true},
			{Name: "paths", Required: true},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "exec"}, {Type: "postgresql"}, {Type: "qemu"}},
	}
	qemuSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "disks", Required: true},
			{Name: "binary"},
			{Name: "memory"},
			{Name: "cpus"},
			{Name: "accel"},
			{Name: "extra_args"},
			{Name: "shutdown_timeout"},
			{Name: "timeout"},
			{Name: "user"},
		},
	}
	postgresSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "port", Required: true},
			{Name: "bin_dir"},
			{Name: "listen_addresses"},
			{Name: "user"},
			{Name: "database_user"},
			{Name: "timeout"},
		},
	}
	execSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: ActionStatus},
			{Name: ActionStart},
			{Name: ActionStop},
			{Name: ActionQuiesce},
			{Name: ActionThaw},
			{Name: ActionPause},
			{Name: ActionResume},
			{Name: "timeout"},
			{Name: "timeouts"},
			{Name: "env"},
			{Name: "user"},
		},
	}

	namePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	hostPattern   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)
	envKeyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	knownDrivers  = api.Drivers
	logLevels     = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}
	// Environment variables the exec driver sets itself; a config may not override them.
	reservedEnv = []string{"CLUSTERGUARD_WORKLOAD", "CLUSTERGUARD_NODE", "CLUSTERGUARD_SHARED_VOLUME", "CLUSTERGUARD_PATHS", "CLUSTERGUARD_STATE_DIR", "CLUSTERGUARD_ACTION"}
)

// LoadConfig reads and validates an agent config file. On failure the error is a
// *ConfigError listing every problem with file:line:col and what to change.
func LoadConfig(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read agent config: %w; pass the path of an existing HCL file with --config", err)
	}
	return ParseConfig(path, src)
}

// ParseConfig validates config source; path is used for positions and for
// resolving nothing else (all paths in the config must be absolute).
func ParseConfig(path string, src []byte) (*Config, error) {
	file, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, &ConfigError{Path: path, Diagnostics: diags}
	}
	p := &configParser{cfg: &Config{Path: path}}
	p.parse(file.Body)
	for _, d := range p.diags {
		if d.Severity == hcl.DiagWarning {
			p.cfg.Warnings = append(p.cfg.Warnings, formatDiagnostic(path, d))
		}
	}
	if p.diags.HasErrors() {
		return nil, &ConfigError{Path: path, Diagnostics: p.diags}
	}
	return p.cfg, nil
}

type configParser struct {
	cfg         *Config
	diags       hcl.Diagnostics
	engineBlock hcl.Range
}

func (p *configParser) errorAt(rng hcl.Range, summary, detail string) {
	p.diags = append(p.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()})
}

func (p *configParser) warnAt(rng hcl.Range, summary, detail string) {
	p.diags = append(p.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: detail, Subject: rng.Ptr()})
}

// decode evaluates a literal attribute into target (a pointer), reporting type
// errors. (gohcl.DecodeExpression does the same but drags in hclwrite and go-cmp.)
func (p *configParser) decode(expr hcl.Expression, target any) bool {
	v, diags := expr.Value(nil)
	p.diags = append(p.diags, diags...)
	if diags.HasErrors() {
		return false
	}
	ty, err := gocty.ImpliedType(target)
	if err != nil {
		panic(fmt.Sprintf("agent config: cannot decode into %T: %v", target, err)) // programming error
	}
	if v.IsNull() {
		p.errorAt(expr.Range(), "Missing value", fmt.Sprintf("null is not allowed here; give a %s", ty.FriendlyName()))
		return false
	}
	v, err = convert.Convert(v, ty)
	if err == nil {
		err = gocty.FromCtyValue(v, target)
	}
	if err != nil {
		p.errorAt(expr.Range(), "Wrong type", fmt.Sprintf("expected a %s: %v", ty.FriendlyName(), err))
		return false
	}
	return true
}

func (p *configParser) parse(body hcl.Body) {
	content, diags := body.Content(rootSchema)
	p.diags = append(p.diags, diags...)
	attrs := content.Attributes
	cfg := p.cfg

	if a := attrs["node"]; a != nil && p.decode(a.Expr, &cfg.Node) {
		if !namePattern.MatchString(cfg.Node) {
			p.errorAt(a.Expr.Range(), "Invalid node name",
				fmt.Sprintf("%q is not a usable node name; use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. \"node-1\")", cfg.Node))
		}
	}
	if a := attrs["listen"]; a != nil && p.decode(a.Expr, &cfg.Listen) {
		if err := checkListen(cfg.Listen); err != nil {
			p.errorAt(a.Expr.Range(), "Invalid listen address", err.Error())
		}
	}
	if a := attrs["shared_volume"]; a != nil && p.decode(a.Expr, &cfg.SharedVolume) {
		if err := checkDirectory(cfg.SharedVolume); err != nil {
			p.errorAt(a.Expr.Range(), "Invalid shared volume", err.Error())
			cfg.SharedVolume = "" // don't resolve workload paths against it
		} else {
			cfg.SharedVolume = filepath.Clean(cfg.SharedVolume)
		}
	}
	if a := attrs["state_dir"]; a != nil {
		if p.decode(a.Expr, &cfg.StateDir) {
			if !filepath.IsAbs(cfg.StateDir) {
				p.errorAt(a.Expr.Range(), "Invalid state directory",
					fmt.Sprintf("%q is relative; give an absolute node-local directory, e.g. \"/var/lib/clusterguard/%s\"", cfg.StateDir, cfg.Node))
			}
			cfg.StateDir = filepath.Clean(cfg.StateDir)
		}
	} else if cfg.Node != "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			p.errorAt(content.MissingItemRange, "No default state directory",
				fmt.Sprintf("the user cache directory is unknown (%v); set state_dir to an absolute node-local directory", err))
		} else {
			cfg.StateDir = filepath.Join(cache, "clusterguard", "agent", cfg.Node)
		}
	}
	if a := attrs["token_file"]; a != nil && p.decode(a.Expr, &cfg.TokenFile) {
		p.loadToken(a)
	}
	cfg.LogLevel = slog.LevelInfo
	if a := attrs["log_level"]; a != nil {
		var level string
		if p.decode(a.Expr, &level) {
			l, ok := logLevels[level]
			if !ok {
				p.errorAt(a.Expr.Range(), "Invalid log level", fmt.Sprintf("%q is not a log level; use one of debug, info, warn, error", level))
			}
			cfg.LogLevel = l
		}
	}

	if a := attrs["restore_destinations"]; a != nil {
		p.parseRestoreDestinations(a)
	}

	seen := map[string]hcl.Range{}
	for _, block := range content.Blocks {
		switch block.Type {
		case "tls":
			if cfg.TLS != nil {
				p.errorAt(block.DefRange, "Duplicate tls block", "an agent has one certificate; keep a single tls block")
				continue
			}
			p.parseTLS(block)
		case "limits":
			p.parseLimits(block)
		case "workload":
			name := block.Labels[0]
			if first, dup := seen[name]; dup {
				p.errorAt(block.LabelRanges[0], "Duplicate workload",
					fmt.Sprintf("workload %q is already defined at %s:%d; give each workload a unique name", name, first.Filename, first.Start.Line))
				continue
			}
			seen[name] = block.DefRange
			if !namePattern.MatchString(name) {
				p.errorAt(block.LabelRanges[0], "Invalid workload name",
					fmt.Sprintf("%q is not a usable workload name; use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", name))
			}
			p.parseWorkload(block)
		case "repository":
			p.parseRepository(block)
		case "ownership":
			if p.cfg.ownershipSet {
				p.errorAt(block.DefRange, "Duplicate ownership block", "keep a single ownership block")
				continue
			}
			p.parseOwnership(block)
		case "engine":
			p.parseEngine(block)
		}
	}
	p.parseTransport(attrs, content.Blocks)
	p.parseEngineTransport(attrs)
	p.checkOverlappingPaths(seen)
}

func (p *configParser) loadToken(a *hcl.Attribute) {
	if token, ok := p.readTokenFile(a.Expr.Range(), p.cfg.TokenFile, "token_file"); ok {
		p.cfg.Token = token
	}
}

func (p *configParser) parseTLS(block *hcl.Block) {
	content, diags := block.Body.Content(tlsSchema)
	p.diags = append(p.diags, diags...)
	t := &TLSConfig{}
	certAttr, keyAttr := content.Attributes["cert_file"], content.Attributes["key_file"]
	if certAttr == nil || keyAttr == nil {
		return
	}
	if !p.decode(certAttr.Expr, &t.CertFile) || !p.decode(keyAttr.Expr, &t.KeyFile) {
		return
	}
	p.cfg.TLS = t
	p.parseClientCA(content.Attributes["client_ca_file"], t)
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		p.errorAt(certAttr.Expr.Range(), "Invalid TLS certificate or key",
			fmt.Sprintf("loading %s and %s: %v; give a PEM certificate and its matching PEM private key", t.CertFile, t.KeyFile, err))
	}
}

func (p *configParser) parseWorkload(block *hcl.Block) {
	content, diags := block.Body.Content(workloadSchema)
	p.diags = append(p.diags, diags...)
	w := WorkloadConfig{Name: block.Labels[0]}

	driverOK := false
	if a := content.Attributes["driver"]; a != nil && p.decode(a.Expr, &w.Driver) {
		if slices.Contains(knownDrivers, w.Driver) {
			driverOK = true
		} else {
			p.errorAt(a.Expr.Range(), "Unknown driver", fmt.Sprintf("%q is not a workload driver; use one of: %s", w.Driver, strings.Join(knownDrivers, ", ")))
		}
	}
	if a := content.Attributes["paths"]; a != nil {
		p.parsePaths(a, &w)
	}

	// Each driver has its own settings block, named after it.
	blocks := map[string][]*hcl.Block{}
	for _, b := range content.Blocks {
		blocks[b.Type] = append(blocks[b.Type], b)
	}
	for _, typ := range slices.Sorted(maps.Keys(blocks)) {
		bs := blocks[typ]
		if len(bs) > 1 {
			p.errorAt(bs[1].DefRange, "Duplicate "+typ+" block", "a workload has one "+typ+" block; merge them")
		}
		if driverOK && typ != w.Driver {
			p.errorAt(bs[0].DefRange, "Unexpected "+typ+" block", fmt.Sprintf("workload %q uses driver %q; %s settings only apply to driver %q", w.Name, w.Driver, typ, typ))
		}
	}
	switch {
	case !driverOK:
	case w.Driver == "exec" && len(blocks["exec"]) == 0:
		p.errorAt(block.DefRange, "Missing exec block",
			fmt.Sprintf("workload %q uses the exec driver; add an exec block with at least a status command, e.g. exec { status = [\"/usr/local/bin/%s-ctl\", \"status\"] }", w.Name, w.Name))
	case w.Driver == "exec":
		w.Exec = p.parseExec(w.Name, blocks["exec"][0])
	case w.Driver == "postgresql" && len(blocks["postgresql"]) == 0:
		p.errorAt(block.DefRange, "Missing postgresql block",
			fmt.Sprintf("workload %q uses the postgresql driver; add a postgresql block with at least the server's port, e.g. postgresql { port = 5432 }; the workload's first path is the data directory", w.Name))
	case w.Driver == "postgresql":
		w.Postgres = p.parsePostgres(blocks["postgresql"][0])
	case w.Driver == "qemu" && len(blocks["qemu"]) == 0:
		p.errorAt(block.DefRange, "Missing qemu block",
			fmt.Sprintf("workload %q uses the qemu driver; add a qemu block with at least its disk images, e.g. qemu { disks = [\"disk.qcow2\"] } (relative to the workload's first path)", w.Name))
	case w.Driver == "qemu":
		w.QEMU = p.parseQEMU(blocks["qemu"][0])
	}
	p.cfg.Workloads = append(p.cfg.Workloads, w)
}

func (p *configParser) parseQEMU(block *hcl.Block) *QEMUSettings {
	content, diags := block.Body.Content(qemuSchema)
	p.diags = append(p.diags, diags...)
	s := &QEMUSettings{Binary: qemu.DefaultBinary, ShutdownTimeout: qemu.DefaultShutdownTimeout, Timeout: qemu.DefaultTimeout}
	attrs := content.Attributes
	if a := attrs["disks"]; a != nil && p.decode(a.Expr, &s.Disks) {
		if len(s.Disks) == 0 {
			p.errorAt(a.Expr.Range(), "No disks", "list the VM's disk images relative to the workload's first path, e.g. disks = [\"disk.qcow2\"]")
		}
		for _, d := range s.Disks {
			if c := filepath.Clean(d); filepath.IsAbs(d) || c == ".." || strings.HasPrefix(c, ".."+string(filepath.Separator)) {
				p.errorAt(a.Expr.Range(), "Invalid disk path", fmt.Sprintf("%q must be relative to the workload's first path and stay inside it", d))
			}
		}
	}
	for _, f := range []struct {
		name   string
		target *string
	}{{"binary", &s.Binary}, {"memory", &s.Memory}, {"accel", &s.Accel}} {
		if a := attrs[f.name]; a != nil {
			p.decode(a.Expr, f.target)
		}
	}
	if _, err := osexec.LookPath(s.Binary); err != nil {
		rng := block.DefRange
		if a := attrs["binary"]; a != nil {
			rng = a.Expr.Range()
		}
		p.errorAt(rng, "QEMU not found", fmt.Sprintf("%s: %v; install QEMU (Debian: qemu-system-x86) or set binary", s.Binary, err))
	}
	if a := attrs["cpus"]; a != nil && p.decode(a.Expr, &s.CPUs) && s.CPUs < 1 {
		p.errorAt(a.Expr.Range(), "Invalid cpus", fmt.Sprintf("cpus = %d; give at least 1", s.CPUs))
	}
	if a := attrs["extra_args"]; a != nil && p.decode(a.Expr, &s.ExtraArgs) {
		if err := qemu.CheckExtraArgs(s.ExtraArgs); err != nil {
			p.errorAt(a.Expr.Range(), "Invalid extra_args", err.Error())
		}
	}
	if a := attrs["shutdown_timeout"]; a != nil {
		if d, ok := p.duration(a.Expr, "shutdown_timeout"); ok {
			s.ShutdownTimeout = d
		}
	}
	if a := attrs["timeout"]; a != nil {
		if d, ok := p.duration(a.Expr, "timeout"); ok {
			s.Timeout = d
		}
	}
	s.User = p.driverUser(attrs["user"], "QEMU runs as an unprivileged user that can read and write the disk images")
	return s
}

func (p *configParser) parsePostgres(block *hcl.Block) *PostgresSettings {
	content, diags := block.Body.Content(postgresSchema)
	p.diags = append(p.diags, diags...)
	s := &PostgresSettings{Timeout: postgresql.DefaultTimeout}
	attrs := content.Attributes
	if a := attrs["port"]; a != nil && p.decode(a.Expr, &s.Port) && (s.Port < 1 || s.Port > 65535) {
		p.errorAt(a.Expr.Range(), "Invalid port", fmt.Sprintf("port %d is not a TCP port; use 1-65535 (PostgreSQL's default is 5432)", s.Port))
	}
	for _, f := range []struct {
		name   string
		target *string
	}{{"bin_dir", &s.BinDir}, {"listen_addresses", &s.ListenAddresses}, {"user", &s.User}, {"database_user", &s.DatabaseUser}} {
		if a := attrs[f.name]; a != nil {
			p.decode(a.Expr, f.target)
		}
	}
	if a := attrs["bin_dir"]; a != nil && s.BinDir != "" {
		if _, err := os.Stat(filepath.Join(s.BinDir, "pg_ctl")); err != nil {
			p.errorAt(a.Expr.Range(), "PostgreSQL binaries not found", fmt.Sprintf("%s holds no pg_ctl: give the server's bin directory, e.g. /usr/lib/postgresql/15/bin", s.BinDir))
		}
	} else if postgresql.FindBinDir() == "" {
		p.errorAt(block.DefRange, "PostgreSQL binaries not found", "no pg_ctl under /usr/lib/postgresql/*/bin or on PATH: install the PostgreSQL server or set bin_dir")
	}
	if a := attrs["user"]; a != nil && s.User != "" {
		if _, err := user.Lookup(s.User); err != nil {
			p.errorAt(a.Expr.Range(), "Unknown user", fmt.Sprintf("%v; the server runs as the owner of its data directory (usually postgres)", err))
		}
	}
	if a := attrs["timeout"]; a != nil {
		if d, ok := p.duration(a.Expr, "timeout"); ok {
			s.Timeout = d
		}
	}
	return s
}

func (p *configParser) parsePaths(a *hcl.Attribute, w *WorkloadConfig) {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		p.errorAt(a.Expr.Range(), "Invalid paths", "paths is a list of directories relative to the shared volume, e.g. paths = [\"apps/web\"]")
		return
	}
	if len(exprs) == 0 {
		p.errorAt(a.Expr.Range(), "No workload paths", fmt.Sprintf("workload %q needs at least one data path relative to the shared volume, e.g. paths = [\"apps/%s\"]", w.Name, w.Name))
		return
	}
	for _, e := range exprs {
		var rel string
		if !p.decode(e, &rel) {
			continue
		}
		clean := filepath.Clean(rel)
		if slices.Contains(w.Paths, clean) {
			p.errorAt(e.Range(), "Duplicate workload path", fmt.Sprintf("%q is listed twice for workload %q; list each path once", rel, w.Name))
			continue
		}
		if p.cfg.SharedVolume == "" {
			continue // already reported; don't pile up errors about every path
		}
		abs, err := ResolveWorkloadPath(p.cfg.SharedVolume, rel)
		if err != nil {
			p.errorAt(e.Range(), "Invalid workload path", err.Error())
			continue
		}
		w.Paths = append(w.Paths, clean)
		w.AbsPaths = append(w.AbsPaths, abs)
	}
}

func (p *configParser) parseExec(workload string, block *hcl.Block) *ExecSettings {
	content, diags := block.Body.Content(execSchema)
	p.diags = append(p.diags, diags...)
	s := &ExecSettings{Commands: map[string][]string{}, Timeout: DefaultCommandTimeout, Timeouts: map[string]time.Duration{}, Env: map[string]string{}}
	attrs := content.Attributes

	if attrs[ActionStatus] == nil {
		p.errorAt(block.DefRange, "Missing status command",
			fmt.Sprintf("the exec driver probes workload %q with its status command (LSB convention: exit 0 = active, 3 = inactive); add e.g. status = [\"/usr/local/bin/%s-ctl\", \"status\"]", workload, workload))
	}
	for _, action := range append(append([]string{ActionStatus}, Actions...), ActionPause, ActionResume) {
		a := attrs[action]
		if a == nil {
			continue
		}
		var argv []string
		if !p.decode(a.Expr, &argv) {
			continue
		}
		if len(argv) == 0 || argv[0] == "" {
			p.errorAt(a.Expr.Range(), "Empty command", fmt.Sprintf("%s is an argv list with the program first, e.g. [\"/usr/local/bin/%s-ctl\", %q]; remove the attribute if there is nothing to run", action, workload, action))
			continue
		}
		if _, err := osexec.LookPath(argv[0]); err != nil {
			p.errorAt(a.Expr.Range(), "Command not found", fmt.Sprintf("%s command %q: %v; install it or give its absolute path (commands run without a shell)", action, argv[0], err))
			continue
		}
		s.Commands[action] = argv
	}
	if a := attrs["timeout"]; a != nil {
		if d, ok := p.duration(a.Expr, "timeout"); ok {
			s.Timeout = d
		}
	}
	if a := attrs["timeouts"]; a != nil {
		pairs, diags := hcl.ExprMap(a.Expr)
		if diags.HasErrors() {
			p.errorAt(a.Expr.Range(), "Invalid timeouts", "timeouts maps command names to durations, e.g. timeouts = { status = \"5s\", quiesce = \"60s\" }")
		}
		for _, kv := range pairs {
			key, ok := p.mapKey(kv.Key)
			if !ok {
				continue
			}
			if key != ActionStatus && key != ActionPause && key != ActionResume && !slices.Contains(Actions, key) {
				p.errorAt(kv.Key.Range(), "Unknown command in timeouts", fmt.Sprintf("%q is not an exec command; use status, start, stop, quiesce, thaw, pause or resume", key))
				continue
			}
			if d, ok := p.duration(kv.Value, "timeouts."+key); ok {
				s.Timeouts[key] = d
			}
		}
	}
	s.User = p.driverUser(attrs["user"], "the commands run as the service's own user")
	if a := attrs["env"]; a != nil {
		pairs, diags := hcl.ExprMap(a.Expr)
		if diags.HasErrors() {
			p.errorAt(a.Expr.Range(), "Invalid env", "env maps variable names to string values, e.g. env = { LOG_LEVEL = \"debug\" }")
		}
		for _, kv := range pairs {
			key, ok := p.mapKey(kv.Key)
			if !ok {
				continue
			}
			if !envKeyPattern.MatchString(key) {
				p.errorAt(kv.Key.Range(), "Invalid environment variable name", fmt.Sprintf("%q is not a valid variable name; use letters, digits and '_', not starting with a digit", key))
				continue
			}
			if slices.Contains(reservedEnv, key) {
				p.errorAt(kv.Key.Range(), "Reserved environment variable", fmt.Sprintf("the agent sets %s itself for every command; remove it from env", key))
				continue
			}
			var v string
			if p.decode(kv.Value, &v) {
				s.Env[key] = v
			}
		}
	}
	return s
}

func (p *configParser) mapKey(expr hcl.Expression) (string, bool) {
	v, diags := expr.Value(nil)
	p.diags = append(p.diags, diags...)
	if diags.HasErrors() {
		return "", false
	}
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		p.errorAt(expr.Range(), "Invalid key", "map keys are plain names")
		return "", false
	}
	return v.AsString(), true
}

func (p *configParser) duration(expr hcl.Expression, what string) (time.Duration, bool) {
	var s string
	if !p.decode(expr, &s) {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.errorAt(expr.Range(), "Invalid duration", fmt.Sprintf("%s = %q is not a positive duration; write it like \"5s\", \"1m30s\" or \"500ms\"", what, s))
		return 0, false
	}
	return d, true
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (%w); use e.g. \"127.0.0.1:7420\", \"0.0.0.0:7420\" or \"127.0.0.1:0\" for any free port", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has port %q; use a number from 0 to 65535", addr, port)
	}
	if host != "" && net.ParseIP(host) == nil && !hostPattern.MatchString(host) {
		return fmt.Errorf("%q has host %q, which is neither an IP address nor a host name", addr, host)
	}
	return nil
}

func checkDirectory(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is relative; give the absolute path where the shared volume is mounted on this node", path)
	}
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s does not exist; mount the shared volume there or fix the path", path)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is not a directory; give the directory where the shared volume is mounted", path)
	}
	return nil
}
