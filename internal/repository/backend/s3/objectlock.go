package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// ObjectLock makes the backend write objects with an S3 Object Lock
// retention period, so that nobody holding the repository's credentials
// (clusterguard itself, or an attacker who stole them) can delete or
// overwrite a stored version before the period passes. The bucket must
// have been created with object locking (which also turns on versioning).
//
// Lock files are written without retention: they are rewritten every
// minute and removed when an operation ends. Every other object (config,
// keys, packs, index files, snapshots) is written once and never rewritten,
// so retention never gets in the repository's way; prune and forget skip
// what is still retained (see repository.RetentionBackend).
type ObjectLock struct {
	// Mode is GOVERNANCE (a user with s3:BypassGovernanceRetention can
	// still delete early) or COMPLIANCE (nobody can, not even the root
	// account, until the period passes).
	Mode string
	// Retain is how long each object is retained from when it is written.
	Retain time.Duration
}

func (o *ObjectLock) mode() (minio.RetentionMode, error) {
	switch m := minio.RetentionMode(strings.ToUpper(o.Mode)); m {
	case minio.Governance, minio.Compliance:
		if o.Retain <= 0 {
			return "", fmt.Errorf("s3 backend: object lock retention %s must be positive (e.g. 30 days)", o.Retain)
		}
		return m, nil
	default:
		return "", fmt.Errorf("s3 backend: object lock mode %q: want GOVERNANCE or COMPLIANCE", o.Mode)
	}
}

// checkObjectLock fails unless the bucket has object locking enabled:
// without it, retention on writes is refused by S3 (or, worse, silently
// ignored by some servers).
func (b *Backend) checkObjectLock(ctx context.Context) error {
	enabled, _, _, _, err := b.client.GetObjectLockConfig(ctx, b.bucket)
	if err != nil {
		code := minio.ToErrorResponse(err).Code
		if code == "ObjectLockConfigurationNotFoundError" || code == "NoSuchObjectLockConfiguration" {
			enabled = ""
		} else {
			return b.explain(ctx, "read object lock configuration of", "", err)
		}
	}
	if enabled != "Enabled" {
		return fmt.Errorf("s3 backend: bucket %q does not have object locking enabled, so copies could not be made immutable: create a new bucket with object locking (mc mb --with-lock, or create_bucket with object_lock set), or remove object_lock from the repository", b.bucket)
	}
	return nil
}

// putOptions adds retention to a PUT of an object of type t.
func (b *Backend) putOptions(t repository.FileType, o minio.PutObjectOptions) minio.PutObjectOptions {
	if !b.Retains(t) {
		return o
	}
	o.Mode = b.lockMode
	o.RetainUntilDate = time.Now().Add(b.lock.Retain).UTC()
	// S3 requires an integrity checksum on PUTs with retention.
	o.SendContentMd5 = true
	return o
}

// Retains reports whether objects of type t are written with retention.
func (b *Backend) Retains(t repository.FileType) bool {
	return b.lock != nil && t != repository.LockFile
}

// RetainedUntil is the retain-until date of the current version of h; zero
// when it has none.
func (b *Backend) RetainedUntil(ctx context.Context, h repository.Handle) (time.Time, error) {
	key, err := b.key(h)
	if err != nil {
		return time.Time{}, err
	}
	_, until, err := b.client.GetObjectRetention(ctx, b.bucket, key, "")
	if err != nil {
		switch minio.ToErrorResponse(err).Code {
		case "NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError", "InvalidRequest":
			return time.Time{}, nil
		}
		return time.Time{}, b.explain(ctx, "read retention of", key, err)
	}
	if until == nil {
		return time.Time{}, nil
	}
	return *until, nil
}

// refuseRetained returns an ErrRetained error when h is still retained. On
// a versioned (object-locked) bucket a plain DELETE would "succeed" by
// adding a delete marker: the locked version survives, but the repository
// would no longer see it. Refusing keeps the repository whole.
func (b *Backend) refuseRetained(ctx context.Context, h repository.Handle) error {
	if !b.Retains(h.Type) {
		return nil
	}
	until, err := b.RetainedUntil(ctx, h)
	if errors.Is(err, repository.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if until.After(time.Now()) {
		key, _ := b.key(h)
		return fmt.Errorf("s3 backend: remove %s: retained until %s: %w", b.objectURL(key), until.Format(time.RFC3339), repository.ErrRetained)
	}
	return nil
}

var _ repository.RetentionBackend = (*Backend)(nil)
