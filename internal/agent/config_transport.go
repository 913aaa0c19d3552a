package agent

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// Limits bound what one client can hold of the agent's HTTP server, so slow or
// idle connections cannot exhaust it (a client that declares a body and never
// sends it is cut off after ReadTimeout).
type Limits struct {
	MaxConnections    int           // accepted connections at once; more wait in the kernel's backlog
	ReadHeaderTimeout time.Duration // to read a request's headers
	ReadTimeout       time.Duration // to read a whole request, body included (bodies are small JSON)
	IdleTimeout       time.Duration // a keep-alive connection with no request
	MaxHeaderBytes    int
}

// Defaults of the limits block.
const (
	DefaultMaxConnections    = 64
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
)

var limitsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "max_connections"},
		{Name: "read_header_timeout"},
		{Name: "read_timeout"},
		{Name: "idle_timeout"},
		{Name: "max_header_bytes"},
	},
}

func (p *configParser) parseLimits(block *hcl.Block) {
	content, diags := block.Body.Content(limitsSchema)
	p.diags = append(p.diags, diags...)
	l := &p.cfg.Limits
	attrs := content.Attributes
	if a := attrs["max_connections"]; a != nil && p.decode(a.Expr, &l.MaxConnections) && l.MaxConnections < 4 {
		p.errorAt(a.Expr.Range(), "Invalid max_connections", fmt.Sprintf("max_connections = %d leaves no room for the engine's probes next to a running backup; give at least 4 (default %d)", l.MaxConnections, DefaultMaxConnections))
	}
	if a := attrs["max_header_bytes"]; a != nil && p.decode(a.Expr, &l.MaxHeaderBytes) && l.MaxHeaderBytes < 4096 {
		p.errorAt(a.Expr.Range(), "Invalid max_header_bytes", fmt.Sprintf("max_header_bytes = %d is too small for a request with a bearer token; give at least 4096 (default %d)", l.MaxHeaderBytes, DefaultMaxHeaderBytes))
	}
	for _, f := range []struct {
		name   string
		target *time.Duration
	}{{"read_header_timeout", &l.ReadHeaderTimeout}, {"read_timeout", &l.ReadTimeout}, {"idle_timeout", &l.IdleTimeout}} {
		if a := attrs[f.name]; a != nil {
			if d, ok := p.duration(a.Expr, f.name); ok {
				*f.target = d
			}
		}
	}
}

// parseTransport reads the root attributes about how the agent may be
// reached, once the tls and limits blocks are known.
func (p *configParser) parseTransport(attrs hcl.Attributes, blocks hcl.Blocks) {
	cfg := p.cfg
	l := &cfg.Limits
	l.MaxConnections = orDefault(l.MaxConnections, DefaultMaxConnections)
	l.MaxHeaderBytes = orDefault(l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	l.ReadHeaderTimeout = orDefault(l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	l.ReadTimeout = orDefault(l.ReadTimeout, DefaultReadTimeout)
	l.IdleTimeout = orDefault(l.IdleTimeout, DefaultIdleTimeout)

	if a := attrs["insecure_plaintext"]; a != nil && p.decode(a.Expr, &cfg.InsecurePlaintext) && cfg.InsecurePlaintext && hasBlock(blocks, "tls") {
		p.warnAt(a.Expr.Range(), "insecure_plaintext has no effect", "the agent serves TLS (it has a tls block); remove insecure_plaintext")
	}
	if a := attrs["read_only_token_file"]; a != nil && p.decode(a.Expr, &cfg.ReadOnlyTokenFile) {
		if token, ok := p.readTokenFile(a.Expr.Range(), cfg.ReadOnlyTokenFile, "read_only_token_file"); ok {
			if token == cfg.Token {
				p.errorAt(a.Expr.Range(), "Read-only token equals the full token",
					fmt.Sprintf("%s holds the same token as token_file, so it would not be read-only; write a different random token into it", cfg.ReadOnlyTokenFile))
			} else {
				cfg.ReadOnlyToken = token
			}
		}
	}

	// Plain HTTP is allowed on loopback only, unless the operator says the
	// network is trusted: the bearer token and every request would cross it
	// in clear text.
	listen := attrs["listen"]
	if listen == nil || cfg.Listen == "" || cfg.TLS != nil || cfg.InsecurePlaintext {
		return
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil || api.IsLoopbackHost(host) {
		return
	}
	if hasBlock(blocks, "tls") {
		return // a tls block with errors: reported already
	}
	p.errorAt(listen.Expr.Range(), "Plain HTTP on a non-loopback address",
		fmt.Sprintf("listen = %q is reachable from other hosts and there is no tls block, so the bearer token and every request would cross the network in clear text; "+
			"add a tls block with cert_file and key_file (and client_ca_file for mutual TLS), or listen on 127.0.0.1, "+
			"or set insecure_plaintext = true if the network is trusted (the agent then warns at every start)", cfg.Listen))
}

func hasBlock(blocks hcl.Blocks, typ string) bool {
	for _, b := range blocks {
		if b.Type == typ {
			return true
		}
	}
	return false
}

// PlaintextExposed reports whether the agent serves plain HTTP on an address
// other hosts can reach (only possible with insecure_plaintext = true).
func (c *Config) PlaintextExposed() bool {
	if c.TLS != nil {
		return false
	}
	host, _, err := net.SplitHostPort(c.Listen)
	return err != nil || !api.IsLoopbackHost(host)
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

func (p *configParser) parseClientCA(a *hcl.Attribute, t *TLSConfig) {
	if a == nil || !p.decode(a.Expr, &t.ClientCAFile) {
		return
	}
	if _, err := loadCertPool(t.ClientCAFile); err != nil {
		p.errorAt(a.Expr.Range(), "Invalid client CA file", err.Error())
	}
}

// loadCertPool reads PEM certificates, for verifying the engine's client certificate.
func loadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w; give the PEM file of the CA that signed the engine's client certificates", file, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate; give the PEM file of the CA that signed the engine's client certificates", file)
	}
	return pool, nil
}

// readTokenFile loads a bearer token: an absolute path to a file only its
// owner can read, holding one word of at least MinTokenLength characters.
func (p *configParser) readTokenFile(rng hcl.Range, file, attr string) (Secret, bool) {
	if !filepath.IsAbs(file) {
		// The value is not repeated: someone may have written the token itself here.
		p.errorAt(rng, "Invalid token file", fmt.Sprintf("%s is not an absolute path; give the absolute path of the file holding the bearer token", attr))
		return "", false
	}
	// Anyone who can read the token can drive this node's workloads; refuse
	// rather than warn, so the mistake cannot go unnoticed in a log.
	raw, err := readSecretFile(file, attr)
	if err != nil {
		title := "Cannot read token file"
		var se *secretFileError
		if errors.As(err, &se) {
			title = se.Title
		}
		p.errorAt(rng, title, fmt.Sprintf("%v; the file must hold a random token of at least %d characters (e.g. `openssl rand -hex 32 > %s && chmod 600 %s`)", err, MinTokenLength, file, file))
		return "", false
	}
	token := strings.TrimSpace(string(raw))
	if len(token) < MinTokenLength {
		p.errorAt(rng, "Token too short", fmt.Sprintf("%s holds %d characters after trimming whitespace; write a random token of at least %d characters into it", file, len(token), MinTokenLength))
		return "", false
	}
	if strings.ContainsAny(token, " \t\r\n") {
		p.errorAt(rng, "Invalid token", fmt.Sprintf("the token in %s contains whitespace; a bearer token is a single word", file))
		return "", false
	}
	return Secret(token), true
}

// checkOverlappingPaths refuses two workloads whose data paths are the same
// or nested (after cleaning, and after resolving symlinks of the parts that
// exist): their backups and restores would overwrite each other's data.
// blocks holds each workload's definition, for positions.
func (p *configParser) checkOverlappingPaths(blocks map[string]hcl.Range) {
	type owned struct {
		workload, rel, resolved string
	}
	var all []owned
	for _, w := range p.cfg.Workloads {
		for i, rel := range w.Paths {
			resolved := ""
			if i < len(w.AbsPaths) {
				resolved = resolveExisting(w.AbsPaths[i])
			}
			all = append(all, owned{w.Name, rel, resolved})
		}
	}
	reported := map[[2]string]bool{}
	for i, a := range all {
		for _, b := range all[:i] {
			if a.workload == b.workload || reported[[2]string{a.workload, b.workload}] {
				continue
			}
			if !nested(a.rel, b.rel) && (a.resolved == "" || b.resolved == "" || !nested(a.resolved, b.resolved)) {
				continue
			}
			reported[[2]string{a.workload, b.workload}] = true
			first, second := blocks[b.workload], blocks[a.workload]
			p.errorAt(second, "Overlapping workload paths",
				fmt.Sprintf("workload %q (%s:%d) path %q overlaps path %q of workload %q (%s:%d); two workloads on the same data would overwrite each other's backups and restores: give each workload its own directory",
					a.workload, second.Filename, second.Start.Line, a.rel, b.rel, b.workload, first.Filename, first.Start.Line))
		}
	}
}

// nested reports whether a and b (clean, same base) are equal or one holds the other.
func nested(a, b string) bool {
	sep := string(filepath.Separator)
	return a == b || strings.HasPrefix(a, strings.TrimSuffix(b, sep)+sep) || strings.HasPrefix(b, strings.TrimSuffix(a, sep)+sep)
}

// resolveExisting resolves symlinks in the longest existing prefix of abs.
func resolveExisting(abs string) string {
	existing, rest := abs, ""
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return abs
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			return abs
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = parent
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return abs
	}
	return filepath.Join(real, rest)
}
