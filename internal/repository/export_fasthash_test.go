package repository

import "context"

// FastHashesForTest returns the fast hashes recorded for file p of a snapshot.
func (r *Repository) FastHashesForTest(ctx context.Context, snapshotID, p string) ([][16]byte, error) {
	snap, err := r.Snapshot(ctx, snapshotID)
	if err != nil {
		return nil, err
	}
	nd, err := r.findNode(ctx, snap.Tree, cleanSnapPath(p))
	if err != nil {
		return nil, err
	}
	return nd.FastHash, nil
}

// BlockFastHashForTest is the fast hash this repository gives data.
func (r *Repository) BlockFastHashForTest(data []byte) [16]byte { return newBlockHasher(r).sum(data) }
