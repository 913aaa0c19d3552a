package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MetadataDir is the directory on the shared volume that belongs to clusterguard
// itself (volume identity, later: locks and fencing tokens). Workload paths may not
// point into it.
const MetadataDir = ".clusterguard"

// ResolveWorkloadPath turns a workload data path, relative to the shared volume,
// into an absolute path inside the volume. It refuses absolute paths, paths that
// climb out of the volume with "..", the volume root itself, clusterguard's own
// metadata directory, and paths that leave the volume, or lead into the metadata
// directory, through a symlink. Paths that do not exist yet are allowed (a
// workload may create its data directory); the existing part of the path is
// checked.
func ResolveWorkloadPath(sharedVolume, rel string) (string, error) {
	if rel == "" {
		return "", errors.New("the path is empty; give a directory relative to the shared volume, e.g. \"apps/web\"")
	}
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("%q is absolute; workload paths are relative to the shared volume %s (e.g. \"apps/web\")", rel, sharedVolume)
	}
	clean := filepath.Clean(rel)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%q climbs out of the shared volume %s with \"..\"; use a path inside the volume", rel, sharedVolume)
	}
	if clean == "." {
		return "", fmt.Errorf("%q is the shared volume itself; name a directory inside it (e.g. \"apps/web\")", rel)
	}
	if first, _, _ := strings.Cut(clean, string(filepath.Separator)); first == MetadataDir {
		return "", fmt.Errorf("%q is inside %s, which clusterguard reserves for its own metadata; choose another directory", rel, MetadataDir)
	}

	volumeReal, err := filepath.EvalSymlinks(sharedVolume)
	if err != nil {
		return "", fmt.Errorf("resolve shared volume %s: %w", sharedVolume, err)
	}
	// Resolve the longest existing prefix: a symlink anywhere in it may lead out of
	// the volume. Components that do not exist yet cannot be symlinks.
	existing := clean
	for {
		_, err := os.Lstat(filepath.Join(sharedVolume, existing))
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("check workload path %q: %w", rel, err)
		}
		parent := filepath.Dir(existing)
		if parent == "." {
			existing = ""
			break
		}
		existing = parent
	}
	if existing != "" {
		real, err := filepath.EvalSymlinks(filepath.Join(sharedVolume, existing))
		if err != nil {
			return "", fmt.Errorf("resolve workload path %q: %w", rel, err)
		}
		inside, err := filepath.Rel(volumeReal, real)
		if err != nil || inside == ".." || strings.HasPrefix(inside, ".."+string(filepath.Separator)) {
			return "", fmt.Errorf("%q leads out of the shared volume %s through a symlink (it resolves to %s); point the path at a directory inside the volume", rel, sharedVolume, real)
		}
		if inside == "." {
			return "", fmt.Errorf("%q resolves to the shared volume itself through a symlink; name a directory inside it", rel)
		}
		// The metadata guard above looks at the path as written; a symlink
		// (e.g. a workload's "link" -> "../.clusterguard") could still lead
		// into it, so the resolved path is checked too.
		if first, _, _ := strings.Cut(inside, string(filepath.Separator)); first == MetadataDir {
			return "", fmt.Errorf("%q leads into %s through a symlink (it resolves to %s); clusterguard reserves that directory for its own metadata, so choose a path without that symlink", rel, MetadataDir, real)
		}
	}
	return filepath.Join(sharedVolume, clean), nil
}
