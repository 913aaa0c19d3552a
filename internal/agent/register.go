package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// registrar announces the agent to the engine daemon of its engine block,
// at start and every interval, so the catalog knows which nodes exist and
// which workloads each serves. It runs beside the server and never holds it
// up: a daemon that is down only costs a warning per interval.
type registrar struct {
	cfg      *Config
	client   *http.Client
	body     api.NodeRegistration
	logger   *slog.Logger
	failing  bool
	interval time.Duration
}

func newRegistrar(s *Server, boundAddr, volumeID string) (*registrar, error) {
	e := s.cfg.Engine
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		pool, err := loadCertPool(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("engine ca_file: %w", err)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	workloads := slices.Clone(s.names)
	slices.Sort(workloads)
	return &registrar{
		cfg:    s.cfg,
		client: &http.Client{Transport: tr, Timeout: min(e.Interval, 10*time.Second)},
		body: api.NodeRegistration{Cluster: e.Cluster, Node: s.cfg.Node, Endpoint: s.cfg.advertised(boundAddr),
			VolumeID: volumeID, Version: s.version, Workloads: workloads},
		logger:   s.logger.With("engine", e.URL),
		interval: e.Interval,
	}, nil
}

// run registers now and then every interval until ctx ends.
func (r *registrar) run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		r.once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// once sends one registration; a failure is logged once per attempt (one
// attempt per interval), the recovery once.
func (r *registrar) once(ctx context.Context) {
	err := r.register(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		r.failing = true
		r.logger.Warn("registration with the engine daemon failed; retrying at the next interval", "interval", r.interval.String(), "error", err)
	case err == nil && r.failing:
		r.failing = false
		r.logger.Info("registered with the engine daemon again")
	case err == nil:
		r.logger.Debug("registered with the engine daemon", "endpoint", r.body.Endpoint)
	}
}

func (r *registrar) register(ctx context.Context) error {
	body, err := json.Marshal(r.body)
	if err != nil {
		return err
	}
	target := strings.TrimSuffix(r.cfg.Engine.URL, "/") + api.RegisterPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.cfg.Engine.Token.Reveal())
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w; check that the engine daemon runs and url in the engine block", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<12))
		return nil
	}
	var apiErr api.Error
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<14)).Decode(&apiErr)
	return fmt.Errorf("POST %s: %s: %s", target, resp.Status, apiErr.Message)
}

// startRegistration runs the registrar of the engine block, if any, until
// the returned stop is called (or ctx ends).
func (s *Server) startRegistration(ctx context.Context, boundAddr, volumeID string) (stop func(), err error) {
	if s.cfg.Engine == nil {
		return func() {}, nil
	}
	r, err := newRegistrar(s, boundAddr, volumeID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.run(ctx) }()
	return func() { cancel(); <-done }, nil
}
