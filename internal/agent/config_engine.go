package agent

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// EngineConfig is the optional engine block: the engine daemon the agent
// announces itself to (register.go).
type EngineConfig struct {
	URL       string // the daemon's base URL, e.g. https://daemon:7430
	TokenFile string
	Token     Secret // the daemon's registration token
	CAFile    string // CA of the daemon's certificate; "" = system roots
	Interval  time.Duration
	Cluster   string // the cluster this node belongs to, as named in Terraform
}

// Defaults and bounds of the engine block.
const (
	DefaultRegisterInterval = 30 * time.Second
	MinRegisterInterval     = time.Second
	MaxRegisterInterval     = time.Hour
)

var engineSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "url", Required: true},
		{Name: "token_file", Required: true},
		{Name: "ca_file"},
		{Name: "interval"},
		{Name: "cluster"},
	},
}

func (p *configParser) parseEngine(block *hcl.Block) {
	if p.cfg.Engine != nil {
		p.errorAt(block.DefRange, "Duplicate engine block", "an agent announces itself to one engine daemon (several daemons on PostgreSQL share one address or catalog); keep a single engine block")
		return
	}
	content, diags := block.Body.Content(engineSchema)
	p.diags = append(p.diags, diags...)
	e := &EngineConfig{Interval: DefaultRegisterInterval}
	p.cfg.Engine = e
	at := content.Attributes
	if a := at["url"]; a != nil && p.decode(a.Expr, &e.URL) {
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			p.errorAt(a.Expr.Range(), "Invalid engine url", fmt.Sprintf("%q is not the base URL of an engine daemon; write it like \"https://engine.example:7430\"", e.URL))
		}
	}
	if a := at["token_file"]; a != nil && p.decode(a.Expr, &e.TokenFile) {
		if t, ok := p.readTokenFile(a.Expr.Range(), e.TokenFile, "engine token_file"); ok {
			e.Token = t
			if t == p.cfg.Token {
				p.errorAt(a.Expr.Range(), "Registration token equals the agent token",
					"the engine block's token_file holds this agent's own token, which the daemon would then hold in clear for no reason; give it the daemon's registration token (its registration_token_file)")
			}
		}
	}
	if a := at["ca_file"]; a != nil && p.decode(a.Expr, &e.CAFile) {
		if _, err := loadCertPool(e.CAFile); err != nil {
			p.errorAt(a.Expr.Range(), "Invalid engine ca_file", err.Error())
		}
	}
	if a := at["interval"]; a != nil {
		if d, ok := p.duration(a.Expr, "interval"); ok {
			if d < MinRegisterInterval || d > MaxRegisterInterval {
				p.errorAt(a.Expr.Range(), "Invalid interval", fmt.Sprintf("interval = %s; give %s to %s (default %s)", d, MinRegisterInterval, MaxRegisterInterval, DefaultRegisterInterval))
			} else {
				e.Interval = d
			}
		}
	}
	if a := at["cluster"]; a != nil && p.decode(a.Expr, &e.Cluster) && !namePattern.MatchString(e.Cluster) {
		p.errorAt(a.Expr.Range(), "Invalid cluster name", fmt.Sprintf("%q is not a cluster name; give the name of the clusterguard_cluster this node belongs to", e.Cluster))
	}
	p.engineBlock = block.DefRange
}

// parseEngineTransport runs once insecure_plaintext and listen are known:
// the registration token crosses the network to the daemon, so plain HTTP
// off loopback needs insecure_plaintext, and the agent must know the URL
// the engine reaches it at.
func (p *configParser) parseEngineTransport(attrs hcl.Attributes) {
	cfg := p.cfg
	if a := attrs["advertise_url"]; a != nil && p.decode(a.Expr, &cfg.AdvertiseURL) {
		u, err := url.Parse(cfg.AdvertiseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			p.errorAt(a.Expr.Range(), "Invalid advertise_url", fmt.Sprintf("%q is not the URL the engine reaches this agent at; write it like \"https://node-1.example:7420\"", cfg.AdvertiseURL))
		}
	}
	e := cfg.Engine
	if e == nil || e.URL == "" {
		return
	}
	if u, err := url.Parse(e.URL); err == nil && u.Scheme == "http" && !api.IsLoopbackHost(u.Hostname()) && !cfg.InsecurePlaintext {
		p.errorAt(p.engineBlock, "Plain HTTP to the engine daemon",
			fmt.Sprintf("url = %q is plain HTTP to another host, so the registration token would cross the network in clear text; use https:// (the daemon's tls block), or set insecure_plaintext = true if the network is trusted", e.URL))
	}
	if cfg.AdvertiseURL == "" {
		if host, _, err := net.SplitHostPort(cfg.Listen); err == nil && (host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified()) {
			p.errorAt(p.engineBlock, "Missing advertise_url",
				fmt.Sprintf("listen = %q is every address, so the agent cannot tell the engine which one reaches it; set advertise_url (e.g. \"https://%s.example:7420\")", cfg.Listen, cfg.Node))
		}
	}
}

// advertised is the URL the agent announces: advertise_url, else its
// scheme and the address it is bound to (listen with the real port).
func (c *Config) advertised(boundAddr string) string {
	if c.AdvertiseURL != "" {
		return c.AdvertiseURL
	}
	scheme := "http"
	if c.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + boundAddr
}
