package engine

import (
	"context"
	"crypto/tls"
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
	Token          string
	TLSConfig      *tls.Config
	RequestTimeout time.Duration
	RetryMax       int
	Logger         *slog.Logger
}

// HTTPDialer dials agents over HTTP(S) with the bearer token.
func HTTPDialer(o HTTPDialerOptions) Dialer {
	return func(node, endpoint string) (AgentClient, error) {
		return client.New(client.Options{
			Node:           node,
			Endpoint:       endpoint,
			Token:          o.Token,
			TLSConfig:      o.TLSConfig,
			RequestTimeout: o.RequestTimeout,
			RetryMax:       o.RetryMax,
			Logger:         o.Logger,
		})
	}
}

// LoadCA reads a PEM CA bundle for verifying agents' TLS certificates.
func LoadCA(file string) (*tls.Config, error) { return client.LoadCA(file) }
