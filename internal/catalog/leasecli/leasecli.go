// Package leasecli is the break-glass command line over the catalog's
// coordinator leases, wired as `terraform-provider-clusterguard engine lease`.
// A lease left by an engine that died expires by itself within its short
// TTL; this shows the leases and clears one at once when an operator
// cannot wait, or when a clock is wrong.
package leasecli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/postgres"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlite"
)

// EnvCatalog names the catalog when --catalog is not given, as for the
// provider.
const EnvCatalog = "CLUSTERGUARD_CATALOG"

const usage = `usage: lease COMMAND --catalog PATH|URL [flags]

commands:
  list [--json]                        show every coordinator lease, held or expired
  release --cluster NAME [--epoch N]   clear a cluster's lease whatever its holder

Release only a lease whose engine is dead (the provider or daemon was killed):
a live engine loses its step, which stops with "lost the coordinator lease".
The agents' epoch fencing refuses any late work of the old holder either way.

flags:
  --catalog PATH|URL   the engine's catalog: a SQLite file or a postgres:// URL
                       (env ` + EnvCatalog + `)
`

// Store is what the commands need from a catalog.
type Store interface {
	ListLeases(ctx context.Context) ([]catalog.Lease, error)
	ReleaseLease(ctx context.Context, cluster string, epoch int64) error
	Close() error
}

// Open opens the catalog named by where without ever creating one: a
// mistyped path must not look like an empty catalog with no lease.
var Open = func(ctx context.Context, where string) (Store, error) {
	if postgres.IsURL(where) {
		return postgres.Open(ctx, where, postgres.Options{})
	}
	if _, err := os.Stat(where); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no catalog at %s: give the path the provider's catalog setting names", where)
	} else if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", where, err)
	}
	return sqlite.Open(ctx, where, sqlite.Options{})
}

type usageError struct{ error }

// Run executes one invocation and returns the exit code: 0 success, 1
// failure (including no lease to release), 2 bad usage.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		_, _ = fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := args[0]
	fset := flag.NewFlagSet("lease "+cmd, flag.ContinueOnError)
	fset.SetOutput(stderr)
	where := fset.String("catalog", os.Getenv(EnvCatalog), "the engine's catalog: SQLite file path or postgres:// URL")
	asJSON := fset.Bool("json", false, "print JSON (list)")
	cluster := fset.String("cluster", "", "cluster whose lease to release (release)")
	epoch := fset.Int64("epoch", 0, "release only if the lease still carries this epoch (release)")
	if err := fset.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var err error
	switch {
	case cmd != "list" && cmd != "release":
		err = usageError{fmt.Errorf("unknown command %q; use list or release", cmd)}
	case *where == "":
		err = usageError{fmt.Errorf("--catalog is required (or set %s)", EnvCatalog)}
	case fset.NArg() > 0:
		err = usageError{fmt.Errorf("unexpected arguments %q", fset.Args())}
	case cmd == "release" && *cluster == "":
		err = usageError{errors.New("--cluster is required: name the cluster whose lease to release")}
	}
	if err == nil {
		err = run(ctx, cmd, *where, *cluster, *epoch, *asJSON, stdout, now)
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		_, _ = fmt.Fprintf(stderr, "lease %s: %v\n\n%s", cmd, err, usage)
		return 2
	default:
		_, _ = fmt.Fprintf(stderr, "lease %s: %v\n", cmd, err)
		return 1
	}
}

// leaseJSON is one lease in `list --json`.
type leaseJSON struct {
	Cluster   string    `json:"cluster"`
	Node      string    `json:"node"`
	Engine    string    `json:"engine"`
	Epoch     int64     `json:"epoch"`
	ExpiresAt time.Time `json:"expires_at"`
	Expired   bool      `json:"expired"`
}

func run(ctx context.Context, cmd, where, cluster string, epoch int64, asJSON bool, stdout io.Writer, now func() time.Time) error {
	s, err := Open(ctx, where)
	if err != nil {
		return err
	}
	defer s.Close() //nolint:errcheck // read or one release, already committed
	leases, err := s.ListLeases(ctx)
	if err != nil {
		return err
	}
	t := now()
	if cmd == "list" {
		if asJSON {
			out := []leaseJSON{}
			for _, l := range leases {
				out = append(out, leaseJSON{Cluster: l.Cluster, Node: l.Holder, Engine: l.Owner, Epoch: l.Epoch, ExpiresAt: l.ExpiresAt.UTC(), Expired: !t.Before(l.ExpiresAt)})
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}
		if len(leases) == 0 {
			_, err := fmt.Fprintln(stdout, "no coordinator lease is held")
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLUSTER\tNODE\tENGINE\tEPOCH\tEXPIRES")
		for _, l := range leases {
			state := "in " + l.ExpiresAt.Sub(t).Round(time.Second).String()
			if !t.Before(l.ExpiresAt) {
				state = "expired"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s (%s)\n", l.Cluster, l.Holder, l.Owner, l.Epoch, l.ExpiresAt.UTC().Format(time.RFC3339), state)
		}
		return tw.Flush()
	}
	for _, l := range leases {
		if l.Cluster != cluster {
			continue
		}
		if epoch > 0 && l.Epoch != epoch {
			return fmt.Errorf("cluster %q's lease now carries epoch %d (node %s, engine %s), not %d: nothing released; list the leases again", cluster, l.Epoch, l.Holder, l.Owner, epoch)
		}
		if err := s.ReleaseLease(ctx, cluster, l.Epoch); err != nil {
			return fmt.Errorf("releasing cluster %q's lease: %w", cluster, err)
		}
		_, err := fmt.Fprintf(stdout, "released cluster %s's lease: node %s, engine %s, epoch %d\n", cluster, l.Holder, l.Owner, l.Epoch)
		return err
	}
	return fmt.Errorf("cluster %q holds no coordinator lease: %w", cluster, catalog.ErrNotFound)
}
