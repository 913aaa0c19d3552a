package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/runas"
)

// maxBackingDepth bounds a disk's backing chain; real chains are short.
const maxBackingDepth = 16

// imageInfo is what the driver reads of `qemu-img info --output=json`.
type imageInfo struct {
	Format          string `json:"format"`
	BackingFilename string `json:"backing-filename"`
	BackingFormat   string `json:"backing-filename-format"`
	FormatSpecific  struct {
		Data struct {
			DataFile string `json:"data-file"`
		} `json:"data"`
	} `json:"format-specific"`
}

// layer is one image of a disk's backing chain, as checked: its resolved
// path and its format.
type layer struct {
	path, format string
	files        []*os.File // the descriptors checked, handed to QEMU (read-write first for the top image)
}

// checkDisk refuses a disk image that would make QEMU open a file outside
// the workload's directory: the image itself through a symbolic link, a
// backing file (qcow2 images name theirs, and a crafted one can name any
// host file) or an external data file (refused outright). It walks the
// chain one image at a time with `qemu-img info` (which opens an image
// without its backing file), run as QEMU's user, and opens only the images
// it has resolved inside the directory: a backing name is resolved (links
// and all) before anything opens it. Each backing file must name its
// format. It also checks that QEMU's user can use every file of the chain
// (read and write the disk, read its backing files). It returns the chain,
// top first, with resolved paths and the open descriptors (openBeneath)
// the check read; the caller closes them. Start gives QEMU exactly that
// chain (blockdevArg), so QEMU neither opens a path, nor resolves a backing
// name, nor probes a format itself.
func (d *Driver) checkDisk(ctx context.Context, disk string) (chain []layer, err error) {
	defer func() {
		if err != nil {
			closeChains([][]layer{chain})
			chain = nil
		}
	}()
	root, err := filepath.EvalSymlinks(d.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolve the workload directory %s: %w", d.cfg.Dir, err)
	}
	path, format, access := filepath.Join(d.cfg.Dir, disk), formatOf(disk), uint32(runas.Read|runas.Write)
	for depth := 0; ; depth++ {
		if depth > maxBackingDepth {
			return nil, fmt.Errorf("disk %s: its backing chain is longer than %d images; commit it (qemu-img commit) into fewer", disk, maxBackingDepth)
		}
		real, err := inside(root, path)
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", disk, err)
		}
		if err := d.user.Can(real, access); err != nil {
			return nil, fmt.Errorf("disk %s: QEMU runs as %s (uid %d), who cannot use %s: %w; give %s access (chown or a group) on every node", disk, d.user.Name, d.user.UID, real, err, d.user.Name)
		}
		files, err := openBeneath(root, real, access&runas.Write != 0)
		if err != nil {
			return chain, fmt.Errorf("disk %s: %w", disk, err)
		}
		chain = append(chain, layer{path: real, format: format, files: files})
		if format == "raw" {
			return chain, nil // a raw image names no other file
		}
		info, err := d.imageInfo(ctx, files[len(files)-1], real, format)
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", disk, err)
		}
		if info.Format != format {
			return nil, fmt.Errorf("disk %s: qemu-img reports %s as %q, not %q", disk, real, info.Format, format)
		}
		if df := info.FormatSpecific.Data.DataFile; df != "" {
			// QEMU would resolve a relative name against its own working
			// directory, and nothing pins the data file to the checked one.
			return nil, fmt.Errorf("disk %s: image %s has an external data file %q, which the qemu driver does not support; convert it into a self-contained image (qemu-img convert -O qcow2 %s new.qcow2)", disk, real, df, real)
		}
		if info.BackingFilename == "" {
			return chain, nil
		}
		// Resolved here, beside the image's resolved path (qemu-img saw
		// only a descriptor); QEMU is given the result, never the name.
		backing := info.BackingFilename
		if strings.HasPrefix(backing, "json:") || !filepath.IsAbs(backing) && strings.Contains(backing, ":") {
			return nil, fmt.Errorf("disk %s: image %s names the backing file %q, which is not a plain file path (a protocol or json: description); QEMU may only open files inside the workload directory %s", disk, real, backing, d.cfg.Dir)
		}
		if !filepath.IsAbs(backing) {
			backing = filepath.Join(filepath.Dir(real), backing)
		}
		if info.BackingFormat == "" {
			return nil, fmt.Errorf("disk %s: image %s does not name the format of its backing file %s, so QEMU would guess it; record it with qemu-img rebase -u -b %s -F <qcow2|raw> %s", disk, real, backing, info.BackingFilename, real)
		}
		if info.BackingFormat != "qcow2" && info.BackingFormat != "raw" {
			return nil, fmt.Errorf("disk %s: image %s names a backing file of format %q; only qcow2 and raw are allowed", disk, real, info.BackingFormat)
		}
		path, format, access = backing, info.BackingFormat, runas.Read
	}
}

// inside resolves path's symbolic links and returns the result if it is
// root or below it.
func inside(root, path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w; create it (qemu-img create) or restore it", path, err)
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%s resolves to %s, outside the workload directory %s; QEMU opens only files of the workload: refused (copy the file into the workload directory, or qemu-img convert the chain into one image)", path, real, root)
	}
	return real, nil
}

// imageInfo runs qemu-img info on one image, without its backing file, as
// QEMU's user and with the format given (no probing).
func (d *Driver) imageInfo(ctx context.Context, f *os.File, path, format string) (imageInfo, error) {
	// A QEMU killed a moment ago holds the image's lock until its process is
	// reaped; a lock held longer is a QEMU still using the image, which the
	// error then reports.
	deadline := time.Now().Add(lockWait)
	for {
		info, err := d.imageInfoOnce(ctx, f, path, format)
		if err == nil || !strings.Contains(err.Error(), "lock") || time.Now().After(deadline) || ctx.Err() != nil {
			return info, err
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// lockWait bounds how long imageInfo waits for a just-killed QEMU's image
// lock to go.
const lockWait = 5 * time.Second

func (d *Driver) imageInfoOnce(ctx context.Context, f *os.File, path, format string) (imageInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	// The descriptor the agent opened (3 in qemu-img), so the file checked
	// is the file QEMU gets.
	cmd := osexec.CommandContext(ctx, d.qemuImg, "info", "--output=json", "-f", format, "/proc/self/fd/3")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: d.cred, Setsid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.Output()
	if err != nil {
		detail := ""
		if ee := (*osexec.ExitError)(nil); errors.As(err, &ee) {
			detail = strings.TrimSpace(string(ee.Stderr))
		}
		return imageInfo{}, fmt.Errorf("qemu-img info %s: %w %s", path, err, detail)
	}
	var info imageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return imageInfo{}, fmt.Errorf("qemu-img info %s: unreadable output: %w", path, err)
	}
	return info, nil
}

// blockdevArg is the -blockdev tree of one checked disk: every image of the
// chain by the descriptors the check read (fdset names /dev/fdset/N for a
// layer) and its format, each image's backing given as the next node and
// the last one's as null, so QEMU opens exactly the checked files and reads
// no backing name or format from an image header.
func blockdevArg(node string, chain []layer, fdset func(layer) string) (string, error) {
	var next any
	for i := len(chain) - 1; i >= 0; i-- {
		n := map[string]any{
			"driver": chain[i].format,
			"file":   map[string]any{"driver": "file", "filename": fdset(chain[i])},
		}
		if chain[i].format == "qcow2" {
			n["backing"] = next // nil: JSON null, no backing file
		}
		if i > 0 {
			n["read-only"] = true
		}
		next = n
	}
	top := next.(map[string]any)
	top["node-name"] = node
	// Writeback: guest writes reach the host's page cache, which the
	// agent's copy reads; QMP stop flushes what QEMU itself holds.
	top["cache"] = map[string]any{"direct": false, "no-flush": false}
	b, err := json.Marshal(top)
	return string(b), err
}
