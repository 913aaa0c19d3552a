package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// CheckPlaintext refuses an http:// endpoint whose host is not loopback
// unless insecure is set: the bearer token and every request would cross
// the network in clear text.
func CheckPlaintext(endpoint string, insecure bool) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", endpoint, err)
	}
	if u.Scheme != "http" || insecure || api.IsLoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%q is plain HTTP to another host: the agent token and every request would cross the network in clear text; "+
		"give the agent a tls block and use https://, or set insecure_plaintext = true in the provider if the network is trusted", endpoint)
}

// LoadTLS returns the TLS config for agents: trust the CA in caFile (empty:
// the system roots), and present the client certificate in certFile and
// keyFile (both empty: none) to agents that require mutual TLS.
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		var err error
		if cfg, err = LoadCA(caFile); err != nil {
			return nil, err
		}
	}
	switch {
	case certFile == "" && keyFile == "":
	case certFile == "" || keyFile == "":
		return nil, fmt.Errorf("a client certificate needs both client_cert_file and client_key_file (got %q and %q)", certFile, keyFile)
	default:
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load the client certificate %s and key %s: %w; give a PEM certificate signed by the CA in the agents' client_ca_file and its PEM key", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Quiesce calls POST /v1/workloads/{name}/quiesce with a maximum hold: the
// agent thaws the workload by itself when maxHold passes without a thaw
// (0: the agent's default). ThawBy in the result says when.
func (c *Client) Quiesce(ctx context.Context, name string, maxHold time.Duration) (api.ActionResult, error) {
	var out api.ActionResult
	return out, c.doBody(ctx, c.actions, http.MethodPost, "/v1/workloads/"+url.PathEscape(name)+"/quiesce", true,
		api.QuiesceRequest{MaxHoldMS: maxHold.Milliseconds()}, &out)
}
