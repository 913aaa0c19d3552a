package repository_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/local"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/s3"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/minio"
)

func newCopyRepo(t *testing.T, clock *fakeClock, password string) *repository.Repository {
	t.Helper()
	be, err := local.Create(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Init(context.Background(), be, password, repository.InitOptions{OpenOptions: testOpenOptions(clock), KDF: testKDF, Chunker: testChunker})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// checkCopy restores the copy of src snapshot from dst and compares it with
// the backed-up tree, and checks the copy's metadata and source labels.
func checkCopy(t *testing.T, src, dst *repository.Repository, res repository.CopyResult, srcSnap repository.Snapshot, tree string) {
	t.Helper()
	ctx := context.Background()
	var target string
	for _, cs := range res.Snapshots {
		if cs.Source == srcSnap.ID {
			target = cs.Target
		}
	}
	if target == "" {
		t.Fatalf("copy result %+v does not name snapshot %s", res.Snapshots, srcSnap.ShortID())
	}
	cp, err := dst.Snapshot(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Workload != srcSnap.Workload || cp.Group != srcSnap.Group || cp.RunID != srcSnap.RunID || !cp.Time.Equal(srcSnap.Time) || cp.Consistency != srcSnap.Consistency {
		t.Errorf("copy metadata %+v, want that of %+v", cp.SnapshotMeta, srcSnap.SnapshotMeta)
	}
	if cp.Labels[repository.LabelCopySourceRepository] != src.ID() || cp.Labels[repository.LabelCopySourceSnapshot] != srcSnap.ID {
		t.Errorf("copy labels %v do not name the source %s/%s", cp.Labels, src.ID(), srcSnap.ID)
	}
	out := t.TempDir()
	if _, err := dst.Restore(ctx, target, repository.RestoreOptions{Target: out}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, summarize(t, tree), summarize(t, out))
}

// Directory to directory, the target with its own password and keys: every
// blob is re-encrypted (and re-keyed), a rerun sends nothing, and a later
// snapshot sends only the chunks that changed.
func TestCopyDirToDirReencrypts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newClock()
	src := newCopyRepo(t, clock, "source-secret")
	dst := newCopyRepo(t, clock, "target-secret")
	tree := makeTree(t, 70)
	s1, _, err := src.Backup(ctx, repository.BackupOptions{Root: tree, Meta: repository.SnapshotMeta{Workload: "db", Group: "g", RunID: "run-1", Consistency: repository.ConsistencyApplication}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := repository.Copy(ctx, src, dst, []string{s1.ID}, repository.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reencrypted || !res.Verified || res.BlobsCopied == 0 {
		t.Fatalf("first copy: %+v", res)
	}
	checkCopy(t, src, dst, res, s1, tree)
	mustVerify(t, dst)

	again, err := repository.Copy(ctx, src, dst, []string{s1.ID}, repository.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.BlobsCopied != 0 || len(again.Snapshots) != 1 || !again.Snapshots[0].Existing || again.Snapshots[0].Target != res.Snapshots[0].Target {
		t.Fatalf("second copy of the same snapshot sent data or made a new copy: %+v", again)
	}

	// One file changes: the next copy sends its chunks and a few trees only.
	clock.Add(3600e9)
	writeFile(t, filepath.Join(tree, "dir", "changed"), []byte("new content for the second snapshot"), 0o644)
	s2, _, err := src.Backup(ctx, repository.BackupOptions{Root: tree, Meta: repository.SnapshotMeta{Workload: "db", Group: "g", RunID: "run-2"}})
	if err != nil {
		t.Fatal(err)
	}
	third, err := repository.Copy(ctx, src, dst, []string{s1.ID, s2.ID}, repository.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if third.BlobsCopied == 0 || third.BlobsCopied > 5 || third.BlobsPresent == 0 {
		t.Fatalf("incremental copy sent %d blobs (%d present), want only the changed file and its trees", third.BlobsCopied, third.BlobsPresent)
	}
	checkCopy(t, src, dst, third, s2, tree)
	cp2, _ := dst.Snapshot(ctx, third.Snapshots[len(third.Snapshots)-1].Target)
	if cp2.Parent != res.Snapshots[0].Target {
		t.Errorf("copy of the second snapshot has parent %q, want the copy of the first %q", cp2.Parent, res.Snapshots[0].Target)
	}
	mustVerify(t, dst)
}

// faultyTransport stops passing requests after `after` pack uploads: the
// server became unreachable mid-copy.
type faultyTransport struct {
	base  http.RoundTripper
	after int64
	packs atomic.Int64
	down  atomic.Bool
}

var errServerDown = errors.New("connection refused (test: server down)")

func (f *faultyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.down.Load() {
		return nil, errServerDown
	}
	if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/data/") && f.packs.Add(1) > f.after {
		f.down.Store(true)
		return nil, errServerDown
	}
	return f.base.RoundTrip(req)
}

// Directory to MinIO with re-encryption, cut off mid-copy: the rerun resumes
// (sends fewer blobs than a full copy), and the copy verifies and restores.
func TestCopyToMinIOResumesAfterInterruption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newClock()
	src := newCopyRepo(t, clock, "source-secret")
	tree := makeTree(t, 71)
	// More data, so the copy spans many packs.
	for i := range 6 {
		writeFile(t, filepath.Join(tree, "big", string(rune('a'+i))), randomBytes(t, 400<<10), 0o644)
	}
	s1, _, err := src.Backup(ctx, repository.BackupOptions{Root: tree, Meta: repository.SnapshotMeta{Workload: "vm"}})
	if err != nil {
		t.Fatal(err)
	}

	srv := minio.Start(t)
	bucket := srv.NewBucket(t)
	cfg := s3.Config{Endpoint: srv.Endpoint, Bucket: bucket, Prefix: "copy", AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, Insecure: true, PathStyle: true, MaxRetries: 1}
	base, err := s3.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repository.Init(ctx, base, "target-secret", repository.InitOptions{OpenOptions: testOpenOptions(clock), KDF: testKDF, Chunker: testChunker}); err != nil {
		t.Fatal(err)
	}

	ft := &faultyTransport{base: http.DefaultTransport, after: 6}
	fcfg := cfg
	fcfg.Transport = ft
	fbe, err := s3.Open(ctx, fcfg)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := repository.Open(ctx, fbe, "target-secret", testOpenOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repository.Copy(ctx, src, dst, []string{s1.ID}, repository.CopyOptions{}); err == nil || !errors.Is(err, errServerDown) {
		t.Fatalf("copy with the server going away: %v, want the transport's error", err)
	}
	_ = dst.Close()

	// Full size of the copy, for comparison: into a fresh directory.
	full, err := repository.Copy(ctx, src, newCopyRepo(t, clock, "x"), []string{s1.ID}, repository.CopyOptions{SkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}

	// Server back (a fresh backend, the old one's transport stays down). The
	// interrupted run's lock is shared, so it does not block the rerun.
	be2, err := s3.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dst2, err := repository.Open(ctx, be2, "target-secret", testOpenOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dst2.Close() })
	res, err := repository.Copy(ctx, src, dst2, []string{s1.ID}, repository.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsPresent == 0 || res.BlobsCopied >= full.BlobsCopied {
		t.Fatalf("resumed copy sent %d blobs (%d already there) of %d: it did not resume", res.BlobsCopied, res.BlobsPresent, full.BlobsCopied)
	}
	if !res.Verified {
		t.Fatal("copy not verified")
	}
	checkCopy(t, src, dst2, res, s1, tree)
	mustVerify(t, dst2)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
