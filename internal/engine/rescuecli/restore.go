package rescuecli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/memstore"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

const restoreUsage = `usage: engine restore --repository URL [--password-file F] --workload NAME
         --nodes node-1=https://HOST:PORT,node-2=... --token-file F [--ca-file F]
         [--node N] [--before TIME | --recovery-point ID] [--assume-down n1,n2]
         [--path P --destination D [--destination-node N]] [--dry-run]
       engine restore --repository URL [--password-file F] --workload NAME --print-definition

Restores a workload onto the cluster through its agents with nothing but the
repository: no catalog, no Terraform state. The recovery points are read from
the repository itself and the restore is the engine's own restore job: the
workload is found and stopped where it runs, the recovery point is inspected
before anything is written, the data is staged and swapped in, and the
workload is started on the chosen node only.
`

type restoreFlags struct {
	repo                          repoFlags
	workload, nodes, tokenFile    string
	caFile, certFile, keyFile     string
	insecurePlaintext             bool
	node, before, recoveryPoint   string
	assumeDown, cluster, verify   string
	paths, destination, destNode  string
	dryRun, printDefinition, stop bool
	timeout                       time.Duration
}

// RunRestore runs `engine restore`.
func RunRestore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, restoreUsage+"\nflags:\n"); fs.PrintDefaults() }
	var f restoreFlags
	f.repo.register(fs)
	fs.StringVar(&f.repo.name, "repository-name", "", "the repository block name in the agents' config (default: the only one they have)")
	fs.StringVar(&f.workload, "workload", "", "the workload to restore (required)")
	fs.StringVar(&f.nodes, "nodes", "", "the cluster's agents: `node-1=https://HOST:PORT,...` (all of them; a dead one goes in --assume-down)")
	fs.StringVar(&f.tokenFile, "token-file", "", "the agents' bearer token (`FILE`)")
	fs.StringVar(&f.caFile, "ca-file", "", "CA certificate(s) that verify the agents' TLS certificates")
	fs.StringVar(&f.certFile, "client-cert-file", "", "client certificate, for agents that require mutual TLS")
	fs.StringVar(&f.keyFile, "client-key-file", "", "its key")
	fs.BoolVar(&f.insecurePlaintext, "insecure-plaintext", false, "allow http:// agents on other hosts (the token crosses the network in clear text)")
	fs.StringVar(&f.node, "node", "", "restore and start the workload on this node (default: where it runs, else the node with the most free resources)")
	fs.StringVar(&f.before, "before", "", "the newest recovery point taken before `TIME` (RFC 3339, e.g. 2026-12-03T10:00:00Z)")
	fs.StringVar(&f.recoveryPoint, "recovery-point", "", "this recovery point (id or unique prefix of 8+ digits; default: the latest)")
	fs.StringVar(&f.assumeDown, "assume-down", "", "nodes you confirm are down (powered off or fenced): `n1,n2`")
	fs.StringVar(&f.cluster, "cluster", "", "the cluster the recovery points were taken in (default: the only one the repository has for the workload)")
	fs.StringVar(&f.verify, "verify", api.VerifyFull, "integrity inspection before anything is written: full, metadata or none")
	fs.StringVar(&f.paths, "path", "", "file-level restore: only these paths (comma-separated, relative to the shared volume)")
	fs.StringVar(&f.destination, "destination", "", "with --path: write under this directory (relative to the shared volume) instead of in place")
	fs.StringVar(&f.destNode, "destination-node", "", "with --destination: the node that writes it")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the plan and change nothing")
	fs.BoolVar(&f.printDefinition, "print-definition", false, "print the workload's definition the recovery point recorded, as an agent config block, and exit")
	fs.BoolVar(&f.stop, "no-start", false, "leave the workload stopped after a whole-workload restore")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		return exit(stderr, "restore", usageErrorf("unexpected arguments %q", fs.Args()))
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if f.printDefinition {
		return exit(stderr, "restore", printDefinition(ctx, f, stdout))
	}
	return exit(stderr, "restore", breakGlass(ctx, f, stdout, stderr))
}

func (f restoreFlags) pointChoice() (string, time.Time, error) {
	if f.before != "" && f.recoveryPoint != "" {
		return "", time.Time{}, usageErrorf("--before and --recovery-point exclude each other: give one")
	}
	if f.before != "" {
		t, err := time.Parse(time.RFC3339, f.before)
		if err != nil {
			return "", time.Time{}, usageErrorf("--before %q: give an RFC 3339 time such as 2026-12-03T10:00:00Z: %v", f.before, err)
		}
		return "", t, nil
	}
	if f.recoveryPoint != "" {
		return f.recoveryPoint, time.Time{}, nil
	}
	return "latest", time.Time{}, nil
}

// indexed registers the repository in eng's (empty, in-memory) catalog,
// indexes its recovery points and returns the cluster the workload's
// points belong to.
func indexed(ctx context.Context, eng *engine.Engine, f restoreFlags, repoName string) (string, error) {
	r, err := f.repo.catalogRepository(repoName)
	if err != nil {
		return "", err
	}
	if _, err := eng.RegisterRepository(ctx, r); err != nil {
		return "", err
	}
	if _, err := eng.RebuildIndex(ctx, repoName, f.cluster); err != nil {
		return "", err
	}
	points, err := eng.Store().RecoveryPoints(ctx, catalog.RecoveryPointFilter{Workload: f.workload, Cluster: f.cluster, Repository: repoName})
	if err != nil {
		return "", err
	}
	clusters := map[string]bool{}
	for _, p := range points {
		clusters[p.Cluster] = true
	}
	switch len(clusters) {
	case 0:
		if f.cluster != "" {
			return "", fmt.Errorf("the repository holds no recovery point of workload %q in cluster %q", f.workload, f.cluster)
		}
		return "", fmt.Errorf("the repository holds no recovery point of workload %q (check the name and the repository)", f.workload)
	case 1:
		for c := range clusters {
			return c, nil
		}
	}
	names := make([]string, 0, len(clusters))
	for c := range clusters {
		names = append(names, c)
	}
	sort.Strings(names)
	return "", usageErrorf("workload %q has recovery points of several clusters (%s): name one with --cluster", f.workload, strings.Join(names, ", "))
}

func printDefinition(ctx context.Context, f restoreFlags, stdout io.Writer) error {
	if f.workload == "" {
		return usageErrorf("--workload is required")
	}
	pick, before, err := f.pointChoice()
	if err != nil {
		return err
	}
	name := f.repo.name
	if name == "" {
		name = "repository"
	}
	eng, err := engine.New(engine.Options{Store: memstore.New(), Owner: "break-glass", Dial: noAgents})
	if err != nil {
		return err
	}
	cluster, err := indexed(ctx, eng, f, name)
	if err != nil {
		return err
	}
	rp, err := eng.FindRecoveryPoint(ctx, name, cluster, f.workload, pick, before)
	if err != nil {
		return err
	}
	def, ok, err := eng.RecordedDefinition(ctx, name, rp)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("recovery point %s of %s holds no workload definition (taken by an agent older than this feature)", rp.ID, f.workload)
	}
	fmt.Fprintf(stdout, "# workload %s as node %s had it when recovery point %s was taken (%s)\n",
		f.workload, rp.Node, rp.ID, rp.CreatedAt.UTC().Format(time.RFC3339))
	fmt.Fprint(stdout, DefinitionHCL(def))
	return nil
}

func breakGlass(ctx context.Context, f restoreFlags, stdout, stderr io.Writer) error {
	if f.workload == "" || f.nodes == "" || f.tokenFile == "" {
		return usageErrorf("--workload, --nodes and --token-file are required (see --help)")
	}
	pick, before, err := f.pointChoice()
	if err != nil {
		return err
	}
	nodes, order, err := parseNodes(f.nodes)
	if err != nil {
		return err
	}
	var assumeDown []string
	for _, n := range strings.Split(f.assumeDown, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if _, ok := nodes[n]; !ok {
			return usageErrorf("--assume-down %q is not one of --nodes (%s)", n, strings.Join(order, ", "))
		}
		assumeDown = append(assumeDown, n)
	}
	if f.node != "" {
		if _, ok := nodes[f.node]; !ok {
			return usageErrorf("--node %q is not one of --nodes (%s)", f.node, strings.Join(order, ", "))
		}
	}
	tok, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return fmt.Errorf("reading the agents' token file: %w", err)
	}
	dialOpts := engine.HTTPDialerOptions{Token: strings.TrimSpace(string(tok)), InsecurePlaintext: f.insecurePlaintext, RequestTimeout: 30 * time.Second}
	if f.caFile != "" || f.certFile != "" {
		if dialOpts.TLSConfig, err = engine.LoadAgentTLS(f.caFile, f.certFile, f.keyFile); err != nil {
			return err
		}
	}
	dial := engine.HTTPDialer(dialOpts)
	store := memstore.New()
	eng, err := engine.New(engine.Options{Store: store, Dial: dial, Owner: "break-glass", ProbeTimeout: 15 * time.Second})
	if err != nil {
		return err
	}
	facts, err := firstFacts(ctx, dial, nodes, order)
	if err != nil {
		return err
	}
	repoName := f.repo.name
	if repoName == "" {
		if len(facts.Repositories) != 1 {
			var names []string
			for _, r := range facts.Repositories {
				names = append(names, r.Name)
			}
			return usageErrorf("node %s's agent has %d repository blocks (%s): name the one at %s with --repository-name", facts.Name, len(names), list(names), f.repo.url)
		}
		repoName = facts.Repositories[0].Name
	}
	cluster, err := indexed(ctx, eng, f, repoName)
	if err != nil {
		return err
	}
	var cnodes []catalog.Node
	for i, n := range order {
		cnodes = append(cnodes, catalog.Node{Name: n, Endpoint: nodes[n], Position: i})
	}
	// Recorded directly, not through RegisterCluster: a node the operator
	// confirms dead must not block the restore; the plan probes every node
	// and applies the assume-down rules itself.
	now := time.Now().UTC()
	if err := store.PutCluster(ctx, catalog.Cluster{Name: cluster, SharedVolume: facts.SharedVolume, SharedVolumeID: facts.SharedVolumeID,
		MasterPolicy: engine.MasterFixed, MasterNode: order[0], JoinOrder: engine.JoinParallel, Nodes: cnodes, CreatedAt: now, UpdatedAt: now}); err != nil {
		return err
	}
	w := engine.RestoreWorkload{Name: f.workload, RecoveryPoint: pick, Before: before, Target: engine.TargetActiveNode, OnConflict: engine.ConflictMigrate}
	if !before.IsZero() {
		w.RecoveryPoint = ""
	}
	if f.node != "" {
		w.Target, w.Node = engine.TargetNode, f.node
	}
	if f.paths != "" {
		for _, p := range strings.Split(f.paths, ",") {
			if p = strings.TrimSpace(p); p != "" {
				w.Files = append(w.Files, p)
			}
		}
		w.DestinationPath, w.DestinationNode = f.destination, f.destNode
	} else if f.destination != "" || f.destNode != "" {
		return usageErrorf("--destination and --destination-node go with --path (a file-level restore)")
	}
	spec := engine.RestoreSpec{Cluster: cluster, Repository: repoName, Verify: f.verify, ActivateAfter: !f.stop && len(w.Files) == 0,
		AssumeDown: assumeDown, Workloads: []engine.RestoreWorkload{w}}
	if err := engine.ValidateRestoreSpec(spec); err != nil {
		return usageError{err}
	}
	plan, err := eng.PlanRestore(ctx, spec)
	if err != nil {
		return fmt.Errorf("planning the restore: %w", err)
	}
	printPlan(stdout, cluster, repoName, plan)
	if f.dryRun {
		fmt.Fprintln(stdout, "dry run: nothing was changed")
		return nil
	}
	rep, err := eng.RunRestore(ctx, spec, &plan, engine.RestoreHooks{})
	for _, st := range rep.Steps {
		fmt.Fprintf(stdout, "%s: %s on node %s (recovery point %s, %d bytes written, started: %v)%s\n", st.Workload, st.Outcome, st.Node,
			engine.ShortPoint(st.SnapshotID), st.BytesWritten, st.Activated, errSuffix(st.Error))
	}
	if err != nil {
		return fmt.Errorf("restore of %s: %w", f.workload, err)
	}
	fmt.Fprintf(stdout, "restore %s succeeded\n", rep.Operation.ID)
	return nil
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// parseNodes reads "n1=URL,n2=URL" into names and normalised endpoints.
func parseNodes(s string) (map[string]string, []string, error) {
	nodes := map[string]string{}
	var order []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, url, ok := strings.Cut(part, "=")
		if !ok || name == "" || url == "" {
			return nil, nil, usageErrorf("--nodes %q: give NAME=URL pairs separated by commas, e.g. node-1=https://10.0.0.11:7420", part)
		}
		if err := engine.ValidateName("nodes", name); err != nil {
			return nil, nil, usageError{err}
		}
		ep, err := engine.NormalizeEndpoint(url)
		if err != nil {
			return nil, nil, usageErrorf("--nodes %s: %v", name, err)
		}
		if _, dup := nodes[name]; dup {
			return nil, nil, usageErrorf("--nodes lists %s twice", name)
		}
		nodes[name] = ep
		order = append(order, name)
	}
	if len(order) == 0 {
		return nil, nil, usageErrorf("--nodes is empty")
	}
	return nodes, order, nil
}

// firstFacts asks the nodes in order for their facts and returns the first
// answer whose node name is the one given (the shared volume and the
// agents' repository names come from it).
func firstFacts(ctx context.Context, dial engine.Dialer, nodes map[string]string, order []string) (api.NodeFacts, error) {
	var errs []error
	for _, n := range order {
		cl, err := dial(n, nodes[n])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		facts, err := cl.Node(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n, err))
			continue
		}
		if facts.Name != n {
			return facts, fmt.Errorf("the agent at %s is node %q, not %q: check --nodes", nodes[n], facts.Name, n)
		}
		return facts, nil
	}
	return api.NodeFacts{}, fmt.Errorf("no agent answered: %w", errors.Join(errs...))
}

func printPlan(w io.Writer, cluster, repo string, plan engine.RestorePlan) {
	fmt.Fprintf(w, "restore plan (cluster %s, repository %s):\n", cluster, repo)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tRECOVERY POINT\tTAKEN\tRESTORE ON\tSTOP ON\tMIGRATE\tSTART AFTER\tFILE-LEVEL")
	for _, s := range plan.Steps {
		stop := s.DeactivateOn
		if stop == "" {
			stop = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%v\t%v\n", s.Workload, engine.ShortPoint(s.RecoveryPoint),
			s.RecoveryPointTime.UTC().Format(time.RFC3339), s.Node, stop, s.Migrate, s.Activate, s.FileLevel)
	}
	_ = tw.Flush()
	for _, s := range plan.Steps {
		for _, n := range s.Notes {
			fmt.Fprintf(w, "warning: %s\n", n)
		}
	}
}

// DefinitionHCL writes a recorded workload definition as an agent config
// block. Environment values were never recorded: their names are listed
// for the operator to set again.
func DefinitionHCL(d api.WorkloadDefinition) string {
	var b strings.Builder
	fmt.Fprintf(&b, "workload %s {\n  driver = %s\n  paths  = %s\n", hclString(d.Name), hclString(d.Driver), hclList(d.Paths))
	attr := func(name, v string) {
		if v != "" {
			fmt.Fprintf(&b, "    %s = %s\n", name, v)
		}
	}
	str := func(name, v string) {
		if v != "" {
			attr(name, hclString(v))
		}
	}
	if e := d.Exec; e != nil {
		b.WriteString("  exec {\n")
		names := make([]string, 0, len(e.Commands))
		for k := range e.Commands {
			names = append(names, k)
		}
		known := []string{"status", "start", "stop", "quiesce", "thaw", "pause", "resume"}
		sort.Slice(names, func(i, j int) bool {
			a, b := slices.Index(known, names[i]), slices.Index(known, names[j])
			if a != b {
				return a < b
			}
			return names[i] < names[j]
		})
		for _, k := range names {
			attr(k, hclList(e.Commands[k]))
		}
		str("timeout", e.Timeout)
		if len(e.Timeouts) > 0 {
			var parts []string
			for _, k := range sortedMapKeys(e.Timeouts) {
				parts = append(parts, k+" = "+hclString(e.Timeouts[k]))
			}
			attr("timeouts", "{ "+strings.Join(parts, ", ")+" }")
		}
		str("user", e.User)
		if len(e.EnvNames) > 0 {
			fmt.Fprintf(&b, "    # env: %s (values were not recorded; set them again)\n", strings.Join(e.EnvNames, ", "))
		}
		b.WriteString("  }\n")
	}
	if p := d.Postgres; p != nil {
		b.WriteString("  postgresql {\n")
		attr("port", fmt.Sprint(p.Port))
		str("bin_dir", p.BinDir)
		str("listen_addresses", p.ListenAddresses)
		str("user", p.User)
		str("database_user", p.DatabaseUser)
		str("timeout", p.Timeout)
		b.WriteString("  }\n")
	}
	if q := d.QEMU; q != nil {
		b.WriteString("  qemu {\n")
		attr("disks", hclList(q.Disks))
		str("binary", q.Binary)
		str("memory", q.Memory)
		if q.CPUs > 0 {
			attr("cpus", fmt.Sprint(q.CPUs))
		}
		str("accel", q.Accel)
		if len(q.ExtraArgs) > 0 {
			attr("extra_args", hclList(q.ExtraArgs))
		}
		str("shutdown_timeout", q.ShutdownTimeout)
		str("timeout", q.Timeout)
		str("user", q.User)
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func sortedMapKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hclString quotes s for HCL: Go's escapes, plus template sequences
// escaped so that "${" stays literal.
func hclString(s string) string {
	q := fmt.Sprintf("%q", s)
	q = strings.ReplaceAll(q, "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

func hclList(items []string) string {
	parts := make([]string, len(items))
	for i, s := range items {
		parts[i] = hclString(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
