package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/watchdog"
)

// AddrFile is written to the state directory with the address the agent
// actually listens on, so that `listen = "127.0.0.1:0"` is usable by harnesses.
const AddrFile = "agent.addr"

// DefaultShutdownTimeout bounds how long a stopping agent waits for in-flight
// requests (a quiesce may be running) before it closes their connections.
const DefaultShutdownTimeout = 15 * time.Second

// Options configure Run.
type Options struct {
	ConfigPath string
	Version    string
	// Logger receives structured logs; nil logs JSON to stderr at the config's log_level.
	Logger *slog.Logger
	// Ready, if set, is called with the listen address once the agent accepts connections.
	Ready func(addr string)
	// ShutdownTimeout overrides DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// WatchdogBinary, when set, is the binary (this one) whose hidden
	// `agent watchdog` subcommand kills the workloads if the agent stalls
	// (see package watchdog). Main sets it.
	WatchdogBinary string
}

// Run loads the config, serves the agent API until ctx is cancelled, then shuts
// down gracefully: it stops accepting connections and lets in-flight requests
// finish within the shutdown timeout.
func Run(ctx context.Context, opts Options) error {
	cfg, err := LoadConfig(opts.ConfigPath)
	if err != nil {
		return err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	logger = logger.With("node", cfg.Node)
	for _, w := range cfg.Warnings {
		logger.Warn("config warning", "warning", w)
	}

	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state directory %s: %w; set state_dir to a writable node-local directory", cfg.StateDir, err)
	}
	// Before any driver is built: building one recovers (thaws) workloads.
	unlock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	volumeID, err := EnsureVolumeID(cfg.SharedVolume)
	if err != nil {
		return fmt.Errorf("shared volume %s: %w", cfg.SharedVolume, err)
	}
	srv, err := NewServer(cfg, ServerOptions{Version: opts.Version, Logger: logger})
	if err != nil {
		return err
	}
	if opts.WatchdogBinary != "" {
		srv.EnableWatchdog(opts.WatchdogBinary)
	}
	// Adopt the workloads running here and renew their ownership leases.
	// Run returns only once that loop has stopped, so no lease write of a
	// stopped agent lands after it (or after its lock is released).
	ownCtx, ownCancel := context.WithCancel(ctx)
	ownDone := make(chan struct{})
	go func() { defer close(ownDone); srv.RunOwnership(ownCtx) }()
	defer func() {
		ownCancel()
		select {
		case <-ownDone:
		case <-time.After(DefaultShutdownTimeout):
			logger.Warn("the ownership lease loop did not stop in time")
		}
		if !srv.StopBackground(DefaultShutdownTimeout) {
			logger.Warn("background ownership work did not stop in time")
		}
	}()

	ln, scheme, err := listen(cfg, logger)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	addrFile := filepath.Join(cfg.StateDir, AddrFile)
	if err := writeFileAtomic(addrFile, []byte(addr+"\n"), 0o644); err != nil {
		ln.Close()
		return fmt.Errorf("write %s: %w", addrFile, err)
	}
	defer os.Remove(addrFile) // a stale address would send harnesses to a dead port

	httpSrv := newHTTPServer(cfg, srv, logger)
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	logger.Info("agent listening", "addr", addr, "url", scheme+"://"+addr, "version", opts.Version,
		"shared_volume", cfg.SharedVolume, "volume_id", volumeID, "state_dir", cfg.StateDir, "workloads", len(cfg.Workloads))
	if opts.Ready != nil {
		opts.Ready(addr)
	}
	if stop, err := srv.startRegistration(ctx, addr, volumeID); err != nil {
		logger.Warn("not registering with the engine daemon", "error", err)
	} else {
		defer stop()
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	timeout := opts.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	logger.Info("agent shutting down", "reason", context.Cause(ctx), "grace", timeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	defer srv.ReleaseHolds() // after in-flight requests: never leave a workload quiesced
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		// Closing the connections cancels the requests' contexts, which kills
		// their driver commands.
		httpSrv.Close()
		return fmt.Errorf("graceful shutdown: in-flight requests did not finish within %v; they were cancelled", timeout)
	}
	logger.Info("agent stopped")
	return nil
}

// Main is the `agent` subcommand: it parses --config and runs the agent until
// SIGTERM or SIGINT. It returns the process exit code.
func Main(args []string, version string) int {
	return runMain(args, version, os.Stderr)
}

func runMain(args []string, version string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == watchdog.Subcommand { // hidden: started by the agent itself
		return watchdog.Main(os.Stdin, stderr)
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path of the agent's HCL config file (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: terraform-provider-clusterguard agent --config FILE")
		fmt.Fprintln(stderr, "\nRuns the clusterguard node agent until SIGTERM or SIGINT.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *configPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "clusterguard agent: find its own binary for the watchdog: %v\n", err)
		return 1
	}
	if err := Run(ctx, Options{ConfigPath: *configPath, Version: version, WatchdogBinary: bin}); err != nil {
		fmt.Fprintf(stderr, "clusterguard agent: %v\n", err)
		return 1
	}
	return 0
}

// writeFileAtomic replaces path with data, so readers never see a partial file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	if err := errors.Join(werr, tmp.Chmod(perm), tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is durable only once the directory is.
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}
