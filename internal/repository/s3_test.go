package repository_test

import (
	"context"
	"sync"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/s3"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/minio"
)

// The whole life of a repository on a real S3 server (MinIO on 127.0.0.1):
// two concurrent backups, restore, verify, forget and prune.
func TestRepositoryOnMinIO(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := minio.Start(t)
	be, err := s3.Open(ctx, s3.Config{
		Endpoint: srv.Endpoint, Bucket: srv.NewBucket(t), Prefix: "repo",
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, Insecure: true, PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	clock := newClock()
	r, err := repository.Init(ctx, be, "secret", repository.InitOptions{OpenOptions: testOpenOptions(clock), KDF: testKDF, Chunker: testChunker})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	srcA, srcB := makeTree(t, 60), makeTree(t, 61)
	var wg sync.WaitGroup
	snaps := make([]repository.Snapshot, 2)
	errs := make([]error, 2)
	for i, src := range []string{srcA, srcB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snaps[i], _, errs[i] = r.Backup(ctx, repository.BackupOptions{Root: src, Meta: repository.SnapshotMeta{Workload: "w"}})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	r2, err := repository.Open(ctx, be, "secret", testOpenOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r2.Close() }()
	dst := t.TempDir()
	if _, err := r2.Restore(ctx, snaps[1].ID, repository.RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, summarize(t, srcB), summarize(t, dst))
	mustVerify(t, r2)
	res, err := r2.Forget(ctx, repository.RetentionPolicy{Last: 1}, repository.SnapshotFilter{}, clock.Now(), false)
	if err != nil || res.Removed != 1 {
		t.Fatalf("forget: %+v, %v", res, err)
	}
	st, err := r2.Prune(ctx, repository.PruneOptions{})
	if err != nil || st.PacksDeleted+st.PacksRepacked == 0 {
		t.Fatalf("prune: %+v, %v", st, err)
	}
	mustVerify(t, r2)
}
