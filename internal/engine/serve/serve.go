package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/catalogopen"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/daemon"
)

// ShutdownTimeout bounds the HTTP server's graceful stop once the
// scheduler has returned.
const ShutdownTimeout = 10 * time.Second

// Options configure Serve.
type Options struct {
	Version string
	Logger  *slog.Logger
	// ReadyFile, when set, receives the bound listen address ("host:port\n")
	// once the daemon serves, so `listen = "127.0.0.1:0"` is usable by
	// harnesses and scripts; it is removed at stop.
	ReadyFile string
	Now       func() time.Time
}

// Serve runs the engine daemon of cfg until ctx is cancelled: the
// scheduler (internal/engine/daemon) and the HTTP server for /health,
// /metrics and agent registration. It returns once both have stopped.
func Serve(ctx context.Context, cfg *Config, o Options) error {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if !catalogopen.IsPostgres(cfg.Catalog) {
		release, err := lockCatalog(cfg.Catalog)
		if err != nil {
			return err
		}
		defer release()
	}
	store, err := catalogopen.Open(ctx, cfg.Catalog, catalogopen.Options{KeyFile: cfg.CatalogKeyFile, NoEnv: true})
	if err != nil {
		return fmt.Errorf("open the catalog %s: %w", catalogopen.RedactURL(cfg.Catalog), err)
	}
	defer store.Close()
	eng, err := newEngine(cfg, store, now, logger)
	if err != nil {
		return err
	}

	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d, err := daemon.New(daemon.Options{Engine: eng, Store: store, Version: o.Version, Listen: addr, Now: now,
		Tick: cfg.Tick, LeaderTTL: cfg.LeaderTTL, MaxConcurrentRuns: cfg.MaxConcurrentRuns, Logger: logger, Registerer: reg,
		Recover: recoverAbandoned(eng, logger)})
	if err != nil {
		ln.Close()
		return fmt.Errorf("start the scheduler: %w", err)
	}
	h := &handler{store: store, token: cfg.RegistrationToken.Reveal(), now: now, logger: logger, gatherer: reg,
		health: func() Health { return healthOf(d.Health(), o.Version, cfg.Tick, now()) }}
	srv := &http.Server{
		Handler:           newHandler(h, reg),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(runCtx) }()

	if o.ReadyFile != "" {
		if err := writeFileAtomic(o.ReadyFile, []byte(addr+"\n")); err != nil {
			logger.Warn("could not write the ready file", "file", o.ReadyFile, "err", err)
		}
		defer os.Remove(o.ReadyFile)
	}
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	logger.Info("engine daemon serving", "addr", addr, "url", scheme+"://"+addr, "catalog", catalogopen.RedactURL(cfg.Catalog),
		"version", o.Version, "registration", cfg.RegistrationToken != "")

	var runErr error
	select {
	case runErr = <-ran:
		// The scheduler stopped on its own: fatal (the catalog went away...).
		if runErr == nil && ctx.Err() == nil {
			runErr = errors.New("the scheduler stopped unexpectedly")
		}
	case err := <-served:
		stopRun()
		<-ran
		return fmt.Errorf("serve HTTP on %s: %w", addr, err)
	case <-ctx.Done():
		logger.Info("engine daemon stopping", "reason", context.Cause(ctx))
		runErr = <-ran // finishes or hands back the runs in progress
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return fmt.Errorf("scheduler: %w", runErr)
	}
	logger.Info("engine daemon stopped")
	return nil
}

// recoverAbandoned is what the leader runs on taking leadership and every
// minute: finish the runs and restores a dead provider or daemon left.
func recoverAbandoned(eng *engine.Engine, logger *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		rep, err := eng.RecoverAbandoned(ctx)
		for _, r := range rep.Runs {
			logger.Warn("abandoned backup run marked failed", "run", r.ID, "group", r.Group, "owner", r.Owner, "last_seen", r.LastSeen)
		}
		for _, r := range rep.Restores {
			logger.Warn("abandoned restore recovered", "restore", r.ID, "cluster", r.Cluster, "owner", r.Owner, "last_seen", r.LastSeen,
				"restarted", len(r.Restarted), "not_restarted", len(r.NotRestarted), "failed", r.Failed, "error", r.Error)
		}
		return err
	}
}

// newEngine builds the engine as the provider does, from the daemon's
// agent credentials.
func newEngine(cfg *Config, store engine.Store, now func() time.Time, logger *slog.Logger) (*engine.Engine, error) {
	var tlsConfig *tls.Config
	if cfg.CAFile != "" || cfg.ClientCertFile != "" {
		var err error
		if tlsConfig, err = engine.LoadAgentTLS(cfg.CAFile, cfg.ClientCertFile, cfg.ClientKeyFile); err != nil {
			return nil, fmt.Errorf("agent TLS (ca_file, client_cert_file, client_key_file): %w", err)
		}
	}
	nodeTokens := map[string]string{}
	for n, t := range cfg.AgentTokens {
		nodeTokens[n] = t.Reveal()
	}
	dial := engine.HTTPDialer(engine.HTTPDialerOptions{Token: cfg.AgentToken.Reveal(), NodeTokens: nodeTokens, TLSConfig: tlsConfig,
		InsecurePlaintext: cfg.InsecurePlaintext, RequestTimeout: cfg.RequestTimeout, Logger: logger})
	eng, err := engine.New(engine.Options{Store: store, Dial: dial, Now: now, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("configure the engine: %w", err)
	}
	return eng, nil
}

// healthOf maps the scheduler's state to /health: healthy while it ticked
// within five ticks (at least five seconds).
func healthOf(h daemon.Health, version string, tick time.Duration, now time.Time) Health {
	out := Health{ID: h.ID, Version: version, Leader: h.Leader, Token: h.Token, Running: h.Running, LastTick: h.LastTick, LastError: h.LastError}
	bound := max(5*tick, 5*time.Second)
	switch {
	case h.LastTick.IsZero():
		out.Reason = "the scheduler has not ticked yet"
	case now.Sub(h.LastTick) > bound:
		out.Reason = fmt.Sprintf("the scheduler last ticked %s ago (more than %s)", now.Sub(h.LastTick).Round(time.Millisecond), bound)
	default:
		out.Healthy = true
	}
	return out
}

// listen opens the HTTP listener: TLS when configured (client
// certificates verified when client_ca_file is set), at most 64
// connections at once.
func listen(cfg *Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w; choose a free address in listen (\"127.0.0.1:0\" picks any free port)", cfg.Listen, err)
	}
	ln = netutil.LimitListener(ln, 64)
	if cfg.TLS == nil {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.TLS.ClientCAFile != "" {
		pool, err := engine.LoadCA(cfg.TLS.ClientCAFile) // its RootCAs are the client CAs
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("tls client_ca_file: %w", err)
		}
		tc.ClientCAs, tc.ClientAuth = pool.RootCAs, tls.RequireAndVerifyClientCert
	}
	return tls.NewListener(ln, tc), nil
}

// writeFileAtomic replaces path with data, so readers never see a partial file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
