package repository_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// With RangesOnly, a hinted file whose parent blocks cannot be reused (no
// parent, or one chunked in another block size) fails the backup instead
// of being read whole: its bytes outside the ranges are not valid.
func TestRangesOnlyRefusesAFileWithoutReusableParentBlocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, _ := newTestRepo(t)
	src := t.TempDir()
	img := randBytes(rand.New(rand.NewPCG(3, 3)), 16*4096)
	writeFile(t, filepath.Join(src, "vm.img"), img, 0o600)
	hint := map[string][]repository.Range{"vm.img": {{Offset: 4096, Length: 10}}}
	meta := repository.SnapshotMeta{Workload: "vm"}
	// No parent at all.
	_, _, err := r.Backup(ctx, repository.BackupOptions{Root: src, Meta: meta, FixedBlockSize: 4096, ChangedRanges: hint, RangesOnly: true})
	if !errors.Is(err, repository.ErrParentBlocksUnusable) {
		t.Fatalf("first backup with RangesOnly: %v, want ErrParentBlocksUnusable", err)
	}
	// A parent in another block size.
	if _, _, err := r.Backup(ctx, repository.BackupOptions{Root: src, Meta: meta, FixedBlockSize: 8192, ChangedRanges: map[string][]repository.Range{"vm.img": nil}}); err != nil {
		t.Fatal(err)
	}
	_, _, err = r.Backup(ctx, repository.BackupOptions{Root: src, Meta: meta, FixedBlockSize: 4096, ChangedRanges: hint, RangesOnly: true})
	if !errors.Is(err, repository.ErrParentBlocksUnusable) {
		t.Fatalf("backup with RangesOnly over a parent of another block size: %v, want ErrParentBlocksUnusable", err)
	}
	// The same block size: accepted, only the hinted block read.
	parent, _, err := r.Backup(ctx, repository.BackupOptions{Root: src, Meta: meta, FixedBlockSize: 4096, ChangedRanges: map[string][]repository.Range{"vm.img": nil}})
	if err != nil {
		t.Fatal(err)
	}
	// Named: the test clock gives the snapshots the same time.
	_, st, err := r.Backup(ctx, repository.BackupOptions{Root: src, Meta: meta, Parent: parent.ID, FixedBlockSize: 4096, ChangedRanges: hint, RangesOnly: true})
	if err != nil || st.BytesRead != 4096 {
		t.Fatalf("backup with RangesOnly over a usable parent: %+v, %v; want one block read", st, err)
	}
}
