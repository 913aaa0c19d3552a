package serve

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/catalogopen"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/daemon"
)

// Exit codes of `engine serve` and `engine check`.
const (
	ExitOK    = 0
	ExitError = 1 // invalid config, catalog unusable, daemon failed
	ExitUsage = 2 // wrong flags
)

// Main runs `engine serve` (args[0] == "serve") or `engine check`; ctx is
// cancelled on SIGTERM or SIGINT. It returns the process exit code.
func Main(ctx context.Context, args []string, version string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: terraform-provider-clusterguard engine serve|check --config FILE")
		return ExitUsage
	}
	fs := flag.NewFlagSet("engine "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path of the daemon's HCL config file (required)")
	var readyFile *string
	var asJSON *bool
	switch args[0] {
	case "serve":
		readyFile = fs.String("ready-file", "", "write the bound listen address (host:port) to this file once serving")
		fs.Usage = func() {
			fmt.Fprintln(stderr, "usage: terraform-provider-clusterguard engine serve --config FILE [--ready-file F]")
			fmt.Fprintln(stderr, "\nRuns the engine daemon (schedules, /health, /metrics, agent registration) until SIGTERM or SIGINT.")
			fs.PrintDefaults()
		}
	case "check":
		asJSON = fs.Bool("json", false, "print the report as JSON")
		fs.Usage = func() {
			fmt.Fprintln(stderr, "usage: terraform-provider-clusterguard engine check --config FILE [--json]")
			fmt.Fprintln(stderr, "\nValidates the daemon config, opens the catalog and reports leadership and the daemons seen.")
			fmt.Fprintln(stderr, "Exit codes: 0 usable, 1 invalid config or catalog unusable, 2 wrong flags.")
			fs.PrintDefaults()
		}
	default:
		fmt.Fprintf(stderr, "unknown engine command %q\n", args[0])
		return ExitUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if *configPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return ExitUsage
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "clusterguard engine: %v\n", err)
		return ExitError
	}
	if args[0] == "check" {
		return check(ctx, cfg, *asJSON, stdout, stderr)
	}
	if err := Serve(ctx, cfg, Options{Version: version, ReadyFile: *readyFile}); err != nil {
		fmt.Fprintf(stderr, "clusterguard engine: %v\n", err)
		return ExitError
	}
	return ExitOK
}

// Report is what `engine check` found.
type Report struct {
	Config        string              `json:"config"`
	Catalog       string              `json:"catalog"` // password redacted
	Backend       string              `json:"backend"` // sqlite or postgresql
	Listen        string              `json:"listen"`
	Registration  bool                `json:"registration"`
	DaemonLock    string              `json:"daemon_lock,omitempty"` // SQLite: free, or who holds it
	Leader        *catalog.Leadership `json:"leader,omitempty"`
	Daemons       []catalog.Daemon    `json:"daemons"`
	Registrations int                 `json:"registrations"`
	Schedules     int                 `json:"schedules"`
}

func check(ctx context.Context, cfg *Config, asJSON bool, stdout, stderr io.Writer) int {
	r := Report{Config: cfg.Path, Catalog: catalogopen.RedactURL(cfg.Catalog), Backend: "sqlite", Listen: cfg.Listen, Registration: cfg.RegistrationToken != ""}
	if catalogopen.IsPostgres(cfg.Catalog) {
		r.Backend = "postgresql"
	} else if _, err := os.Stat(cfg.Catalog); errors.Is(err, os.ErrNotExist) {
		// Checking must not create the catalog (nor its key) as a side effect.
		fmt.Fprintf(stdout, "config %s: valid\ncatalog: %s (sqlite) does not exist yet; engine serve creates it\n", r.Config, r.Catalog)
		return ExitOK
	} else if err == nil {
		// Probe the lock without keeping it: a running daemon holds it.
		if release, err := lockCatalog(cfg.Catalog); err == nil {
			release()
			r.DaemonLock = "free"
		} else if errors.Is(err, errLocked) {
			r.DaemonLock = "held by " + lockHolder(cfg.Catalog+lockSuffix)
		} else {
			r.DaemonLock = err.Error()
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := catalogopen.Open(ctx, cfg.Catalog, catalogopen.Options{KeyFile: cfg.CatalogKeyFile, NoEnv: true})
	if err != nil {
		fmt.Fprintf(stderr, "clusterguard engine: the config is valid but the catalog %s cannot be opened: %v\n", r.Catalog, err)
		return ExitError
	}
	defer store.Close()
	var errs []error
	if l, err := store.GetLeadership(ctx, daemon.RoleScheduler); err == nil {
		r.Leader = &l
	} else if !errors.Is(err, catalog.ErrNotFound) {
		errs = append(errs, fmt.Errorf("read the scheduler leadership: %w", err))
	}
	if r.Daemons, err = store.ListDaemons(ctx); err != nil {
		errs = append(errs, fmt.Errorf("list daemons: %w", err))
	}
	if regs, err := store.ListNodeRegistrations(ctx, ""); err != nil {
		errs = append(errs, fmt.Errorf("list node registrations: %w", err))
	} else {
		r.Registrations = len(regs)
	}
	if s, err := store.ListSchedules(ctx, ""); err != nil {
		errs = append(errs, fmt.Errorf("list schedules: %w", err))
	} else {
		r.Schedules = len(s)
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "clusterguard engine: the catalog %s opened but cannot be read: %v; check that it was created by this release (migrations) and the user may read it\n", r.Catalog, err)
		return ExitError
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		return ExitOK
	}
	fmt.Fprintf(stdout, "config %s: valid\ncatalog: %s (%s), opened\nlisten: %s (registration %s)\n", r.Config, r.Catalog, r.Backend, r.Listen, map[bool]string{true: "enabled", false: "disabled"}[r.Registration])
	if r.DaemonLock != "" {
		fmt.Fprintf(stdout, "daemon lock: %s\n", r.DaemonLock)
	}
	if r.Leader != nil {
		fmt.Fprintf(stdout, "scheduler leader: %s (token %d, lease until %s)\n", r.Leader.Holder, r.Leader.Token, r.Leader.ExpiresAt.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintln(stdout, "scheduler leader: none yet")
	}
	fmt.Fprintf(stdout, "daemons seen: %d\n", len(r.Daemons))
	for _, d := range r.Daemons {
		fmt.Fprintf(stdout, "  %s on %s, version %s, listen %s, last seen %s\n", d.ID, d.Host, d.Version, d.Listen, d.SeenAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "schedules: %d, registered nodes: %d\n", r.Schedules, r.Registrations)
	return ExitOK
}
