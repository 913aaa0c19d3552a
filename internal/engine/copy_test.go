package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// A group's recovery points are copied to an offsite repository with their
// own retention; the copies are indexed as recovery points of the offsite
// repository, a rerun neither sends data nor brings back forgotten copies,
// and with the primary repository deleted the copy restores byte-exact.
func TestCopyRecoveryPointsOffsite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := newRepoTestEngine(t)
	dir := t.TempDir()
	primaryDir := filepath.Join(dir, "primary")
	for _, r := range []catalog.Repository{
		{Name: "primary", URL: primaryDir, Password: "primary password 123"},
		{Name: "offsite", URL: filepath.Join(dir, "offsite"), Password: "offsite password 456"},
	} {
		if _, err := eng.CreateRepository(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.store.PutGroup(ctx, catalog.ProtectionGroup{Name: "g", Cluster: "c", Repository: "primary", Workloads: []string{"db"},
		Consistency: "application", NodeOrder: OrderMasterLast, ExtractAt: ExtractAtBackup}); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	repo, closeRepo, err := eng.OpenRepository(ctx, "primary")
	if err != nil {
		t.Fatal(err)
	}
	var last []byte
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		last = bytes.Repeat([]byte{byte('a' + i)}, 100<<10+i)
		if err := os.WriteFile(filepath.Join(data, "db.img"), last, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := repo.Backup(ctx, repository.BackupOptions{Root: data, Meta: repository.SnapshotMeta{
			Workload: "db", Cluster: "c", Group: "g", RunID: "run", Consistency: repository.ConsistencyApplication, Time: base.Add(time.Duration(i) * time.Hour)}}); err != nil {
			t.Fatal(err)
		}
	}
	closeRepo()

	policy := CopyPolicy{Group: "g", Target: "offsite", Retention: catalog.Retention{KeepLast: 2}}
	rep, err := eng.CopyRecoveryPoints(ctx, policy)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Copied != 3 || rep.Forgotten != 1 || !rep.Verified || rep.Indexed != 2 {
		t.Fatalf("first copy: %+v; want 3 copied, 1 forgotten by the copy retention, 2 indexed, verified", rep)
	}
	points, err := eng.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Repository: "offsite", Workload: "db"})
	if err != nil || len(points) != 2 {
		t.Fatalf("offsite recovery points: %+v, %v", points, err)
	}
	copies, err := eng.CopiesOf(ctx, "primary", "offsite")
	if err != nil || len(copies) != 2 {
		t.Fatalf("copies of primary in offsite: %v, %v", copies, err)
	}

	again, err := eng.CopyRecoveryPoints(ctx, policy)
	if err != nil {
		t.Fatal(err)
	}
	if again.Copied != 0 || again.BlobsCopied != 0 || again.Forgotten != 0 {
		t.Fatalf("second copy: %+v; want nothing copied (the forgotten copy must not come back)", again)
	}

	// Disaster: the primary repository is gone. The newest copy restores.
	if err := os.RemoveAll(primaryDir); err != nil {
		t.Fatal(err)
	}
	newest := points[0]
	for _, p := range points {
		if p.CreatedAt.After(newest.CreatedAt) {
			newest = p
		}
	}
	off, closeOff, err := eng.OpenRepository(ctx, "offsite")
	if err != nil {
		t.Fatal(err)
	}
	defer closeOff()
	out := filepath.Join(dir, "restored")
	if _, err := off.Restore(ctx, newest.ID, repository.RestoreOptions{Target: out}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "db.img"))
	if err != nil || !bytes.Equal(got, last) {
		t.Fatalf("restored from the copy: %d bytes, %v; want the last backup's %d bytes", len(got), err, len(last))
	}
}
