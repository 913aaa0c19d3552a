package engine

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
)

// AgentClient is what the engine needs from a node agent.
type AgentClient interface {
	Health(ctx context.Context) (api.Health, error)
	Node(ctx context.Context) (api.NodeFacts, error)
	Workloads(ctx context.Context) (api.WorkloadList, error)
	Action(ctx context.Context, workload, action string) (api.ActionResult, error)
	ClaimCoordinator(ctx context.Context, claim api.CoordinatorClaim) (api.CoordinatorState, error)
	Backup(ctx context.Context, workload string, req api.BackupRequest) (api.BackupResult, error)
	Restore(ctx context.Context, workload string, req api.RestoreRequest) (api.RestoreResult, error)
	NodeBackup(ctx context.Context, req api.NodeBackupRequest) (api.NodeBackupResult, error)
}

// Dialer returns a client for the agent of node at endpoint. Tests inject
// one that counts or fails; production uses HTTPDialer.
type Dialer func(node, endpoint string) (AgentClient, error)

// HTTPDialerOptions configure the real HTTP(S) agent client.
type HTTPDialerOptions struct {
	Token string
	// NodeTokens are per-node tokens; a node without one gets Token.
	NodeTokens map[string]string
	TLSConfig  *tls.Config
	// InsecurePlaintext allows http:// endpoints that are not loopback.
	InsecurePlaintext bool
	RequestTimeout    time.Duration
	RetryMax          int
	Logger            *slog.Logger
}

// HTTPDialer dials agents over HTTP(S) with the node's bearer token.
func HTTPDialer(o HTTPDialerOptions) Dialer {
	return func(node, endpoint string) (AgentClient, error) {
		token := o.Token
		if t, ok := o.NodeTokens[node]; ok {
			token = t
		}
		if token == "" {
			return nil, fmt.Errorf("no agent token for node %s: add it to the provider's agent_tokens, or set agent_token for every node", node)
		}
		return client.New(client.Options{
			Node:              node,
			Endpoint:          endpoint,
			Token:             token,
			InsecurePlaintext: o.InsecurePlaintext,
			TLSConfig:         o.TLSConfig,
			RequestTimeout:    o.RequestTimeout,
			RetryMax:          o.RetryMax,
			Logger:            o.Logger,
		})
	}
}

// LoadCA reads a PEM CA bundle for verifying agents' TLS certificates.
func LoadCA(file string) (*tls.Config, error) { return client.LoadCA(file) }

// LoadAgentTLS builds the TLS config for agents: the CA that signed their
// certificates (empty: system roots) and the engine's client certificate
// for agents that require mutual TLS (empty: none).
func LoadAgentTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	return client.LoadTLS(caFile, certFile, keyFile)
}

// CheckAgentTransport refuses a plain-HTTP endpoint to another host unless
// insecurePlaintext; the dialer applies the same rule.
func CheckAgentTransport(endpoint string, insecurePlaintext bool) error {
	return client.CheckPlaintext(endpoint, insecurePlaintext)
}
