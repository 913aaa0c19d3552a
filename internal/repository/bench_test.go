package repository_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/mem"
)

// benchData writes a 64 MiB dataset like the side-by-side benchmark's, in
// miniature: an image of zero, random and text extents plus small files.
func benchData(b *testing.B) (string, int64) {
	b.Helper()
	root := b.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	var img bytes.Buffer
	line := []byte("2024-03-01T12:00:00Z INFO request served path=/api/v1/items status=200 bytes=")
	for img.Len() < 48<<20 {
		switch r.IntN(3) {
		case 0:
			img.Write(make([]byte, 1<<20))
		case 1:
			img.Write(randBytes(r, 1<<20))
		default:
			for n := 0; n < 1<<20; {
				l := append(append([]byte{}, line...), fmt.Sprintf("%d\n", r.IntN(1e6))...)
				img.Write(l)
				n += len(l)
			}
		}
	}
	writeFile(b, filepath.Join(root, "disk.img"), img.Bytes(), 0o600)
	total := int64(img.Len())
	for i := 0; i < 500; i++ {
		data := randBytes(r, 1+r.IntN(64<<10))
		if i%4 != 0 {
			data = bytes.Repeat(line, 1+r.IntN(800))
		}
		writeFile(b, filepath.Join(root, "files", fmt.Sprint(i%16), fmt.Sprint(i)), data, 0o644)
		total += int64(len(data))
	}
	return root, total
}

func benchRepo(b *testing.B) *repository.Repository {
	b.Helper()
	r, err := repository.Init(context.Background(), mem.New(), "pw", repository.InitOptions{KDF: testKDF})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	return r
}

// BenchmarkBackup measures an initial backup (nothing to deduplicate
// against) into memory: the CPU side of backup throughput.
func BenchmarkBackup(b *testing.B) {
	src, total := benchData(b)
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := benchRepo(b)
		b.StartTimer()
		if _, _, err := r.Backup(context.Background(), repository.BackupOptions{Root: src}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBackupUnchanged measures a re-backup with nothing changed.
func BenchmarkBackupUnchanged(b *testing.B) {
	src, total := benchData(b)
	r := benchRepo(b)
	if _, _, err := r.Backup(context.Background(), repository.BackupOptions{Root: src}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := r.Backup(context.Background(), repository.BackupOptions{Root: src}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestore measures a full restore from memory to disk.
func BenchmarkRestore(b *testing.B) {
	src, total := benchData(b)
	r := benchRepo(b)
	snap, _, err := r.Backup(context.Background(), repository.BackupOptions{Root: src})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(b.TempDir(), fmt.Sprint(i))
		if _, err := r.Restore(context.Background(), snap.ID, repository.RestoreOptions{Target: dst}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = os.RemoveAll(dst)
		b.StartTimer()
	}
}
