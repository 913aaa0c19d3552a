// Command terraform-provider-clusterguard is the clusterguard Terraform
// provider, the node agent daemon and the engine's break-glass commands in one
// binary, so an operator installs and upgrades one artefact everywhere.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/leasecli"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/serve"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/repocli"
)

// version is set by the linker (-ldflags "-X main.version=...") in releases.
var version = "dev"

const providerAddress = "registry.terraform.io/clusterguard/clusterguard"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "agent":
			return agent.Main(args[1:], version)
		case "engine":
			return runEngine(args[1:], stdout, stderr)
		case "version", "--version", "-version":
			fmt.Fprintf(stdout, "terraform-provider-clusterguard %s\n", version)
			return 0
		case "help", "-h", "--help":
			usage(stdout)
			return 0
		}
	}
	return serveProvider(args, stderr)
}

func serveProvider(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("terraform-provider-clusterguard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	debug := fs.Bool("debug", false, "run the provider with support for debuggers like delve")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address:         providerAddress,
		Debug:           *debug,
		ProtocolVersion: 6,
	})
	if err != nil {
		log.Println(err.Error())
		return 1
	}
	return 0
}

func runEngine(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: terraform-provider-clusterguard engine serve|check|repo|lease [flags] [flags]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "repo":
		return repocli.Run(ctx, args[1:], stdout, stderr)
	case "lease":
		return leasecli.Run(ctx, args[1:], stdout, stderr, time.Now)
	case "serve", "check":
		return serve.Main(ctx, args, version, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "unknown engine command %q; available: serve, check, repo, lease\n", args[0])
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `terraform-provider-clusterguard: federated backup and restore for clusters sharing a volume.

Usage:
  terraform-provider-clusterguard [-debug]          serve the Terraform provider (run by Terraform)
  terraform-provider-clusterguard agent --config F  run the node agent daemon
  terraform-provider-clusterguard engine serve --config F  run the engine daemon (schedules, /health, /metrics, registration)
  terraform-provider-clusterguard engine check --config F  validate a daemon config and report on its catalog
  terraform-provider-clusterguard engine repo ...   inspect and maintain a backup repository
  terraform-provider-clusterguard engine lease ...  list or release coordinator leases (break-glass)
  terraform-provider-clusterguard version           print the version
`)
}
