package repository_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// BenchmarkBackupChangedNoHints measures a re-backup of a 96 MiB image
// (fixed 256 KiB blocks) after a 1% change, with no changed ranges given:
// the whole image is read and compared with the parent's blocks. With
// -cpuprofile it shows where such a re-read spends its CPU. Run with
// -benchtime Nx; every iteration changes other blocks.
func BenchmarkBackupChangedNoHints(b *testing.B) {
	src := b.TempDir()
	p := filepath.Join(src, "disk.img")
	rnd := rand.New(rand.NewPCG(3, 4))
	img := randBytes(rnd, 96<<20)
	writeFile(b, p, img, 0o600)
	r := benchRepo(b)
	ctx := context.Background()
	if _, _, err := r.Backup(ctx, repository.BackupOptions{Root: src}); err != nil {
		b.Fatal(err)
	}
	mtime := time.Now()
	b.SetBytes(int64(len(img)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		for k := 0; k < 4; k++ { // 4 x 256 KiB of 96 MiB: 1%
			if _, err := f.WriteAt(randBytes(rnd, 256<<10), int64(rnd.IntN(384))*256<<10); err != nil {
				b.Fatal(err)
			}
		}
		_ = f.Close()
		mtime = mtime.Add(time.Second)
		_ = os.Chtimes(p, mtime, mtime)
		b.StartTimer()
		_, st, err := r.Backup(ctx, repository.BackupOptions{Root: src})
		if err != nil {
			b.Fatal(err)
		}
		if st.BlocksReused < 384-4 {
			b.Fatalf("reused only %d of 384 blocks", st.BlocksReused)
		}
	}
}
