package repository_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/s3"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/minio"
)

// An offsite copy on a bucket with Object Lock: neither clusterguard (forget,
// prune, the backend's Remove) nor the S3 API with the same credentials can
// delete or overwrite a copied object before its retention passes.
func TestObjectLockedCopyCannotBeDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newClock()
	src := newCopyRepo(t, clock, "source-secret")
	tree := makeTree(t, 80)
	s1, _, err := src.Backup(ctx, repository.BackupOptions{Root: tree, Meta: repository.SnapshotMeta{Workload: "db"}})
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	writeFile(t, tree+"/extra", []byte("second snapshot"), 0o644)
	s2, _, err := src.Backup(ctx, repository.BackupOptions{Root: tree, Meta: repository.SnapshotMeta{Workload: "db"}})
	if err != nil {
		t.Fatal(err)
	}

	srv := minio.Start(t)
	cl := srv.Client()
	bucket := "locked-" + strings.ToLower(strings.ReplaceAll(t.Name(), "Test", ""))[:20]
	cfg := s3.Config{Endpoint: srv.Endpoint, Bucket: bucket, Prefix: "offsite", AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
		Insecure: true, PathStyle: true, CreateBucket: true, ObjectLock: &s3.ObjectLock{Mode: "GOVERNANCE", Retain: 24 * time.Hour}}
	be, err := s3.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := repository.Init(ctx, be, "target-secret", repository.InitOptions{OpenOptions: testOpenOptions(clock), KDF: testKDF, Chunker: testChunker})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dst.Close() })
	res, err := repository.Copy(ctx, src, dst, []string{s1.ID, s2.ID}, repository.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldCopy := res.Snapshots[0].Target

	// Through clusterguard: forget keeps what is retained and says so.
	fr, err := dst.Forget(ctx, repository.RetentionPolicy{Last: 1}, repository.SnapshotFilter{}, clock.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(fr.Retained) != 1 || fr.Retained[0] != oldCopy || fr.Removed != 0 {
		t.Fatalf("forget on a locked copy: removed %d, retained %v; want the old copy retained", fr.Removed, fr.Retained)
	}
	if _, err := dst.Snapshot(ctx, oldCopy); err != nil {
		t.Fatalf("retained copy gone after forget: %v", err)
	}
	if err := be.Remove(ctx, repository.Handle{Type: repository.SnapshotFile, Name: oldCopy}); !errors.Is(err, repository.ErrRetained) {
		t.Fatalf("backend Remove of a locked snapshot: %v, want ErrRetained", err)
	}

	// Directly through S3 with the same credentials.
	key := "offsite/snapshots/" + oldCopy
	info, err := cl.StatObject(ctx, bucket, key, miniogo.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.VersionID == "" {
		t.Fatal("locked bucket is not versioned")
	}
	if err := cl.RemoveObject(ctx, bucket, key, miniogo.RemoveObjectOptions{VersionID: info.VersionID}); err == nil {
		t.Fatal("S3 deleted a locked object version")
	}
	if _, err := cl.PutObject(ctx, bucket, key, bytes.NewReader([]byte("ransom note")), 11, miniogo.PutObjectOptions{}); err != nil {
		t.Fatal(err) // an overwrite makes a new version ...
	}
	orig, err := cl.GetObject(ctx, bucket, key, miniogo.GetObjectOptions{VersionID: info.VersionID})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(orig)
	if err != nil || int64(len(b)) != info.Size {
		t.Fatalf("locked version after an overwrite: %d bytes, %v; want the original %d", len(b), err, info.Size)
	}
	if err := cl.RemoveObject(ctx, bucket, key, miniogo.RemoveObjectOptions{VersionID: info.VersionID}); err == nil {
		t.Fatal("S3 deleted the overwritten locked version")
	}
	shorter := time.Now().Add(time.Minute)
	gov := miniogo.Governance
	if err := cl.PutObjectRetention(ctx, bucket, key, miniogo.PutObjectRetentionOptions{Mode: &gov, RetainUntilDate: &shorter, VersionID: info.VersionID}); err == nil {
		t.Fatal("S3 shortened a governance retention without the bypass permission")
	}
	// Governance mode is not proof against a principal allowed to bypass it
	// (the root account here): documented, and shown.
	if err := cl.RemoveObject(ctx, bucket, key, miniogo.RemoveObjectOptions{VersionID: info.VersionID, GovernanceBypass: true}); err != nil {
		t.Fatalf("governance bypass by the root account: %v", err)
	}

	// Prune with everything retained: packs that became unused stay, the
	// prune succeeds and says why. (Both snapshots are hidden behind delete
	// markers, as if their retention had passed and forget had run.)
	for _, id := range []string{oldCopy, res.Snapshots[1].Target} {
		if err := cl.RemoveObject(ctx, bucket, "offsite/snapshots/"+id, miniogo.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	be2, err := s3.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dst2, err := repository.Open(ctx, be2, "target-secret", testOpenOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dst2.Close() })
	st, err := dst2.Prune(ctx, repository.PruneOptions{})
	if err != nil {
		t.Fatalf("prune on a locked repository: %v", err)
	}
	if st.Retained == 0 || st.PacksDeleted+st.PacksRepacked != 0 || st.BytesFreed != 0 {
		t.Fatalf("prune stats %+v: want the unused packs left in place as retained", st)
	}
	packs := 0
	if err := be2.List(ctx, repository.PackFile, func(repository.FileInfo) error { packs++; return nil }); err != nil {
		t.Fatal(err)
	}
	if packs == 0 || packs < st.PacksBefore {
		t.Fatalf("prune deleted retained packs: %d of %d left", packs, st.PacksBefore)
	}
	mustVerify(t, dst2)
}

// A repository asking for object lock on a bucket made without it fails at
// open, rather than writing copies that anyone could delete.
func TestObjectLockNeedsALockedBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := minio.Start(t)
	_, err := s3.Open(ctx, s3.Config{Endpoint: srv.Endpoint, Bucket: srv.NewBucket(t), AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
		Insecure: true, PathStyle: true, ObjectLock: &s3.ObjectLock{Mode: "COMPLIANCE", Retain: time.Hour}})
	if err == nil || !strings.Contains(err.Error(), "object locking") {
		t.Fatalf("open with object lock on an unlocked bucket: %v", err)
	}
}
