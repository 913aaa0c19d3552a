package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// placeFiles moves restored files to dest (relative to the volume) or, when
// dest is empty, over their original paths; each move is one rename.
//
// The workload can change its paths while the restore runs (the restore of
// single files does not stop it), so each target's directory is opened
// first and the rename is made relative to that descriptor, after the
// kernel has said where the opened directory is: a symlink swapped in
// after validation cannot redirect the file out of the volume or into
// clusterguard's metadata directory.
func placeFiles(volume, staging string, files []string, dest string) error {
	volumeReal, err := filepath.EvalSymlinks(volume)
	if err != nil {
		return fmt.Errorf("resolve shared volume %s: %w", volume, err)
	}
	root, err := os.OpenRoot(volumeReal)
	if err != nil {
		return fmt.Errorf("open shared volume %s: %w", volume, err)
	}
	defer root.Close()
	for _, f := range files {
		src := filepath.Join(staging, filepath.FromSlash(f))
		target := filepath.Clean(filepath.Join(dest, filepath.FromSlash(f)))
		if _, err := ResolveWorkloadPath(volume, target); err != nil {
			return fmt.Errorf("file %s: %w", f, err)
		}
		if err := placeFile(root, volumeReal, src, target); err != nil {
			return fmt.Errorf("place %s at %s: %w", f, target, err)
		}
	}
	return nil
}

// placeFile renames src to target (relative to the volume root).
func placeFile(root *os.Root, volumeReal, src, target string) error {
	parent := filepath.Dir(target)
	// The root refuses any parent that leads out of the volume.
	if err := root.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	dir, err := root.OpenFile(parent, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	where, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(dir.Fd())))
	if err != nil {
		return fmt.Errorf("find where %s leads: %w", parent, err)
	}
	if err := checkPlacement(volumeReal, where); err != nil {
		return fmt.Errorf("%s: %w", parent, err)
	}
	return unix.Renameat(unix.AT_FDCWD, src, int(dir.Fd()), filepath.Base(target))
}

// checkPlacement refuses a resolved directory outside the volume or inside
// its metadata directory.
func checkPlacement(volumeReal, dir string) error {
	inside, err := filepath.Rel(volumeReal, dir)
	if err != nil || inside == ".." || strings.HasPrefix(inside, ".."+string(filepath.Separator)) {
		return fmt.Errorf("it leads out of the shared volume (to %s); nothing was placed there", dir)
	}
	if first, _, _ := strings.Cut(inside, string(filepath.Separator)); first == MetadataDir {
		return fmt.Errorf("it leads into %s (to %s), which clusterguard reserves for its own metadata; nothing was placed there", MetadataDir, dir)
	}
	return nil
}
