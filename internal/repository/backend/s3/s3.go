// Package s3 is a repository.Backend on S3-compatible object storage (AWS S3,
// MinIO, Ceph RGW, ...), built on minio-go.
//
// Key layout under the configured prefix (no prefix: the bucket root):
//
//	<prefix>/config
//	<prefix>/keys/<name>
//	<prefix>/data/<2-char-prefix>/<id>
//	<prefix>/index/<id>
//	<prefix>/snapshots/<id>
//	<prefix>/locks/<id>
//
// The same layout as the local backend, so a repository directory can be
// copied into a bucket (and back) with any sync tool.
//
// S3 PUTs are atomic (an object is visible whole or not at all) and an
// interrupted multipart upload never becomes an object, so Save needs no
// temporary names. minio-go retries transient failures (5xx, throttling,
// connection resets) with backoff; Config.MaxRetries bounds that.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// DefaultEndpoint is used when Config.Endpoint is empty.
const DefaultEndpoint = "s3.amazonaws.com"

// singlePutLimit: objects up to this size go in one PUT. Packs are tens of
// MiB; one request is cheaper than a multipart upload and leaves no
// incomplete uploads behind when a backup is killed.
const singlePutLimit = 128 << 20

// Config says where the repository lives and how to reach it.
type Config struct {
	// Endpoint is host[:port], or a URL http(s)://host[:port] whose scheme
	// decides TLS. Empty means AWS S3 (s3.amazonaws.com).
	Endpoint string
	// Bucket holds the repository; Prefix (optional) is a key prefix inside it,
	// so several repositories can share a bucket.
	Bucket string
	Prefix string
	// Region is the bucket's region; empty lets minio-go discover it (AWS) or
	// use us-east-1 (most S3-compatible servers).
	Region string
	// AccessKeyID, SecretAccessKey and SessionToken are static credentials.
	// When AccessKeyID and SecretAccessKey are both empty, the environment
	// variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
	// are used.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// PathStyle forces path-style requests (http://host/bucket/key), which
	// most self-hosted servers need; otherwise virtual-host style is used
	// where the endpoint supports it.
	PathStyle bool
	// Insecure uses plain HTTP instead of HTTPS (for a local MinIO, or behind
	// a TLS-terminating proxy on a trusted network).
	Insecure bool
	// CreateBucket makes Open create the bucket if it does not exist;
	// otherwise a missing bucket is an error.
	CreateBucket bool
	// MaxRetries is how many times a failed request is tried in total
	// (1: no retries). 0 means minio-go's default, 10.
	MaxRetries int
	// Transport overrides the HTTP transport (tests inject faults with it).
	Transport http.RoundTripper
	// ObjectLock, when set, writes objects with a retention period; the
	// bucket must have object locking (CreateBucket creates it so).
	ObjectLock *ObjectLock
}

// Backend stores objects in a bucket. Safe for concurrent use.
type Backend struct {
	client    *minio.Client
	core      minio.Core
	transport http.RoundTripper
	bucket    string
	prefix    string // "" or "a/b/" (with the trailing slash)
	location  string
	lock      *ObjectLock // nil: no retention
	lockMode  minio.RetentionMode
}

var _ repository.Backend = (*Backend)(nil)

// Open connects to the endpoint and checks the bucket exists (creating it if
// cfg.CreateBucket). It makes one request, so a wrong endpoint, wrong
// credentials or a missing bucket fail here with a message saying which.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	host, secure, err := parseEndpoint(cfg.Endpoint, cfg.Insecure)
	if err != nil {
		return nil, err
	}
	if err := ValidateBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("s3 backend: %w", err)
	}
	prefix, err := CleanPrefix(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("s3 backend: %w", err)
	}
	creds, err := credentialsFor(cfg)
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	transport := cfg.Transport
	if transport == nil {
		t, err := minio.DefaultTransport(secure)
		if err != nil {
			return nil, fmt.Errorf("s3 backend: HTTP transport: %w", err)
		}
		transport = t
	}
	var lockMode minio.RetentionMode
	if cfg.ObjectLock != nil {
		if lockMode, err = cfg.ObjectLock.mode(); err != nil {
			return nil, err
		}
	}
	if cfg.MaxRetries < 0 {
		return nil, fmt.Errorf("s3 backend: MaxRetries %d is negative (use 0 for the default, 1 for no retries)", cfg.MaxRetries)
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    transport,
		MaxRetries:   cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 backend: endpoint %q: %w", cfg.Endpoint, err)
	}
	scheme := "https"
	if !secure {
		scheme = "http"
	}
	b := &Backend{
		client:    client,
		core:      minio.Core{Client: client},
		transport: transport,
		bucket:    cfg.Bucket,
		prefix:    prefix,
		location:  "s3:" + scheme + "://" + host + "/" + cfg.Bucket + "/" + strings.TrimSuffix(prefix, "/"),
		lock:      cfg.ObjectLock,
		lockMode:  lockMode,
	}
	b.location = strings.TrimSuffix(b.location, "/")

	exists, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, b.explain(ctx, "check bucket", "", err)
	}
	if !exists {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("s3 backend: bucket %q does not exist at %s: create it, check the bucket name and region, or let the repository create it (create_bucket)", cfg.Bucket, scheme+"://"+host)
		}
		err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region, ObjectLocking: cfg.ObjectLock != nil})
		if err != nil {
			code := minio.ToErrorResponse(err).Code
			// Another writer may have created it in between.
			if code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				return nil, b.explain(ctx, "create bucket", "", err)
			}
		}
	}
	if b.lock != nil {
		if err := b.checkObjectLock(ctx); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func parseEndpoint(endpoint string, insecure bool) (host string, secure bool, err error) {
	if endpoint == "" {
		return DefaultEndpoint, !insecure, nil
	}
	if !strings.Contains(endpoint, "://") {
		if strings.ContainsAny(endpoint, "/?#") {
			return "", false, fmt.Errorf("s3 backend: endpoint %q must be host[:port] or http(s)://host[:port], without a path (e.g. minio.example.com:9000)", endpoint)
		}
		return endpoint, !insecure, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, fmt.Errorf("s3 backend: endpoint %q: %w (want host[:port] or http(s)://host[:port])", endpoint, err)
	}
	if u.User != nil {
		return "", false, fmt.Errorf("s3 backend: endpoint %q must not contain credentials; set the access key and secret key instead", u.Redacted())
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return "", false, fmt.Errorf("s3 backend: endpoint %q must not have a path; put the bucket and prefix in the repository URL (s3://bucket/prefix)", endpoint)
	}
	switch u.Scheme {
	case "https":
		if insecure {
			return "", false, fmt.Errorf("s3 backend: endpoint %q says https but insecure (plain http) is set; use one or the other", endpoint)
		}
		return u.Host, true, nil
	case "http":
		return u.Host, false, nil
	default:
		return "", false, fmt.Errorf("s3 backend: endpoint %q has scheme %q; use http:// or https:// (or just host:port)", endpoint, u.Scheme)
	}
}

// getenv is os.Getenv; a variable so the credential fallback is testable
// without touching the process environment.
var getenv = os.Getenv

func credentialsFor(cfg Config) (*credentials.Credentials, error) {
	id, secret, token := cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken
	source := "the configuration"
	if id == "" && secret == "" {
		id, secret = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
		if token == "" {
			token = getenv("AWS_SESSION_TOKEN")
		}
		source = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
		if id == "" && secret == "" {
			return nil, errors.New("s3 backend: no credentials: set the access key and secret key, or the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)")
		}
	}
	if id == "" {
		return nil, fmt.Errorf("s3 backend: the secret key is set but the access key ID is empty (from %s)", source)
	}
	if secret == "" {
		return nil, fmt.Errorf("s3 backend: the access key ID is set but the secret key is empty (from %s)", source)
	}
	return credentials.NewStaticV4(id, secret, token), nil
}

// Location describes the backend for messages; it never includes credentials.
func (b *Backend) Location() string { return b.location }

// Close releases idle connections.
func (b *Backend) Close() error {
	if t, ok := b.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	return nil
}

var typeDirs = map[repository.FileType]string{
	repository.KeyFile:      "keys",
	repository.PackFile:     "data",
	repository.IndexFile:    "index",
	repository.SnapshotFile: "snapshots",
	repository.LockFile:     "locks",
}

// key returns the object key for h after validating its name.
func (b *Backend) key(h repository.Handle) (string, error) {
	switch {
	case h.Name == "":
		return "", fmt.Errorf("s3 backend: %s object with an empty name", h.Type)
	case strings.ContainsAny(h.Name, "/\\\x00"), h.Name == ".", h.Name == "..":
		return "", fmt.Errorf("s3 backend: %s name %q must not contain path separators or be a dot name (object names are plain)", h.Type, h.Name)
	}
	if h.Type == repository.ConfigFile {
		for _, d := range typeDirs {
			if h.Name == d {
				return "", fmt.Errorf("s3 backend: config object name %q collides with the %s/ key prefix; use another name (the repository uses \"config\")", h.Name, d)
			}
		}
		return b.prefix + h.Name, nil
	}
	d, ok := typeDirs[h.Type]
	if !ok {
		return "", fmt.Errorf("s3 backend: unknown object type %q for %q", h.Type, h.Name)
	}
	if h.Type == repository.PackFile {
		if len(h.Name) < 2 {
			return "", fmt.Errorf("s3 backend: pack name %q is shorter than the 2-character fan-out prefix (pack names are hex ids)", h.Name)
		}
		return b.prefix + d + "/" + h.Name[:2] + "/" + h.Name, nil
	}
	return b.prefix + d + "/" + h.Name, nil
}

// objectURL names an object in messages.
func (b *Backend) objectURL(key string) string {
	if key == "" {
		return "s3://" + b.bucket
	}
	return "s3://" + b.bucket + "/" + key
}

// explain turns a minio-go error into one that says what failed, where, and
// what to check. A cancelled context wins over whatever the transport said.
func (b *Backend) explain(ctx context.Context, op, key string, err error) error {
	where := b.objectURL(key)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("s3 backend: %s %s: %w", op, where, ctxErr)
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case "NoSuchKey":
			return fmt.Errorf("s3 backend: %s %s: %w", op, where, repository.ErrNotExist)
		case "NoSuchBucket":
			return fmt.Errorf("s3 backend: %s %s: bucket %q does not exist (was it deleted? check the bucket name and region): %w", op, where, b.bucket, err)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired":
			return fmt.Errorf("s3 backend: %s %s: %s: check the access key, secret key and session token, and that they may read and write bucket %q: %w", op, where, resp.Code, b.bucket, err)
		case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
			return fmt.Errorf("s3 backend: %s %s: %s: check the region (bucket region %q): %w", op, where, resp.Code, resp.Region, err)
		}
		if resp.StatusCode == http.StatusNotFound && key != "" && resp.Code == "" {
			return fmt.Errorf("s3 backend: %s %s: %w", op, where, repository.ErrNotExist)
		}
		return fmt.Errorf("s3 backend: %s %s: %w", op, where, err)
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) {
		return fmt.Errorf("s3 backend: %s %s: cannot reach the endpoint (check the endpoint address and port, that it is up, and whether it expects https or plain http): %w", op, where, err)
	}
	return fmt.Errorf("s3 backend: %s %s: %w", op, where, err)
}

// Save uploads data to h; S3 makes the object visible atomically.
func (b *Backend) Save(ctx context.Context, h repository.Handle, data []byte) error {
	key, err := b.key(h)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 backend: save %s: %w", b.objectURL(key), err)
	}
	_, err = b.client.PutObject(ctx, b.bucket, key, bytes.NewReader(data), int64(len(data)), b.putOptions(h.Type, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    singlePutLimit,
	}))
	if err != nil {
		return b.explain(ctx, "save", key, err)
	}
	return nil
}

// readAttempts bounds retries of a GET whose body fails mid-stream; minio-go
// retries failed requests but not a body that breaks after the headers.
const readAttempts = 3

// Load reads length bytes at offset (length 0: to the end) with a ranged GET.
func (b *Backend) Load(ctx context.Context, h repository.Handle, offset, length int64) ([]byte, error) {
	key, err := b.key(h)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3 backend: load %s: %w", b.objectURL(key), err)
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("s3 backend: load %s: negative range offset %d length %d", b.objectURL(key), offset, length)
	}
	var lastErr error
	for range readAttempts {
		data, err, retry := b.loadOnce(ctx, key, offset, length)
		if !retry {
			return data, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func (b *Backend) loadOnce(ctx context.Context, key string, offset, length int64) (data []byte, err error, retry bool) {
	var opts minio.GetObjectOptions
	switch {
	case offset == 0 && length == 0:
		// whole object, no Range header
	case length == 0:
		err = opts.SetRange(offset, 0)
	default:
		err = opts.SetRange(offset, offset+length-1)
	}
	if err != nil {
		return nil, fmt.Errorf("s3 backend: load %s: %w", b.objectURL(key), err), false
	}
	body, info, _, err := b.core.GetObject(ctx, b.bucket, key, opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			return b.outOfRange(ctx, key, offset, length)
		}
		return nil, b.explain(ctx, "load", key, err), false
	}
	defer body.Close()
	n := length
	if n == 0 {
		n = info.Size // the size of the returned range
	}
	if n < 0 {
		return nil, fmt.Errorf("s3 backend: load %s: server did not send a content length", b.objectURL(key)), false
	}
	buf := make([]byte, n)
	got, err := io.ReadFull(body, buf)
	switch {
	case err == nil:
		return buf, nil, false
	case ctx.Err() != nil:
		return nil, fmt.Errorf("s3 backend: load %s: %w", b.objectURL(key), ctx.Err()), false
	case length > 0 && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) && int64(got) == info.Size:
		// The server clamped the range to the object's end: the caller asked
		// for more than exists.
		return b.outOfRange(ctx, key, offset, length)
	default:
		return nil, fmt.Errorf("s3 backend: load %s: read %d bytes at %d: got %d: %w", b.objectURL(key), n, offset, got, err), true
	}
}

// outOfRange handles a range the object cannot satisfy: reading from exactly
// the end with length 0 is an empty read, anything else an error.
func (b *Backend) outOfRange(ctx context.Context, key string, offset, length int64) ([]byte, error, bool) {
	info, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, b.explain(ctx, "load", key, err), false
	}
	if length == 0 && offset == info.Size {
		return []byte{}, nil, false
	}
	return nil, fmt.Errorf("s3 backend: load %s: range offset %d length %d is outside the %d-byte object", b.objectURL(key), offset, length, info.Size), false
}

// Stat reports the object's size.
func (b *Backend) Stat(ctx context.Context, h repository.Handle) (repository.FileInfo, error) {
	key, err := b.key(h)
	if err != nil {
		return repository.FileInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return repository.FileInfo{}, fmt.Errorf("s3 backend: stat %s: %w", b.objectURL(key), err)
	}
	info, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return repository.FileInfo{}, b.explain(ctx, "stat", key, err)
	}
	return repository.FileInfo{Name: h.Name, Size: info.Size}, nil
}

// Remove deletes h; S3 treats deleting an absent key as success.
func (b *Backend) Remove(ctx context.Context, h repository.Handle) error {
	key, err := b.key(h)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 backend: remove %s: %w", b.objectURL(key), err)
	}
	if err := b.refuseRetained(ctx, h); err != nil {
		return err
	}
	if err := b.client.RemoveObject(ctx, b.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		err = b.explain(ctx, "remove", key, err)
		if errors.Is(err, repository.ErrNotExist) {
			return nil
		}
		return err
	}
	return nil
}

// List calls fn for every object of type t, paging through ListObjectsV2.
func (b *Backend) List(ctx context.Context, t repository.FileType, fn func(repository.FileInfo) error) error {
	var listPrefix string
	recursive := false
	switch {
	case t == repository.ConfigFile:
		listPrefix = b.prefix
	case t == repository.PackFile:
		listPrefix = b.prefix + typeDirs[t] + "/"
		recursive = true
	default:
		d, ok := typeDirs[t]
		if !ok {
			return fmt.Errorf("s3 backend: list: unknown object type %q", t)
		}
		listPrefix = b.prefix + d + "/"
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 backend: list %s: %w", b.objectURL(listPrefix), err)
	}
	// Stopping early must stop the lister goroutine too.
	listCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range b.client.ListObjectsIter(listCtx, b.bucket, minio.ListObjectsOptions{Prefix: listPrefix, Recursive: recursive}) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("s3 backend: list %s: %w", b.objectURL(listPrefix), err)
		}
		if obj.Err != nil {
			return b.explain(ctx, "list", listPrefix, obj.Err)
		}
		rel := strings.TrimPrefix(obj.Key, listPrefix)
		name := path.Base(rel)
		if strings.HasSuffix(obj.Key, "/") || name == "" {
			continue // a "directory" (common prefix) or a folder marker
		}
		if t == repository.PackFile {
			// Only data/<xx>/<name>, where xx is name's own prefix.
			if len(name) < 2 || rel != name[:2]+"/"+name {
				continue
			}
		} else if strings.Contains(rel, "/") {
			continue
		}
		if err := fn(repository.FileInfo{Name: name, Size: obj.Size}); err != nil {
			return err
		}
	}
	// The iterator ends quietly when its context is cancelled.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 backend: list %s: %w", b.objectURL(listPrefix), err)
	}
	return nil
}
