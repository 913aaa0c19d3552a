// Package repocli is the thin command line over package repository, wired
// as `terraform-provider-clusterguard engine repo ...`. It parses flags,
// opens the backend named by --repo (a directory or s3://bucket/prefix) and
// calls one repository operation; all behaviour lives in the repository.
package repocli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/location"
)

// Environment variables read by the CLI.
const (
	EnvRepository  = "CLUSTERGUARD_REPOSITORY"
	EnvPassword    = "CLUSTERGUARD_PASSWORD"
	EnvNewPassword = "CLUSTERGUARD_NEW_PASSWORD"
	EnvS3Endpoint  = "CLUSTERGUARD_S3_ENDPOINT"
	EnvS3Region    = "CLUSTERGUARD_S3_REGION"
)

const usage = `usage: repo [global flags] COMMAND [flags] [args]

commands:
  init                                  create a repository (the only command that creates one;
                                        new passwords need at least 12 characters)
  backup [flags] PATH...                back up directories or files
  snapshots [--json] [filters]          list snapshots, newest first
  ls SNAPSHOT [PATH] [--json]           list a snapshot's files
  restore SNAPSHOT --target DIR [--include PATH]...
  cat SNAPSHOT PATH                     write one file to stdout
  verify [--read-data] [--json]         check the repository
  forget --keep-last N ... [--prune]    remove snapshots by retention policy
  prune [--max-unused F] [--dry-run]    delete unreferenced data
  key list|add|remove|passwd            manage passwords
  rebuild-index                         rebuild the index from the packs
  copy --to URL [filters] [SNAPSHOT...] copy snapshots to another repository (only missing chunks;
                                        re-encrypted for the target; resumable; verified)
  unlock [--all]                        remove stale locks (not refreshed for 5 minutes, or held by a
                                        process of this host that is gone), or with --all every lock

global flags (accepted before or after the command):
  --repo URL            directory path or s3://bucket/prefix (env ` + EnvRepository + `)
  --password-file FILE  read the password from FILE (else env ` + EnvPassword + `)
  --s3-endpoint HOST    S3 endpoint (env ` + EnvS3Endpoint + `); credentials from AWS_* env
  --s3-region REGION    (env ` + EnvS3Region + `)
  --s3-path-style       path-style S3 requests
  --s3-insecure         plain HTTP to the S3 endpoint
`

// Run executes one CLI invocation and returns the process exit code:
// 0 success, 1 failure (including damage found by verify), 2 bad usage.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{ctx: ctx, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		_, _ = fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	// Global flags may precede the command.
	var cmd string
	var rest []string
	valued := map[string]bool{"repo": true, "password-file": true, "s3-endpoint": true, "s3-region": true}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			cmd, rest = a, append(append([]string{}, args[:i]...), args[i+1:]...)
			break
		}
		if name := strings.TrimLeft(a, "-"); valued[name] && !strings.Contains(name, "=") {
			i++ // skip the flag's value
		}
	}
	run, ok := map[string]func([]string) error{
		"init": c.init, "backup": c.backup, "snapshots": c.snapshots, "ls": c.ls, "restore": c.restore,
		"cat": c.cat, "verify": c.verify, "forget": c.forget, "prune": c.prune, "key": c.key,
		"rebuild-index": c.rebuildIndex, "unlock": c.unlock, "copy": c.copyCmd,
	}[cmd]
	if !ok {
		_, _ = fmt.Fprintf(stderr, "repo: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if path := os.Getenv(CPUProfileEnv); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "repo: %s: %v\n", CPUProfileEnv, err)
			return 1
		}
		defer stop()
	}
	err := run(rest)
	if err == nil && c.outErr != nil {
		err = fmt.Errorf("write output: %w", c.outErr)
	}
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		_, _ = fmt.Fprintf(stderr, "repo %s: %v\n", cmd, err)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	_, _ = fmt.Fprintf(stderr, "repo %s: %v\n", cmd, err)
	return 1
}

type usageError struct{ error }

func usageErrorf(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

type cli struct {
	ctx            context.Context
	stdout, stderr io.Writer

	outErr error // first failure writing to stdout

	repoURL, passwordFile, s3Endpoint, s3Region string
	s3PathStyle, s3Insecure                     bool
}

// printf writes to stdout, remembering the first failure (a closed pipe)
// so Run can report it instead of exiting 0 with output lost.
func (c *cli) printf(format string, args ...any) {
	if _, err := fmt.Fprintf(c.stdout, format, args...); err != nil && c.outErr == nil {
		c.outErr = err
	}
}

func (c *cli) println(s string) { c.printf("%s\n", s) }

// warnf writes to stderr; there is nowhere left to report a failure.
func (c *cli) warnf(format string, args ...any) { _, _ = fmt.Fprintf(c.stderr, format, args...) }

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// flags returns a flag set with the global flags registered.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.StringVar(&c.repoURL, "repo", os.Getenv(EnvRepository), "repository `URL`: a directory or s3://bucket/prefix")
	fs.StringVar(&c.passwordFile, "password-file", "", "read the password from `FILE`")
	fs.StringVar(&c.s3Endpoint, "s3-endpoint", os.Getenv(EnvS3Endpoint), "S3 endpoint")
	fs.StringVar(&c.s3Region, "s3-region", os.Getenv(EnvS3Region), "S3 region")
	fs.BoolVar(&c.s3PathStyle, "s3-path-style", false, "path-style S3 requests")
	fs.BoolVar(&c.s3Insecure, "s3-insecure", false, "plain HTTP to the S3 endpoint")
	return fs
}

// parse parses flags interleaved with positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (c *cli) config() (location.Config, error) {
	if c.repoURL == "" {
		return location.Config{}, usageErrorf("no repository given: use --repo or set %s", EnvRepository)
	}
	return location.Config{URL: c.repoURL, Endpoint: c.s3Endpoint, Region: c.s3Region, PathStyle: c.s3PathStyle, Insecure: c.s3Insecure}, nil
}

func readPasswordFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (c *cli) password() (string, error) {
	if c.passwordFile != "" {
		return readPasswordFile(c.passwordFile)
	}
	if pw := os.Getenv(EnvPassword); pw != "" {
		return pw, nil
	}
	return "", usageErrorf("no password given: use --password-file or set %s", EnvPassword)
}

// open opens the repository named by the global flags.
func (c *cli) open() (*repository.Repository, func(), error) {
	cfg, err := c.config()
	if err != nil {
		return nil, nil, err
	}
	pw, err := c.password()
	if err != nil {
		return nil, nil, err
	}
	be, err := location.Open(c.ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	r, err := repository.Open(c.ctx, be, pw, repository.OpenOptions{})
	if err != nil {
		_ = be.Close() // the open error is the one to report
		return nil, nil, err
	}
	return r, func() { _ = r.Close(); _ = be.Close() }, nil
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *cli) init(args []string) error {
	fs := c.flags("init")
	kdf := repository.DefaultKDF
	kdfMem := int64(kdf.MemoryKiB) << 10
	var kdfTime uint
	fs.Var(sizeFlag{&kdfMem}, "kdf-memory", fmt.Sprintf("memory for the argon2id password KDF (default %dM)", kdf.MemoryKiB>>10))
	fs.UintVar(&kdfTime, "kdf-time", uint(kdf.Time), "passes of the argon2id password KDF")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	// Range-check before narrowing: a huge value must not wrap around to a
	// small, weak KDF setting that then passes validation.
	if kdfMem < 0 || kdfMem>>10 > math.MaxUint32 || kdfTime > math.MaxUint32 {
		return usageErrorf("--kdf-memory %d or --kdf-time %d is out of range", kdfMem, kdfTime)
	}
	kdf.MemoryKiB, kdf.Time = uint32(kdfMem>>10), uint32(kdfTime)
	cfg, err := c.config()
	if err != nil {
		return err
	}
	pw, err := c.password()
	if err != nil {
		return err
	}
	if err := repository.CheckNewPassword(pw); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	be, err := location.Create(c.ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = be.Close() }()
	r, err := repository.Init(c.ctx, be, pw, repository.InitOptions{KDF: kdf})
	if err != nil {
		return err
	}
	defer func() { _ = r.Close() }()
	c.printf("created repository %s at %s\n", r.ID(), be.Location())
	return nil
}

// parseSize parses a byte count with an optional K, M, G or T suffix
// (binary multiples).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s, "iB"), "B")))
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", s, err)
	}
	return v * mult, nil
}

type sizeFlag struct{ v *int64 }

func (f sizeFlag) String() string {
	if f.v == nil {
		return "0"
	}
	return strconv.FormatInt(*f.v, 10)
}
func (f sizeFlag) Set(s string) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	*f.v = v
	return nil
}

// backupRoot turns the PATH arguments into a root and paths under it: one
// directory is the root itself; anything else is recorded relative to /.
func backupRoot(root string, paths []string) (string, []string, error) {
	if root != "" {
		return root, paths, nil
	}
	if len(paths) == 1 {
		if fi, err := os.Stat(paths[0]); err == nil && fi.IsDir() {
			return paths[0], nil, nil
		}
	}
	var rel []string
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", nil, err
		}
		rel = append(rel, strings.TrimPrefix(abs, string(filepath.Separator)))
	}
	return string(filepath.Separator), rel, nil
}

func (c *cli) backup(args []string) error {
	fs := c.flags("backup")
	var (
		meta                       repository.SnapshotMeta
		tags, labels               multiFlag
		consistency, rangesFile    string
		root, parent               string
		fixedThreshold, fixedBlock int64
		jsonOut                    bool
		concurrency                int
		secureCompare              bool
	)
	fs.StringVar(&meta.Workload, "workload", "", "workload `name`")
	fs.StringVar(&meta.Node, "node", "", "node the data was taken on (informational)")
	fs.StringVar(&meta.Cluster, "cluster", "", "cluster name")
	fs.StringVar(&meta.Group, "group", "", "protection group")
	fs.StringVar(&meta.RunID, "run-id", "", "backup run id")
	fs.StringVar(&consistency, "consistency", "", "application or crash")
	fs.Var(&tags, "tag", "tag (repeatable)")
	fs.Var(&labels, "label", "label key=value (repeatable)")
	fs.StringVar(&rangesFile, "changed-ranges", "", "JSON `FILE` mapping paths (relative to the root) to [{\"offset\":N,\"length\":N},...] changed since the parent")
	fs.StringVar(&root, "root", "", "root `DIR` the paths are relative to (default: the single directory given, else /)")
	fs.StringVar(&parent, "parent", "", "parent snapshot id, or none (default: latest of the same workload/cluster/group)")
	fs.Var(sizeFlag{&fixedThreshold}, "fixed-threshold", "files at least this `SIZE` use fixed-size chunking (default 64M; -1 never)")
	fs.Var(sizeFlag{&fixedBlock}, "fixed-block", "block `SIZE` for fixed-size chunking (default 256K)")
	fs.IntVar(&concurrency, "concurrency", 0, "worker count (default: number of CPUs)")
	fs.BoolVar(&secureCompare, "secure-block-compare", false, "without changed ranges, compare blocks with the parent's by keyed BLAKE3 content id, not the faster XXH3 hash (for files whose writers are not trusted)")
	fs.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	paths, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 && root == "" {
		return usageErrorf("give at least one PATH to back up")
	}
	meta.Consistency = repository.Consistency(consistency)
	meta.Tags = tags
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return usageErrorf("label %q is not key=value", l)
		}
		if meta.Labels == nil {
			meta.Labels = map[string]string{}
		}
		meta.Labels[k] = v
	}
	var ranges map[string][]repository.Range
	if rangesFile != "" {
		b, err := os.ReadFile(rangesFile)
		if err != nil {
			return fmt.Errorf("read changed ranges: %w", err)
		}
		if err := json.Unmarshal(b, &ranges); err != nil {
			return fmt.Errorf("changed ranges file %s: %w (want {\"path\": [{\"offset\": N, \"length\": N}]})", rangesFile, err)
		}
	}
	root, rel, err := backupRoot(root, paths)
	if err != nil {
		return err
	}
	r, closeRepo, err := c.open()
	if err != nil {
		return err
	}
	defer closeRepo()
	snap, st, err := r.Backup(c.ctx, repository.BackupOptions{
		Root: root, Paths: rel, Meta: meta, Parent: parent, ChangedRanges: ranges,
		FixedSizeThreshold: fixedThreshold, FixedBlockSize: int(fixedBlock), Concurrency: concurrency,
		SecureBlockCompare: secureCompare,
	})
	if err != nil {
		return err
	}
	if jsonOut {
		return c.printJSON(struct {
			ID    string                 `json:"id"`
			Stats repository.BackupStats `json:"stats"`
		}{snap.ID, st})
	}
	c.printf("snapshot %s saved\n", snap.ID)
	if st.Parent != "" {
		c.printf("parent:      %s\n", st.Parent)
	}
	c.printf("files:       %d (new %d, changed %d, unchanged %d), %d dirs, %d symlinks\n",
		st.Files, st.FilesNew, st.FilesChanged, st.FilesUnchanged, st.Dirs, st.Symlinks)
	c.printf("bytes:       %s total, %s read, %s added\n", human(st.Bytes), human(st.BytesRead), human(st.BytesAdded))
	if st.BlocksReused > 0 {
		c.printf("blocks:      %d of changed files equal to the parent's, taken from it\n", st.BlocksReused)
	}
	secs := st.Duration.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(st.BytesRead) / secs / (1 << 20)
	}
	c.printf("duration:    %s (%.1f MiB/s read)\n", st.Duration.Round(time.Millisecond), rate)
	for _, s := range st.Skipped {
		c.warnf("skipped: %s\n", s)
	}
	return nil
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// filterFlags registers snapshot filter flags.
func filterFlags(fs *flag.FlagSet, f *repository.SnapshotFilter, tags *multiFlag) {
	fs.StringVar(&f.Workload, "workload", "", "only this workload")
	fs.StringVar(&f.Group, "group", "", "only this protection group")
	fs.StringVar(&f.Cluster, "cluster", "", "only this cluster")
	fs.StringVar(&f.Node, "node", "", "only this node")
	fs.Var(tags, "tag", "only snapshots with this tag (repeatable)")
}

func (c *cli) snapshots(args []string) error {
	fs := c.flags("snapshots")
	var f repository.SnapshotFilter
	var tags multiFlag
	var jsonOut bool
	filterFlags(fs, &f, &tags)
	fs.BoolVar(&jsonOut, "json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	f.Tags = tags
	r, closeRepo, err := c.open()
	if err != nil {
		return err
	}
	defer closeRepo()
	snaps, err := r.Snapshots(c.ctx, f)
	if err != nil {
		return err
	}
	if jsonOut {
		type out struct {
			ID string `json:"id"`
			repository.Snapshot
		}
		list := make([]out, 0, len(snaps))
		for _, s := range snaps {
			list = append(list, out{s.ID, s})
		}
		return c.printJSON(list)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	// tabwriter buffers; a write error surfaces from Flush.
	_, _ = fmt.Fprintln(tw, "ID\tTIME\tWORKLOAD\tGROUP\tCLUSTER\tNODE\tCONSISTENCY\tTAGS\tSIZE")
	for _, s := range snaps {
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ShortID(), s.Time.Local().Format("2006-01-02 15:04:05"),
			s.Workload, s.Group, s.Cluster, s.Node, s.Consistency, strings.Join(s.Tags, ","), human(s.Summary.Bytes))
	}
	return tw.Flush()
}

func (c *cli) ls(args []string) error {
	fs := c.flags("ls")
	var jsonOut bool
	fs.BoolVar(&jsonOut, "json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageErrorf("want SNAPSHOT [PATH]")
	}
	prefix := ""
	if len(pos) == 2 {
		prefix = pos[1]
	}
	r, closeRepo, err := c.open()
	if err != nil {
		return err
	}
	defer closeRepo()
	files, err := r.Files(c.ctx, pos[0], prefix)
	if err != nil {
		return err
	}
	if jsonOut {
		return c.printJSON(files)
	}
	for _, f := range files {
		line := fmt.Sprintf("%s %10d %s %s", f.Mode, f.Size, f.ModTime.Local().Format("2006-01-02 15:04:05"), f.Path)
		if f.Target != "" {
			line += " -> " + f.Target
		}
		c.println(line)
	}
	return nil
}

func (c *cli) restore(args []string) error {
	fs := c.flags("restore")
	var target string
	var include multiFlag
	var concurrency int
	var keepDamaged, keepSetuid bool
	fs.StringVar(&target, "target", "", "directory to restore into")
	fs.Var(&include, "include", "restore only this snapshot path (repeatable)")
	fs.IntVar(&concurrency, "concurrency", 0, "worker count")
	fs.BoolVar(&keepDamaged, "keep-damaged", false, "keep partially restored damaged files")
	fs.BoolVar(&keepSetuid, "keep-setuid", false, "keep setuid and setgid bits of restored files (dropped by default)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || target == "" {
		return usageErrorf("want SNAPSHOT --target DIR")
	}
	r, closeRepo, err := c.open()
	if err != nil {
		return err
	}
	defer closeRepo()
	st, err := r.Restore(c.ctx, pos[0], repository.RestoreOptions{Target: target, Include: include, Concurrency: concurrency, KeepDamaged: keepDamaged, KeepSetuid: keepSetuid})
	c.printf("restored %d files, %d dirs, %d symlinks, %s in %s\n", st.Files, st.Dirs, st.Symlinks, human(st.Bytes), st.Duration.Round(time.Millisecond))
	return err
}

func (c *cli) cat(args []string) error {
	fs := c.flags("cat")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageErrorf("want SNAPSHOT PATH")
	}
	r, closeRepo, err := c.open()
	if err != nil {
		return err
	}
	defer closeRepo()
	rc, _, err := r.OpenFile(c.ctx, pos[0], pos[1])
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	_, err = io.Copy(c.stdout, rc)
	return err
}

func (c *cli) verify(args []string) error {
	fs := c.flags("verify")
	var readData, jsonOut bool
	fs.BoolVar(&readData, "read-data", false, "read and authenticate all data")
	fs.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	r, closeRepo, err := c.open()
	if err != nil {
		return err
	}
	defer closeRepo()
	rep, err := r.Verify(c.ctx, repository.VerifyOptions{ReadData: readData})
	if err != nil {
		return err
	}
	if jsonOut {
		if err := c.printJSON(rep); err != nil {
			return err
		}
	} else {
		c.println(rep.String())
	}
	if !rep.OK() {
		return fmt.Errorf("%d problems found", len(rep.Problems))
	}
	return nil
}

func (c *cli) forget(args []string) error {
	fs := c.flags("forget")
	var p repository.RetentionPolicy
	var f repository.SnapshotFilter
	var tags, keepTags multiFlag
	var dryRun, prune, jsonOut bool
	fs.IntVar(&p.Last, "keep-last", 0, "keep the last N snapshots")
	fs.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest of each of the last N hours")
	fs.IntVar(&p.Daily, "keep-daily", 0, "... N days")
	fs.IntVar(&p.Weekly, "keep-weekly", 0, "... N weeks")
	fs.IntVar(&p.Monthly, "keep-monthly", 0, "... N months")
	fs.IntVar(&p.Yearly, "keep-yearly", 0, "... N years")
	fs.DurationVar(&p.Within, "keep-within", 0, "keep everything newer than this `DURATION` (e.g. 240h)")
	fs.Var(&keepTags, "keep-tag", "keep snapshots with this tag (repeatable)")
	filterFlags(fs, &f, &tags)
	fs.BoolVar(&dryRun, "dry-run", false, "only show what would be removed")
	fs.BoolVar(&prune, "prune", false, "prune after forgetting")
	fs.BoolVar(&jsonOut, "json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	p.Tags, f.Tags = keepTags, tags
	if p.Empty() {
		return usageErrorf("give at least one --keep-* rule")
	}
	r, closeRepo, err := c.open()
	if err != nil {
		return err
	}
	defer closeRepo()
	res, err := r.Forget(c.ctx, p, f, time.Now(), dryRun)
	if err != nil {
		return err
	}
	if jsonOut {
		if err := c.printJSON(res); err != nil {
			return err
		}
	} else {
		for _, g := range res.Groups {
			c.printf("workload %q cluster %q group %q: keep %d, remove %d\n", g.Workload, g.Cluster, g.Group, len(g.Keep), len(g.Remove))
			for _, s := range g.Keep {
				c.printf("  keep   %s %s (%s)\n", s.ShortID(), s.Time.Local().Format("2006-01-02 15:04:05"), strings.Join(g.Reasons[s.ID], ", "))
			}
			for _, s := range g.Remove {
				c.printf("  remove %s %s\n", s.ShortID(), s.Time.Local().Format("2006-01-02 15:04:05"))
			}
		}
		if dryRun {
			c.println("dry run: nothing removed")
		}
	}
	if prune && !dryRun {
		return c.doPrune(r, repository.PruneOptions{})
	}
	return nil
}

func (c *cli) prune(args []string) error {
	fs := c.flags("prune")
	var o repository.PruneOptions
	fs.Float64Var(&o.MaxUnused, "max-unused", 0.5, "repack packs whose unused fraction exceeds this")
	fs.BoolVar(&o.DryRun, "dry-run", false, "only show what would be done")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	r, closeRepo, err := c.open()
	if err != nil {
		return err
	}
	defer closeRepo()
	return c.doPrune(r, o)
}

func (c *cli) doPrune(r *repository.Repository, o repository.PruneOptions) error {
	st, err := r.Prune(c.ctx, o)
	if err != nil {
		return err
	}
	verb := "deleted"
	if o.DryRun {
		verb = "would delete"
	}
	c.printf("%d snapshots keep %d blobs; %s %d packs, repacked %d into %d; %s freed (%s before)\n",
		st.Snapshots, st.UsedBlobs, verb, st.PacksDeleted, st.PacksRepacked, st.PacksWritten, human(st.BytesFreed), human(st.BytesBefore))
	return nil
}

func (c *cli) key(args []string) error {
	fs := c.flags("key")
	var newFile string
	fs.StringVar(&newFile, "new-password-file", "", "read the new password from `FILE` (else env "+EnvNewPassword+")")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("want list, add, remove or passwd")
	}
	newPassword := func() (string, error) {
		if newFile != "" {
			return readPasswordFile(newFile)
		}
		if pw := os.Getenv(EnvNewPassword); pw != "" {
			return pw, nil
		}
		return "", usageErrorf("no new password: use --new-password-file or set %s", EnvNewPassword)
	}
	r, closeRepo, err := c.open()
	if err != nil {
		return err
	}
	defer closeRepo()
	switch pos[0] {
	case "list":
		keys, err := r.Keys(c.ctx)
		if err != nil {
			return err
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].Created.Before(keys[j].Created) })
		for _, k := range keys {
			cur := " "
			if k.Current {
				cur = "*"
			}
			c.printf("%s %s %s %s\n", cur, k.ID[:8], k.Created.Local().Format("2006-01-02 15:04:05"), k.Hostname)
		}
		return nil
	case "add":
		pw, err := newPassword()
		if err != nil {
			return err
		}
		if err := repository.CheckNewPassword(pw); err != nil {
			return fmt.Errorf("key add: %w", err)
		}
		id, err := r.AddPassword(c.ctx, pw)
		if err != nil {
			return err
		}
		c.printf("added key %s\n", id[:8])
		return nil
	case "remove":
		// The password to remove is the "new" one; the repository is opened
		// with the regular password.
		pw, err := newPassword()
		if err != nil {
			return err
		}
		if err := r.RemovePassword(c.ctx, pw); err != nil {
			return err
		}
		c.println("removed")
		return nil
	case "passwd":
		pw, err := newPassword()
		if err != nil {
			return err
		}
		if err := repository.CheckNewPassword(pw); err != nil {
			return fmt.Errorf("key passwd: %w", err)
		}
		if err := r.ChangePassword(c.ctx, pw); err != nil {
			return err
		}
		c.println("password changed")
		return nil
	}
	return usageErrorf("unknown key command %q: want list, add, remove or passwd", pos[0])
}

func (c *cli) rebuildIndex(args []string) error {
	fs := c.flags("rebuild-index")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	r, closeRepo, err := c.open()
	if err != nil {
		return err
	}
	defer closeRepo()
	st, err := r.RebuildIndex(c.ctx)
	if err != nil {
		return err
	}
	c.printf("indexed %d blobs in %d packs\n", st.Blobs, st.Packs)
	for _, p := range st.Unreadable {
		c.warnf("unreadable pack (not indexed): %s\n", p)
	}
	return nil
}

func (c *cli) unlock(args []string) error {
	fs := c.flags("unlock")
	var all bool
	fs.BoolVar(&all, "all", false, "remove all locks, not only stale ones (only when no other process uses the repository)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	r, closeRepo, err := c.open()
	if err != nil {
		return err
	}
	defer closeRepo()
	n, err := r.RemoveLocks(c.ctx, all)
	if err != nil {
		return err
	}
	c.printf("removed %d locks\n", n)
	return nil
}

// CPUProfileEnv names a file to write a CPU profile of the command to (for
// go tool pprof), e.g. to see where a slow backup spends its time.
const CPUProfileEnv = "CLUSTERGUARD_CPUPROFILE"

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path) //nolint:gosec // G703: the operator names the profile file (CLUSTERGUARD_CPUPROFILE)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}
