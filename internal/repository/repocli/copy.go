package repocli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/location"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/s3"
)

// EnvCopyPassword is the target repository's password for `copy`.
const EnvCopyPassword = "CLUSTERGUARD_COPY_PASSWORD"

// copyCmd copies snapshots of the --repo (or --from) repository to the
// --to repository, sending only the chunks the target lacks.
func (c *cli) copyCmd(args []string) error {
	fs := c.flags("copy")
	var f repository.SnapshotFilter
	var tags multiFlag
	var from, to, toPasswordFile, toEndpoint, toRegion string
	var jsonOut, noVerify bool
	var lockMode string
	var lockDays int
	filterFlags(fs, &f, &tags)
	fs.StringVar(&from, "from", "", "source repository `URL` (same as --repo)")
	fs.StringVar(&to, "to", "", "target repository `URL`: a directory or s3://bucket/prefix")
	fs.StringVar(&toPasswordFile, "to-password-file", "", "read the target's password from `FILE` (else env "+EnvCopyPassword+")")
	fs.StringVar(&toEndpoint, "to-s3-endpoint", "", "S3 endpoint of the target (default: --s3-endpoint)")
	fs.StringVar(&toRegion, "to-s3-region", "", "S3 region of the target (default: --s3-region)")
	fs.StringVar(&lockMode, "to-object-lock-mode", "", "write the copies with S3 Object Lock retention: GOVERNANCE or COMPLIANCE (the bucket must have object locking)")
	fs.IntVar(&lockDays, "to-object-lock-days", 0, "retention of each copied object, in days (with --to-object-lock-mode)")
	fs.BoolVar(&noVerify, "no-verify", false, "do not read the copies back from the target")
	fs.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	ids, err := parse(fs, args)
	if err != nil {
		return err
	}
	f.Tags = tags
	if from != "" {
		c.repoURL = from
	}
	if to == "" {
		return usageErrorf("no target given: use --to URL")
	}
	toPassword := os.Getenv(EnvCopyPassword)
	if toPasswordFile != "" {
		if toPassword, err = readPasswordFile(toPasswordFile); err != nil {
			return err
		}
	}
	if toPassword == "" {
		return usageErrorf("no target password given: use --to-password-file or set %s", EnvCopyPassword)
	}
	src, closeSrc, err := c.open()
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer closeSrc()
	tcfg := location.Config{URL: to, Endpoint: c.s3Endpoint, Region: c.s3Region, PathStyle: c.s3PathStyle, Insecure: c.s3Insecure}
	if toEndpoint != "" {
		tcfg.Endpoint = toEndpoint
	}
	if toRegion != "" {
		tcfg.Region = toRegion
	}
	if lockMode != "" || lockDays != 0 {
		if lockMode == "" || lockDays <= 0 {
			return usageErrorf("object lock needs both --to-object-lock-mode and a positive --to-object-lock-days")
		}
		tcfg.ObjectLock = &s3.ObjectLock{Mode: lockMode, Retain: time.Duration(lockDays) * 24 * time.Hour}
	}
	tbe, err := location.Open(c.ctx, tcfg)
	if err != nil {
		return fmt.Errorf("open target: %w", err)
	}
	defer func() { _ = tbe.Close() }()
	dst, err := repository.Open(c.ctx, tbe, toPassword, repository.OpenOptions{})
	if err != nil {
		return fmt.Errorf("open target %s (create it first with `repo init`): %w", to, err)
	}
	defer func() { _ = dst.Close() }()
	if len(ids) == 0 {
		snaps, err := src.Snapshots(c.ctx, f)
		if err != nil {
			return err
		}
		for _, s := range snaps {
			ids = append(ids, s.ID)
		}
	}
	progress := func(cs repository.CopiedSnapshot) {
		if jsonOut {
			return
		}
		state := "copied"
		if cs.Existing {
			state = "already there"
		}
		c.printf("snapshot %s -> %s (%s)\n", short(cs.Source), short(cs.Target), state)
	}
	res, err := repository.Copy(c.ctx, src, dst, ids, repository.CopyOptions{SkipVerify: noVerify, Progress: progress})
	if err != nil {
		return err
	}
	if jsonOut {
		return c.printJSON(res)
	}
	verified := "not verified"
	if res.Verified {
		verified = "verified"
	}
	c.printf("copied %d snapshots to %s: %d blobs sent (%s), %d already there, %s\n",
		len(res.Snapshots), dst.Location(), res.BlobsCopied, human(res.BytesAdded), res.BlobsPresent, verified)
	return nil
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return strings.TrimSpace(id)
}
