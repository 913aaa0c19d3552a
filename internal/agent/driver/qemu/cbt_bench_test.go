package qemu_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/qemu"
)

// BenchmarkBlockBackup measures a VM backup through the block view after a
// 1% change of a 64 MiB and a 4 GiB qcow2 disk: the stun (QMP stop,
// checkpoint transaction, cont: what the agent's frozen section does for
// the disks), the incremental read (export, dirty extents, read them,
// finish) against the full read of the first backup, and the bytes read
// against the bytes changed (dirty extents, and widened to
// qemu.BlockSize blocks as the agent reads them).
//
//	go test ./internal/agent/driver/qemu -run '^$' -bench BlockBackup -benchtime 10x
func BenchmarkBlockBackup(b *testing.B) {
	for _, size := range []int64{64 << 20, 4 << 30} {
		b.Run(fmt.Sprintf("disk=%dMiB", size>>20), func(b *testing.B) { benchBlockBackup(b, size) })
	}
}

func benchBlockBackup(b *testing.B, size int64) {
	d := newTestVMSize(b, size)
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	dev, err := d.DiskDevice(ctx)
	if err != nil {
		b.Fatal(err)
	}
	write := func(off, n int64, p byte) {
		for done := int64(0); done < n; done += 64 << 20 { // qemu-io buffers each write whole
			k := min(64<<20, n-done)
			if out, err := d.HMP(ctx, fmt.Sprintf(`qemu-io -d %s "write -P %d %d %d"`, dev, p, off+done, k)); err != nil || strings.Contains(strings.ToLower(out), "error") {
				b.Fatalf("qemu-io: %v %s", err, out)
			}
		}
	}
	// The guest's data: the first 512 MiB (all of the small disk).
	write(0, min(size, 512<<20), 0x5a)
	// First backup: the full read.
	full := time.Now()
	fullRead, _, _, _ := blockBackupOnce(b, d)
	fullTime := time.Since(full)
	if fullRead != size {
		b.Fatalf("first backup read %d bytes, want the whole disk (%d)", fullRead, size)
	}

	var stuns, incr []time.Duration
	var changed, dirty, aligned int64
	for i := 0; b.Loop(); i++ {
		// 1% of the disk, in 64 KiB writes spread over it.
		n := size / 100 / (64 << 10)
		for k := int64(0); k < n; k++ {
			off := (k*size/n + int64(i)*(64<<10)) % size / (64 << 10) * (64 << 10)
			write(off, 64<<10, byte(i+1))
		}
		changed += n * (64 << 10)
		start := time.Now()
		_, dr, al, stun := blockBackupOnce(b, d)
		incr = append(incr, time.Since(start))
		stuns = append(stuns, stun)
		dirty += dr
		aligned += al
	}
	b.ReportMetric(ms(median(stuns)), "stun-median-ms")
	b.ReportMetric(ms(slices.Max(stuns)), "stun-max-ms")
	b.ReportMetric(ms(median(incr)), "incremental-ms")
	b.ReportMetric(ms(fullTime), "full-ms")
	b.ReportMetric(float64(dirty)/float64(changed), "dirty/changed")
	b.ReportMetric(float64(aligned)/float64(changed), "read/changed")
}

// blockBackupOnce runs one block backup as the agent does and returns the
// bytes read (the whole disk when full), the dirty bytes, the dirty bytes
// widened to qemu.BlockSize blocks, and the stun.
func blockBackupOnce(b *testing.B, d *qemu.Driver) (read, dirty, aligned int64, stun time.Duration) {
	ctx := context.Background()
	bb, err := d.PrepareBlockBackup(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := bb.Finish(ctx, true); err != nil {
			b.Fatal(err)
		}
	}()
	start := time.Now()
	if err := d.Pause(ctx); err != nil {
		b.Fatal(err)
	}
	if err := bb.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	if err := d.Resume(ctx); err != nil {
		b.Fatal(err)
	}
	stun = time.Since(start)
	if err := bb.Open(ctx); err != nil {
		b.Fatal(err)
	}
	v := bb.Disks[0]
	ext := []qemu.Extent{{Offset: 0, Length: v.Size}}
	if v.Base != 0 {
		if ext, err = v.Dirty(); err != nil {
			b.Fatal(err)
		}
	}
	const block = qemu.BlockSize
	var last int64 = -1
	var toRead []qemu.Extent
	for _, e := range ext {
		dirty += e.Length
		lo, hi := max(e.Offset/block*block, last), min((e.Offset+e.Length+block-1)/block*block, v.Size)
		if hi > lo {
			toRead = append(toRead, qemu.Extent{Offset: lo, Length: hi - lo})
			aligned += hi - lo
		}
		last = hi
	}
	err = v.ReadExtents(toRead, func(_ int64, data []byte) error {
		read += int64(len(data))
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return read, dirty, aligned, stun
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// newTestVMSize is NewTestVM with a qcow2 disk of the given size.
func newTestVMSize(t testing.TB, size int64) *qemu.Driver {
	d := NewTestVM(t)
	cfg := d.Config()
	img := filepath.Join(cfg.Dir, "disk.qcow2")
	if out, err := exec.Command("qemu-img", "resize", "-q", "-f", "qcow2", img, fmt.Sprint(size)).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img resize: %v\n%s", err, out)
	}
	if os.Geteuid() == 0 {
		giveTo(t, TestUser, filepath.Dir(filepath.Dir(img)), img)
	}
	return d
}
