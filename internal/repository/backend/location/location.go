// Package location turns a repository URL and connection settings into a
// repository.Backend. It is the one place that knows which URL forms exist,
// so the CLI, the engine and the Terraform provider (at plan time, via Parse)
// accept and reject exactly the same strings.
//
// Accepted forms:
//
//	/var/lib/clusterguard/repo          a local or shared directory (absolute path)
//	local:/var/lib/clusterguard/repo    the same, explicitly
//	file:///var/lib/clusterguard/repo   the same, as a file URL
//	s3://bucket                         an S3 bucket (endpoint, region, credentials in Config)
//	s3://bucket/some/prefix             a key prefix inside the bucket
package location

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/s3"
)

// Kind is the type of backend a location names.
type Kind string

const (
	KindLocal Kind = "local"
	KindS3    Kind = "s3"
)

// Location is a parsed repository URL.
type Location struct {
	Kind Kind
	// Path is the cleaned absolute directory (KindLocal).
	Path string
	// Bucket and Prefix (no leading or trailing slash; may be empty) name the
	// place in object storage (KindS3).
	Bucket string
	Prefix string
}

// String returns the canonical URL: an absolute path or s3://bucket[/prefix].
func (l Location) String() string {
	switch l.Kind {
	case KindLocal:
		return l.Path
	case KindS3:
		if l.Prefix == "" {
			return "s3://" + l.Bucket
		}
		return "s3://" + l.Bucket + "/" + l.Prefix
	}
	return ""
}

const examples = `e.g. "/var/lib/clusterguard/repo" or "s3://my-bucket/clusterguard"`

// Parse validates a repository URL. Errors say what is wrong and show a valid
// example, since users see them verbatim in plans and CLI output.
func Parse(raw string) (Location, error) {
	bad := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("repository location %q: %s", shown(raw), fmt.Sprintf(format, args...))
	}
	switch {
	case raw == "":
		return Location{}, fmt.Errorf("repository location is empty; set it to a directory or bucket URL, %s", examples)
	case strings.TrimSpace(raw) != raw:
		return bad("has leading or trailing whitespace")
	case strings.ContainsRune(raw, 0):
		return bad("contains a NUL byte")
	}

	switch {
	case strings.HasPrefix(raw, "/"):
		return parseLocalPath(raw, raw)
	case strings.HasPrefix(raw, "local:"):
		return parseLocalPath(raw, strings.TrimPrefix(raw, "local:"))
	case strings.HasPrefix(raw, "file:"):
		u, err := url.Parse(raw)
		if err != nil {
			// url.Error repeats the URL, user information included: give
			// only its reason.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return bad("not a valid file URL (%v); use e.g. \"file:///var/lib/clusterguard/repo\"", err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return bad("file URLs cannot name a host (%q); mount the share and use its local path, e.g. \"file:///mnt/shared/repo\"", u.Host)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return bad("file URLs take no query or fragment; use e.g. \"file:///var/lib/clusterguard/repo\"")
		}
		return parseLocalPath(raw, u.Path)
	case strings.HasPrefix(raw, "s3://"):
		return parseS3(raw)
	case strings.HasPrefix(raw, "s3:"):
		return bad("S3 locations are written s3://bucket[/prefix], e.g. \"s3://my-bucket/clusterguard\" (the endpoint is set separately)")
	}
	if i := strings.Index(raw, "://"); i > 0 {
		return bad("unsupported scheme %q; use a local directory or s3://bucket[/prefix], %s", raw[:i], examples)
	}
	return bad("a local repository path must be absolute, e.g. %q", "/var/lib/clusterguard/repo")
}

func parseLocalPath(raw, p string) (Location, error) {
	if p == "" || !filepath.IsAbs(p) {
		return Location{}, fmt.Errorf("repository location %q: a local repository path must be absolute, e.g. \"/var/lib/clusterguard/repo\"", shown(raw))
	}
	clean := filepath.Clean(p)
	// The canonical form (the cleaned path) must itself parse: a path that
	// only cleans to trailing white space ("/ /"), or a file URL that
	// decodes to a NUL ("file:///x%00"), would be accepted once and refused
	// when read back from state or the catalog.
	if strings.TrimSpace(clean) != clean || strings.ContainsRune(clean, 0) {
		return Location{}, fmt.Errorf("repository location %q: the directory name %q begins or ends with white space or holds a NUL byte; rename the directory", shown(raw), clean)
	}
	if clean == "/" {
		return Location{}, fmt.Errorf("repository location %q: the filesystem root cannot be a repository; use a directory, e.g. \"/var/lib/clusterguard/repo\"", shown(raw))
	}
	return Location{Kind: KindLocal, Path: clean}, nil
}

func parseS3(raw string) (Location, error) {
	rest := strings.TrimPrefix(raw, "s3://")
	bad := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("repository location %q: %s", shown(raw), fmt.Sprintf(format, args...))
	}
	if strings.ContainsAny(rest, "?#") {
		return bad("S3 locations take no query or fragment; set endpoint, region and credentials separately, e.g. \"s3://my-bucket/clusterguard\"")
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if strings.Contains(bucket, "@") {
		// Not echoed: the URL holds a secret.
		return Location{}, errors.New("repository location: credentials do not belong in the URL (they would end up in state and logs); write s3://bucket[/prefix] and set the access key and secret key separately")
	}
	if bucket == "" {
		return bad("no bucket; write s3://bucket[/prefix], e.g. \"s3://my-bucket/clusterguard\"")
	}
	if strings.Contains(bucket, ":") || strings.HasSuffix(bucket, ".amazonaws.com") {
		return bad("the part after s3:// is the bucket, not an endpoint; set the endpoint separately and write s3://bucket[/prefix], e.g. \"s3://my-bucket/clusterguard\"")
	}
	if err := s3.ValidateBucketName(bucket); err != nil {
		return bad("%v", err)
	}
	cleanPrefix, err := s3.CleanPrefix(prefix)
	if err != nil {
		return bad("%v", err)
	}
	cleanPrefix = strings.TrimSuffix(cleanPrefix, "/")
	if strings.TrimSpace(cleanPrefix) != cleanPrefix {
		// Its canonical form would be refused when read back (see parseLocalPath).
		return bad("the prefix %q begins or ends with white space; remove it", cleanPrefix)
	}
	return Location{Kind: KindS3, Bucket: bucket, Prefix: cleanPrefix}, nil
}

// Config is a repository location plus what it takes to reach it. The S3
// fields are ignored for local locations.
type Config struct {
	URL string
	// Endpoint is the S3 endpoint, host[:port] or http(s)://host[:port];
	// empty means AWS S3.
	Endpoint string
	Region   string
	// Credentials; when AccessKeyID and SecretAccessKey are empty the
	// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
	// environment variables are used.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// PathStyle forces path-style S3 requests (most self-hosted servers).
	PathStyle bool
	// Insecure uses plain HTTP to the S3 endpoint.
	Insecure bool
	// ObjectLock (S3 only) writes objects with an Object Lock retention
	// period; the bucket must have object locking.
	ObjectLock *s3.ObjectLock
}

// Validate checks the configuration without touching the network: the URL
// parses and, for S3, the endpoint and credential fields are consistent.
func (c Config) Validate() error {
	loc, err := Parse(c.URL)
	if err != nil {
		return err
	}
	if loc.Kind != KindS3 {
		return nil
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		if c.AccessKeyID == "" {
			return errors.New("the S3 secret key is set but the access key ID is empty; set both, or neither to use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
		}
		return errors.New("the S3 access key ID is set but the secret key is empty; set both, or neither to use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
	}
	if c.SessionToken != "" && c.AccessKeyID == "" {
		return errors.New("an S3 session token is set without an access key ID and secret key; temporary credentials come as all three")
	}
	if strings.HasPrefix(c.Endpoint, "https://") && c.Insecure {
		return fmt.Errorf("the S3 endpoint %q says https but insecure (plain http) is set; use one or the other", c.Endpoint)
	}
	return nil
}

// Open returns a backend for an existing repository location: the local
// directory or the bucket must exist.
func Open(ctx context.Context, c Config) (repository.Backend, error) {
	return open(ctx, c, false)
}

// Create returns a backend for a new repository, creating the local directory
// or the bucket if missing. (Refusing to initialise over an existing
// repository is the repository's job; it checks for a config object.)
func Create(ctx context.Context, c Config) (repository.Backend, error) {
	return open(ctx, c, true)
}

func open(ctx context.Context, c Config, create bool) (repository.Backend, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	loc, _ := Parse(c.URL) // validated above
	switch loc.Kind {
	case KindLocal:
		if c.ObjectLock != nil {
			return nil, fmt.Errorf("repository %s: object lock needs an S3 repository (s3://bucket/prefix); a directory cannot retain objects", c.URL)
		}
		if create {
			return local.Create(loc.Path)
		}
		return local.Open(loc.Path)
	case KindS3:
		return s3.Open(ctx, s3.Config{
			Endpoint:        c.Endpoint,
			Bucket:          loc.Bucket,
			Prefix:          loc.Prefix,
			Region:          c.Region,
			AccessKeyID:     c.AccessKeyID,
			SecretAccessKey: c.SecretAccessKey,
			SessionToken:    c.SessionToken,
			PathStyle:       c.PathStyle,
			Insecure:        c.Insecure,
			CreateBucket:    create,
			ObjectLock:      c.ObjectLock,
		})
	}
	return nil, fmt.Errorf("repository location %q: unsupported kind %q", c.URL, loc.Kind)
}

// shown is raw as error messages may repeat it: user information in a URL
// ("s3://key:secret@bucket", "file://user:pw@host/x") is replaced, since it
// may be a credential and errors end up in plans and logs.
func shown(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	return scheme + "://REDACTED@" + rest[at+1:]
}
