// Package rescuecli holds the engine's disaster-day commands, wired as
// `terraform-provider-clusterguard engine catalog rebuild` and `engine
// restore`: they need nothing but the repository (and, for a restore, the
// agents), because every recovery point describes itself (its cluster,
// group, workload, node, run, tags, consistency and the workload's
// definition). All behaviour lives in the engine: the restore runs the very
// same PlanRestore and RunRestore a restore job does, over an in-memory
// catalog built from the repository.
package rescuecli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/catalogopen"
)

// Environment variables read by the commands.
const (
	EnvPassword   = "CLUSTERGUARD_PASSWORD"
	EnvS3Endpoint = "CLUSTERGUARD_S3_ENDPOINT"
	EnvS3Region   = "CLUSTERGUARD_S3_REGION"
)

type usageError struct{ error }

func usageErrorf(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exit turns a command's error into its exit code: 0, 1 failure, 2 usage.
func exit(stderr io.Writer, cmd string, err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// repoFlags are the flags naming a repository.
type repoFlags struct {
	name, url, passwordFile string
	s3Endpoint, s3Region    string
	s3PathStyle, s3Insecure bool
}

func (r *repoFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.url, "repository", "", "the repository: a directory path or s3://bucket/prefix (required)")
	fs.StringVar(&r.passwordFile, "password-file", "", "read the repository password from `FILE` (else env "+EnvPassword+")")
	fs.StringVar(&r.s3Endpoint, "s3-endpoint", os.Getenv(EnvS3Endpoint), "S3 endpoint; credentials from AWS_* env")
	fs.StringVar(&r.s3Region, "s3-region", os.Getenv(EnvS3Region), "S3 region")
	fs.BoolVar(&r.s3PathStyle, "s3-path-style", false, "path-style S3 requests")
	fs.BoolVar(&r.s3Insecure, "s3-insecure", false, "plain HTTP to the S3 endpoint")
}

func (r *repoFlags) password() (string, error) {
	if r.passwordFile != "" {
		b, err := os.ReadFile(r.passwordFile)
		if err != nil {
			return "", fmt.Errorf("reading the repository password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if pw := os.Getenv(EnvPassword); pw != "" {
		return pw, nil
	}
	return "", usageErrorf("no repository password: use --password-file FILE or set %s", EnvPassword)
}

// catalogRepository is the repository as the catalog records it.
func (r *repoFlags) catalogRepository(name string) (catalog.Repository, error) {
	if r.url == "" {
		return catalog.Repository{}, usageErrorf("--repository URL is required (a directory path or s3://bucket/prefix)")
	}
	pw, err := r.password()
	if err != nil {
		return catalog.Repository{}, err
	}
	return catalog.Repository{Name: name, URL: r.url, Endpoint: r.s3Endpoint, Region: r.s3Region, PathStyle: r.s3PathStyle, Insecure: r.s3Insecure,
		AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"), SessionToken: os.Getenv("AWS_SESSION_TOKEN"),
		Password: pw}, nil
}

// ensureRepository registers repository r in eng's catalog, or checks that
// the catalog's registration of that name is the same repository.
func ensureRepository(ctx context.Context, eng *engine.Engine, r catalog.Repository) error {
	old, err := eng.GetRepository(ctx, r.Name)
	switch {
	case err == nil && old.URL != r.URL:
		return fmt.Errorf("the catalog's repository %q is at %s, not %s: name the repository with --repository-name as the catalog knows it, or pick another name", r.Name, old.URL, r.URL)
	case err == nil:
		return nil
	case !errors.Is(err, catalog.ErrNotFound):
		return fmt.Errorf("reading repository %q from the catalog: %w", r.Name, err)
	}
	if _, err := eng.RegisterRepository(ctx, r); err != nil {
		return fmt.Errorf("registering repository %q in the catalog: %w", r.Name, err)
	}
	return nil
}

// RunCatalog runs `engine catalog SUBCOMMAND`.
func RunCatalog(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "rebuild" {
		fmt.Fprint(stderr, "usage: engine catalog rebuild --catalog PATH|URL --repository-name NAME --repository URL [--password-file F] [--cluster NAME]\n")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return 0
		}
		return 2
	}
	return exit(stderr, "catalog rebuild", catalogRebuild(ctx, args[1:], stdout, stderr))
}

func catalogRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("catalog rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf repoFlags
	rf.register(fs)
	where := fs.String("catalog", "", "the catalog: a SQLite file or a postgres:// URL (required; created when absent)")
	keyFile := fs.String("catalog-key-file", "", "the catalog key file (default: env "+catalogopen.EnvCatalogKey+"/"+catalogopen.EnvCatalogKeyFile+", else <catalog>.key for SQLite)")
	fs.StringVar(&rf.name, "repository-name", "", "the repository's name in the catalog (as in Terraform's clusterguard_repository; required)")
	cluster := fs.String("cluster", "", "index only this cluster's recovery points (default: all)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected arguments %q", fs.Args())
	}
	if *where == "" || rf.name == "" {
		return usageErrorf("--catalog and --repository-name are required")
	}
	r, err := rf.catalogRepository(rf.name)
	if err != nil {
		return err
	}
	store, err := catalogopen.Open(ctx, *where, catalogopen.Options{KeyFile: *keyFile})
	if err != nil {
		return fmt.Errorf("opening the catalog %s: %w", catalogopen.RedactURL(*where), err)
	}
	defer store.Close()
	eng, err := engine.New(engine.Options{Store: store, Owner: "catalog-rebuild", Dial: noAgents})
	if err != nil {
		return err
	}
	if err := ensureRepository(ctx, eng, r); err != nil {
		return err
	}
	rep, err := eng.RebuildIndex(ctx, r.Name, *cluster)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "read %d snapshots holding %d recovery points; added %d to the catalog (%d were known)\n",
		rep.Snapshots, rep.Points, rep.Added, rep.Points-rep.Added)
	fmt.Fprintf(stdout, "clusters:  %s\ngroups:    %s\nworkloads: %s\n", list(rep.Clusters), list(rep.Groups), list(rep.Workloads))
	if rep.Runs > 0 {
		fmt.Fprintf(stdout, "runs recorded again (of groups the catalog knows): %d\n", rep.Runs)
	}
	if len(rep.Groups) > 0 {
		fmt.Fprintln(stdout, "groups, clusters and schedules are settings the repository does not hold: declare them in Terraform again (terraform import, or apply)")
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(stdout, "skipped %d snapshots without a cluster or workload (written by `engine repo backup`?): %s\n", len(rep.Skipped), strings.Join(rep.Skipped, ", "))
	}
	return nil
}

// noAgents is the dialer of commands that read only the repository.
func noAgents(node, _ string) (engine.AgentClient, error) {
	return nil, fmt.Errorf("node %s: this command reads only the repository and contacts no agent", node)
}

func list(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
