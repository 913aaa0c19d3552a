package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// VolumeIDFile is where a shared volume stores its identity, relative to the volume.
var VolumeIDFile = filepath.Join(MetadataDir, "volume-id")

var volumeIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// EnsureVolumeID returns the shared volume's identity, creating it (a random
// 128-bit hex id) when the volume has none yet. Agents on several nodes may
// start at once against a fresh volume: the id is published with a hard link,
// which fails if another agent won, so every agent ends up reading the same id
// and no reader can see a half-written file.
func EnsureVolumeID(sharedVolume string) (string, error) {
	path := filepath.Join(sharedVolume, VolumeIDFile)
	if id, err := ReadVolumeID(sharedVolume); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("create %s on the shared volume: %w; make the volume writable by the agent", filepath.Dir(path), err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
	tmp, err := os.CreateTemp(filepath.Dir(path), ".volume-id.tmp-*")
	if err != nil {
		return "", fmt.Errorf("create volume id: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(id + "\n")
	serr := tmp.Sync()
	if err := errors.Join(werr, serr, tmp.Close()); err != nil {
		return "", fmt.Errorf("write volume id: %w", err)
	}
	switch err := os.Link(tmp.Name(), path); {
	case err == nil:
		return id, nil
	case errors.Is(err, fs.ErrExist):
		// Another agent created it first; its id is the volume's id.
		return ReadVolumeID(sharedVolume)
	default:
		// Some file systems have no hard links: fall back to an exclusive create.
		return createVolumeIDExclusive(sharedVolume, path, id, err)
	}
}

func createVolumeIDExclusive(sharedVolume, path, id string, linkErr error) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return ReadVolumeID(sharedVolume)
	}
	if err != nil {
		return "", fmt.Errorf("create %s: %w (hard link failed too: %w); make the shared volume writable by the agent", path, err, linkErr)
	}
	_, werr := f.WriteString(id + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return id, nil
}

// ReadVolumeID reads the shared volume's identity without creating it.
func ReadVolumeID(sharedVolume string) (string, error) {
	path := filepath.Join(sharedVolume, VolumeIDFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(data))
	if !volumeIDPattern.MatchString(id) {
		return "", fmt.Errorf("%s holds %q, not a volume id (32 hex digits); if the volume was copied or damaged, restore the file from another node's view of the volume, or remove it to give the volume a new identity", path, id)
	}
	return id, nil
}
