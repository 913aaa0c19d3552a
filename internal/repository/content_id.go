package repository

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// FileContentID identifies a file's content in a snapshot without reading
// it: a hash over its size and the ids of its chunks (which are keyed by the
// repository's secret, so the value says nothing about the plaintext). Two
// versions with the same content id hold the same bytes.
func (r *Repository) FileContentID(ctx context.Context, snapshotID, p string) (string, error) {
	snap, err := r.Snapshot(ctx, snapshotID)
	if err != nil {
		return "", err
	}
	nd, err := r.findNode(ctx, snap.Tree, cleanSnapPath(p))
	if err != nil {
		return "", fmt.Errorf("content of %s in snapshot %s: %w", p, snap.ShortID(), err)
	}
	h := sha256.New()
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], nd.Size)
	h.Write(buf[:])
	for _, c := range nd.Content {
		h.Write(c.ID[:])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
