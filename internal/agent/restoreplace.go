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
//
// allowed are the prefixes (relative to the volume) the files may end up
// under: the workload's paths and the agent's restore_destinations.
func placeFiles(volume, staging string, files []string, dest string, allowed []string) error {
	policy, err := newPlacementPolicy(volume, allowed)
	if err != nil {
		return err
	}
	volumeReal := policy.volumeReal
	root, err := os.OpenRoot(volumeReal)
	if err != nil {
		return fmt.Errorf("open shared volume %s: %w", volume, err)
	}
	defer func() { _ = root.Close() }() // closing a read or directory handle loses nothing
	for _, f := range files {
		src := filepath.Join(staging, filepath.FromSlash(f))
		target := filepath.Clean(filepath.Join(dest, filepath.FromSlash(f)))
		if _, err := ResolveWorkloadPath(volume, target); err != nil {
			return fmt.Errorf("file %s: %w", f, err)
		}
		if err := placeFile(root, policy, src, target); err != nil {
			return fmt.Errorf("place %s at %s: %w", f, target, err)
		}
	}
	return nil
}

// placeFile renames src to target (relative to the volume root).
func placeFile(root *os.Root, policy *placementPolicy, src, target string) error {
	parent := filepath.Dir(target)
	// The root refuses any parent that leads out of the volume.
	if err := root.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	dir, err := root.OpenFile(parent, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer func() { _ = dir.Close() }() // closing a read or directory handle loses nothing
	where, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(dir.Fd())))
	if err != nil {
		return fmt.Errorf("find where %s leads: %w", parent, err)
	}
	if err := checkPlacement(policy.volumeReal, where); err != nil {
		return fmt.Errorf("%s: %w", parent, err)
	}
	real, _ := filepath.Rel(policy.volumeReal, filepath.Join(where, filepath.Base(target)))
	if !policy.permitsResolved(real) {
		return fmt.Errorf("%s leads to %s, outside the workload's paths and the agent's restore_destinations (%s); nothing was placed there", target, real, strings.Join(policy.lexical, ", "))
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
