// Package client is the engine's client for node agents (/v1 API, package
// api). It retries, with exponential backoff, what may heal by itself —
// connection errors, timeouts and 5xx responses — a bounded number of times,
// never 4xx answers (a wrong token stays wrong) nor a driver failure (the
// command ran and failed; running it again is the caller's decision). Errors are
// *Error values that name the node, endpoint and request and say what to do.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// Defaults for zero Options fields.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultActionTimeout  = 5 * time.Minute
	DefaultRetryMax       = 3
	DefaultRetryWaitMin   = 200 * time.Millisecond
	DefaultRetryWaitMax   = 5 * time.Second
)

// maxBody bounds how much of a response the client reads.
const maxBody = 4 << 20

// Options configure a Client.
type Options struct {
	Node     string // node name, for error messages
	Endpoint string // "http(s)://host:port"
	Token    string // bearer token; sent on every request but health
	// TLSConfig verifies https endpoints (see LoadCA) and may carry the
	// client certificate for mutual TLS (see LoadTLS); nil uses the system roots.
	TLSConfig *tls.Config
	// InsecurePlaintext allows http:// endpoints that are not loopback; the
	// token and every request then cross the network in clear text.
	InsecurePlaintext bool
	// RequestTimeout bounds each attempt of a query (health, node, workloads).
	RequestTimeout time.Duration
	// ActionTimeout bounds each attempt of an action (start, stop, quiesce,
	// thaw), which runs driver commands with their own, longer, timeouts.
	ActionTimeout time.Duration
	// RetryMax is how many times a failed attempt is retried: 0 means
	// DefaultRetryMax, a negative value disables retries.
	RetryMax                   int
	RetryWaitMin, RetryWaitMax time.Duration // backoff bounds
	Logger                     *slog.Logger  // nil: discard
}

// Client talks to one node's agent.
type Client struct {
	node, endpoint, token string
	queries, actions      *retryablehttp.Client
	// once sends requests that must not be repeated (a coordinator claim, a
	// backup) with no retry and no timeout but the caller's context.
	once   *retryablehttp.Client
	logger *slog.Logger
}

// New validates the options and builds a client. The endpoint must be an
// http or https URL with host and port and nothing else.
func New(o Options) (*Client, error) {
	endpoint, err := ValidateEndpoint(o.Endpoint)
	if err != nil {
		name := o.Node
		if name == "" {
			name = "(unnamed)"
		}
		return nil, fmt.Errorf("agent endpoint for node %s: %w", name, err)
	}
	if err := CheckPlaintext(endpoint, o.InsecurePlaintext); err != nil {
		name := o.Node
		if name == "" {
			name = "(unnamed)"
		}
		return nil, fmt.Errorf("agent endpoint for node %s: %w", name, err)
	}
	c := &Client{node: o.Node, endpoint: endpoint, token: o.Token, logger: o.Logger}
	if c.node == "" {
		c.node = endpoint
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	transport := cleanhttp.DefaultPooledTransport()
	// One connection per request: the engine makes a client per use and
	// drops it, so pooled idle connections would pile up on the agent, which
	// serves a bounded number of connections (limits.max_connections).
	// Control-plane requests are few; a handshake each costs little.
	transport.DisableKeepAlives = true
	if o.TLSConfig != nil {
		transport.TLSClientConfig = o.TLSConfig.Clone()
	}
	retryMax := o.RetryMax
	switch {
	case retryMax == 0:
		retryMax = DefaultRetryMax
	case retryMax < 0:
		retryMax = 0
	}
	waitMin, waitMax := or(o.RetryWaitMin, DefaultRetryWaitMin), or(o.RetryWaitMax, DefaultRetryWaitMax)
	waitMax = max(waitMax, waitMin)
	newRetrying := func(timeout time.Duration) *retryablehttp.Client {
		return &retryablehttp.Client{
			HTTPClient: &http.Client{
				Transport: transport,
				Timeout:   timeout,
				// An agent never redirects; following one could leak the token.
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			},
			RetryWaitMin: waitMin,
			RetryWaitMax: waitMax,
			RetryMax:     retryMax,
			CheckRetry:   checkRetry,
			Backoff:      retryablehttp.DefaultBackoff,
			ErrorHandler: func(resp *http.Response, err error, attempts int) (*http.Response, error) {
				return resp, &exhausted{attempts: attempts, err: err}
			},
			RequestLogHook: func(_ retryablehttp.Logger, r *http.Request, attempt int) {
				if attempt > 0 {
					c.logger.Debug("retrying agent request", "node", c.node, "endpoint", c.endpoint, "method", r.Method, "path", r.URL.Path, "attempt", attempt+1)
				}
			},
		}
	}
	c.queries = newRetrying(or(o.RequestTimeout, DefaultRequestTimeout))
	c.actions = newRetrying(or(o.ActionTimeout, DefaultActionTimeout))
	c.once = newRetrying(0)
	c.once.RetryMax = 0
	return c, nil
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ValidateEndpoint checks an agent endpoint and returns it without a trailing slash.
func ValidateEndpoint(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL (%w); write it like \"https://10.0.0.5:7420\"", endpoint, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q must start with http:// or https://, e.g. \"https://10.0.0.5:7420\"", endpoint)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q has no host; write it like \"https://10.0.0.5:7420\"", endpoint)
	case u.Port() == "":
		return "", fmt.Errorf("%q has no port; agents listen on the port set by listen in their config, e.g. \"https://10.0.0.5:7420\"", endpoint)
	case u.User != nil:
		return "", fmt.Errorf("%q contains credentials; give the token as agent_token instead", endpoint)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return "", fmt.Errorf("%q has a path, query or fragment; give only scheme, host and port, e.g. \"https://10.0.0.5:7420\"", endpoint)
	}
	return u.Scheme + "://" + u.Host, nil
}

// LoadCA returns a TLS config that trusts the PEM certificates in file.
func LoadCA(file string) (*tls.Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w; set ca_file to the PEM file of the CA that signed the agents' certificates", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate; give the PEM file of the CA that signed the agents' certificates", file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// NodeName returns the node name the client was made for.
func (c *Client) NodeName() string { return c.node }

// Endpoint returns the agent's base URL.
func (c *Client) Endpoint() string { return c.endpoint }

// Health calls GET /v1/health (no token needed).
func (c *Client) Health(ctx context.Context) (api.Health, error) {
	var out api.Health
	return out, c.do(ctx, c.queries, http.MethodGet, "/v1/health", false, &out)
}

// Node calls GET /v1/node.
func (c *Client) Node(ctx context.Context) (api.NodeFacts, error) {
	var out api.NodeFacts
	return out, c.do(ctx, c.queries, http.MethodGet, "/v1/node", true, &out)
}

// Workloads calls GET /v1/workloads.
func (c *Client) Workloads(ctx context.Context) (api.WorkloadList, error) {
	var out api.WorkloadList
	return out, c.do(ctx, c.queries, http.MethodGet, "/v1/workloads", true, &out)
}

// Workload calls GET /v1/workloads/{name}.
func (c *Client) Workload(ctx context.Context, name string) (api.Workload, error) {
	var out api.Workload
	return out, c.do(ctx, c.queries, http.MethodGet, "/v1/workloads/"+url.PathEscape(name), true, &out)
}

// Action calls POST /v1/workloads/{name}/{action}; action is start, stop,
// quiesce or thaw.
func (c *Client) Action(ctx context.Context, name, action string) (api.ActionResult, error) {
	var out api.ActionResult
	return out, c.do(ctx, c.actions, http.MethodPost, "/v1/workloads/"+url.PathEscape(name)+"/"+url.PathEscape(action), true, &out)
}

// ClaimCoordinator calls POST /v1/coordinator: make this node the
// coordinating node with the claim's fencing epoch. Never retried.
func (c *Client) ClaimCoordinator(ctx context.Context, claim api.CoordinatorClaim) (api.CoordinatorState, error) {
	var out api.CoordinatorState
	return out, c.doBody(ctx, c.once, http.MethodPost, "/v1/coordinator", true, claim, &out)
}

// Coordinator calls GET /v1/coordinator.
func (c *Client) Coordinator(ctx context.Context) (api.CoordinatorState, error) {
	var out api.CoordinatorState
	return out, c.do(ctx, c.queries, http.MethodGet, "/v1/coordinator", true, &out)
}

// Backup calls POST /v1/workloads/{name}/backup. It runs as long as the
// caller's context allows and is never retried: a repeated backup would
// freeze the workload twice.
func (c *Client) Backup(ctx context.Context, workload string, req api.BackupRequest) (api.BackupResult, error) {
	var out api.BackupResult
	return out, c.doBody(ctx, c.once, http.MethodPost, "/v1/workloads/"+url.PathEscape(workload)+"/backup", true, req, &out)
}

// NodeBackup calls POST /v1/node-backup; never retried.
func (c *Client) NodeBackup(ctx context.Context, req api.NodeBackupRequest) (api.NodeBackupResult, error) {
	var out api.NodeBackupResult
	return out, c.doBody(ctx, c.once, http.MethodPost, "/v1/node-backup", true, req, &out)
}

// Restore calls POST /v1/workloads/{name}/restore; never retried.
func (c *Client) Restore(ctx context.Context, workload string, req api.RestoreRequest) (api.RestoreResult, error) {
	var out api.RestoreResult
	return out, c.doBody(ctx, c.once, http.MethodPost, "/v1/workloads/"+url.PathEscape(workload)+"/restore", true, req, &out)
}

func (c *Client) do(ctx context.Context, rc *retryablehttp.Client, method, path string, auth bool, out any) error {
	return c.doBody(ctx, rc, method, path, auth, nil, out)
}

func (c *Client) doBody(ctx context.Context, rc *retryablehttp.Client, method, path string, auth bool, in, out any) error {
	e := &Error{Node: c.node, Endpoint: c.endpoint, Method: method, Path: path}
	var reqBody any
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			e.Err = err
			return e
		}
		reqBody = b
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, c.endpoint+path, reqBody)
	if err != nil {
		e.Err = err
		return e
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "clusterguard-engine")
	if auth && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := rc.Do(req)
	var ex *exhausted
	if errors.As(err, &ex) {
		e.Attempts, err = ex.attempts, ex.err
	}
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			// The caller gave up; that says nothing about the agent.
			err, e.callerGaveUp = context.Cause(ctx), true
		case ctx.Err() != nil:
			// The caller's deadline passed while waiting for the agent: as good as
			// no answer (context.DeadlineExceeded is a net.Error timeout).
			err = ctx.Err()
		}
		e.Err = err
		return e
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	e.StatusCode = resp.StatusCode
	if rerr != nil {
		e.Err = fmt.Errorf("read response: %w", rerr)
		return e
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var apiErr api.Error
		if json.Unmarshal(body, &apiErr) == nil && apiErr.Code != "" {
			e.Code, e.Message = apiErr.Code, apiErr.Message
		} else {
			e.Message = strings.TrimSpace(string(body))
			if len(e.Message) > 512 {
				e.Message = e.Message[:512] + "..."
			}
		}
		return e
	}
	if err := json.Unmarshal(body, out); err != nil {
		e.Err = fmt.Errorf("invalid JSON response (is this a clusterguard agent?): %w", err)
		return e
	}
	return nil
}

// exhausted carries the attempt count out of retryablehttp.
type exhausted struct {
	attempts int
	err      error
}

func (e *exhausted) Error() string { return fmt.Sprintf("after %d attempts: %v", e.attempts, e.err) }
func (e *exhausted) Unwrap() error { return e.err }

// checkRetry retries connection errors and 5xx responses, except a driver
// failure; never 4xx; never after the caller cancelled.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err == nil {
		if resp.StatusCode < 500 {
			return false, nil
		}
		if isDriverFailure(resp) {
			return false, nil
		}
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// isDriverFailure peeks at a 5xx body for api.Error code "driver_failed",
// leaving the body readable for the caller.
func isDriverFailure(resp *http.Response) bool {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false
	}
	var apiErr api.Error
	return json.Unmarshal(body, &apiErr) == nil && apiErr.Code == "driver_failed"
}

// Error is a failed agent request.
type Error struct {
	Node, Endpoint, Method, Path string
	StatusCode                   int    // 0 when no HTTP response arrived
	Code, Message                string // from the agent's api.Error, when it sent one
	Attempts                     int    // attempts made, when retries ran out
	Err                          error  // transport or decoding error
	callerGaveUp                 bool   // the caller's context ended; says nothing about the agent
}

func (e *Error) Error() string {
	prefix := fmt.Sprintf("agent of node %s at %s: %s %s", e.Node, e.Endpoint, e.Method, e.Path)
	attempts := ""
	if e.Attempts > 1 {
		attempts = fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	switch {
	case e.StatusCode == http.StatusUnauthorized:
		msg := e.Message
		if msg == "" {
			msg = "the agent refused the token"
		}
		return fmt.Sprintf("%s: unauthorized (401): %s; set agent_token in the provider (or CLUSTERGUARD_AGENT_TOKEN), or this node's entry in agent_tokens, to the token in the token_file of node %s's agent", prefix, msg, e.Node)
	case e.StatusCode != 0 && e.Err != nil:
		return fmt.Sprintf("%s: %d: %v", prefix, e.StatusCode, e.Err)
	case e.StatusCode != 0:
		code := e.Code
		if code == "" {
			code = http.StatusText(e.StatusCode)
		}
		return fmt.Sprintf("%s: %d %s%s: %s", prefix, e.StatusCode, code, attempts, e.Message)
	case e.callerGaveUp:
		return fmt.Sprintf("%s: gave up: %v", prefix, e.Err)
	case isTLSError(e.Err):
		return fmt.Sprintf("%s: TLS handshake failed: %v; set ca_file in the provider to the CA that signed the agent's certificate, check that the certificate names the host in the endpoint, "+
			"and, if the agent's tls block sets client_ca_file, set client_cert_file and client_key_file to a certificate signed by that CA", prefix, e.Err)
	case isTimeout(e.Err):
		return fmt.Sprintf("%s: no answer in time%s: %v; check that the agent on node %s is healthy and not overloaded, or raise request_timeout", prefix, attempts, e.Err, e.Node)
	default:
		return fmt.Sprintf("%s: unreachable%s: %v; check that the agent is running on node %s and listening on %s (its listen setting), and that no firewall blocks it", prefix, attempts, e.Err, e.Node, e.Endpoint)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// IsUnauthorized reports whether the agent refused the token.
// IsStaleEpoch reports a refused fencing epoch (another node coordinates).
func IsStaleEpoch(err error) bool { return hasCode(err, "stale_epoch") }

// IsNotActive reports a workload that is not active on the node asked.
func IsNotActive(err error) bool { return hasCode(err, "not_active") }

// IsActive reports an in-place restore refused because the workload runs.
func IsActive(err error) bool { return hasCode(err, "active") }

// IsDamaged reports a recovery point that failed integrity inspection.
func IsDamaged(err error) bool { return hasCode(err, "damaged") }

// IsBusy reports a backup of the workload already running on the node.
func IsBusy(err error) bool { return hasCode(err, "busy") }

func hasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func IsUnauthorized(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusUnauthorized
}

// IsNotFound reports whether the agent does not know the workload, action or endpoint.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// IsDriverFailed reports whether the agent ran a driver command that failed.
func IsDriverFailed(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == "driver_failed"
}

// IsUnreachable reports whether no answer came from the agent: connection
// refused or reset, DNS failure, timeout (the request's own or the caller's
// deadline) — after all retries. A cancelled context and a failed TLS
// verification (a configuration problem) do not count.
func IsUnreachable(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 0 || e.Err == nil {
		return false
	}
	return !e.callerGaveUp && !isTLSError(e.Err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isTLSError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
		record           tls.RecordHeaderError
		// A TLS alert from the agent, e.g. "certificate required" when it
		// wants a client certificate: crypto/tls reports it as a "remote error".
		remote *net.OpError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &record) || (errors.As(err, &remote) && remote.Op == "remote error")
}
