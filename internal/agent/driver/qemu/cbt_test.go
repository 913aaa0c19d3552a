package qemu_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/qemu"
)

// vmDisk is a model of a test VM's disk: every write the test makes
// through QEMU is applied to it too.
type vmDisk struct {
	t    testing.TB
	d    *qemu.Driver
	data []byte
}

func (m *vmDisk) write(off, n int64, pattern byte) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dev, err := m.d.DiskDevice(ctx)
	if err != nil {
		m.t.Fatal(err)
	}
	out, err := m.d.HMP(ctx, fmt.Sprintf(`qemu-io -d %s "write -P %d %d %d"`, dev, pattern, off, n))
	if err != nil || strings.Contains(strings.ToLower(out), "error") {
		m.t.Fatalf("qemu-io write %d+%d: %v %s", off, n, err, out)
	}
	for i := off; i < off+n; i++ {
		m.data[i] = pattern
	}
}

// backupResult is what one block backup read.
type backupResult struct {
	base, gen int64
	image     []byte // the previous image with the dirty extents read over it (or a full read)
	read      int64
	reason    string
}

// blockBackup runs one block backup the way the agent does: prepare,
// pause, checkpoint, resume, then read while the VM runs (writing during
// the read, which the view must not show: during is applied to the model
// only after the checkpoint's copy is taken), and finish.
func blockBackup(t *testing.T, m *vmDisk, prev []byte, during func(), ok bool) backupResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := m.d.PrepareBlockBackup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Finish(ctx, ok); err != nil {
			t.Error(err)
		}
	}()
	do(t, "pause", m.d.Pause)
	if err := b.Checkpoint(ctx); err != nil {
		_ = m.d.Resume(ctx)
		t.Fatal(err)
	}
	do(t, "resume", m.d.Resume)
	want := bytes.Clone(m.data) // the disk at the checkpoint
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if during != nil {
		during()
	}
	v := b.Disks[0]
	res := backupResult{base: v.Base, gen: b.Generation, reason: v.Reason}
	extents := []qemu.Extent{{Offset: 0, Length: v.Size}}
	if v.Base != 0 {
		if extents, err = v.Dirty(); err != nil {
			t.Fatal(err)
		}
		res.image = bytes.Clone(prev)
	} else {
		res.image = make([]byte, v.Size)
	}
	if v.Base != 0 {
		// Incremental: several requests in flight.
		err := v.ReadExtents(extents, func(off int64, data []byte) error {
			res.read += int64(copy(res.image[off:], data))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	} else {
		for _, e := range extents {
			if _, err := v.ReadAt(res.image[e.Offset:e.Offset+e.Length], e.Offset); err != nil {
				t.Fatal(err)
			}
			res.read += e.Length
		}
	}
	if !bytes.Equal(res.image, want) {
		t.Fatalf("backup (base %d) differs from the disk at its checkpoint", v.Base)
	}
	return res
}

// Block backups read the frozen view: the first in full, later ones only
// the extents of the dirty bitmap; a failed backup merges its changes back;
// a restart (a new QEMU process on the same image, as after a move to
// another node) keeps the tracking; a removed bitmap means a full read.
func TestBlockBackupIncremental(t *testing.T) {
	d := NewTestVM(t)
	do(t, "start", d.Start)
	m := &vmDisk{t: t, d: d, data: make([]byte, 64<<20)}
	m.write(0, 1<<20, 0x11)
	m.write(10<<20, 64<<10, 0x12)

	r1 := blockBackup(t, m, nil, func() { m.write(0, 64<<10, 0x21) }, true)
	if r1.base != 0 || r1.reason == "" {
		t.Fatalf("first backup: base %d (%q), want a full read with a reason", r1.base, r1.reason)
	}
	m.write(20<<20, 128<<10, 0x22)
	r2 := blockBackup(t, m, r1.image, nil, true)
	if r2.base != r1.gen {
		t.Fatalf("second backup: base %d, want the first's checkpoint %d (%s)", r2.base, r1.gen, r2.reason)
	}
	// The write during the first read (64 KiB) and the one since (128 KiB).
	if r2.read > 2*(192<<10) {
		t.Errorf("second backup read %d bytes for 192 KiB changed", r2.read)
	}

	// A failed backup: its changes are merged back into the base bitmap.
	m.write(30<<20, 64<<10, 0x31)
	blockBackup(t, m, r2.image, func() { m.write(35<<20, 64<<10, 0x33) }, false)
	m.write(40<<20, 64<<10, 0x32)
	r4 := blockBackup(t, m, r2.image, nil, true)
	if r4.base != r2.gen {
		t.Fatalf("after a failed backup: base %d, want %d", r4.base, r2.gen)
	}

	// A new QEMU process on the same image.
	do(t, "stop", d.Stop)
	do(t, "start", d.Start)
	m.write(50<<20, 64<<10, 0x41)
	r5 := blockBackup(t, m, r4.image, nil, true)
	if r5.base != r4.gen {
		t.Fatalf("after a restart: base %d, want %d (%s)", r5.base, r4.gen, r5.reason)
	}
	if r5.read > 2*(64<<10) {
		t.Errorf("after a restart: read %d bytes for 64 KiB changed", r5.read)
	}

	// The bitmap removed offline: a full read, still correct.
	do(t, "stop", d.Stop)
	img := filepath.Join(d.Config().Dir, "disk.qcow2")
	if out, err := exec.Command("qemu-img", "bitmap", "--remove", img, fmt.Sprintf("%s%d", qemu.BitmapPrefix, r5.gen)).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img bitmap --remove: %v\n%s", err, out)
	}
	do(t, "start", d.Start)
	m.write(60<<20, 64<<10, 0x51)
	r6 := blockBackup(t, m, r5.image, nil, true)
	if r6.base != 0 || !strings.Contains(r6.reason, "no dirty bitmap") {
		t.Fatalf("bitmap removed: base %d (%q), want a full read", r6.base, r6.reason)
	}
	r7 := blockBackup(t, m, r6.image, nil, true)
	if r7.base != r6.gen || r7.read != 0 {
		t.Fatalf("nothing changed: base %d read %d, want base %d and nothing read", r7.base, r7.read, r6.gen)
	}

	// QEMU killed while it had the image's stored bitmap loaded (in use):
	// the bitmap is marked inconsistent and the next backup reads
	// everything.
	do(t, "stop", d.Stop)
	do(t, "start", d.Start)
	m.write(61<<20, 64<<10, 0x61)
	do(t, "pause", d.Pause) // flushes the write (the model has it), not the bitmap
	if err := syscall.Kill(vmPID(t, d), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, d, api.StateFailed)
	do(t, "stop", d.Stop)
	do(t, "start", d.Start)
	r8 := blockBackup(t, m, r7.image, nil, true)
	if r8.base != 0 || !strings.Contains(r8.reason, "inconsistent") {
		t.Fatalf("after a crash: base %d (%q), want a full read because the bitmap is inconsistent", r8.base, r8.reason)
	}
	r9 := blockBackup(t, m, r8.image, nil, true)
	if r9.base != r8.gen {
		t.Fatalf("after the full read: base %d (%q), want %d", r9.base, r9.reason, r8.gen)
	}

	// An agent that died mid-backup leaves its view in QEMU: the next
	// backup clears it and goes on from the abandoned checkpoint.
	ctx := context.Background()
	m.write(62<<20, 64<<10, 0x71)
	left, err := d.PrepareBlockBackup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	do(t, "pause", d.Pause)
	if err := left.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	do(t, "resume", d.Resume)
	atLeft := bytes.Clone(m.data)
	if err := left.Open(ctx); err != nil {
		t.Fatal(err)
	}
	m.write(63<<20, 64<<10, 0x72)
	r10 := blockBackup(t, m, atLeft, nil, true)
	if r10.base != left.Generation || r10.read > 2*(64<<10) {
		t.Fatalf("after an abandoned backup: base %d read %d, want base %d and 64 KiB read", r10.base, r10.read, left.Generation)
	}
}

func waitStatus(t *testing.T, d *qemu.Driver, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _ := d.Status(context.Background()); st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the VM did not become %s", want)
		}
		time.Sleep(20 * time.Millisecond) // polling for the process to go
	}
}
