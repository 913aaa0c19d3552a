package repository

import (
	"encoding/binary"

	"github.com/zeebo/blake3"
	"github.com/zeebo/xxh3"
)

// Fast block hashes let a backup without changed-range hints tell which
// blocks of a changed fixed-block file are unchanged at about 30 times the
// speed of the keyed BLAKE3 content id (60 GB/s against 2 GB/s per core on
// the benchmark VM), which halves the CPU of re-reading a large image.
//
// XXH3-128 is not a cryptographic hash. It is seeded with a secret derived
// from the master key and only ever compared with the hash of the block at
// the same offset of the same file in the parent snapshot, so a false
// match needs either a 2^-128 accident or someone who can write the file,
// knows the repository key and crafts a collision for that one block;
// and such a writer could write the old content anyway. The content id of
// every block that is stored is still the keyed BLAKE3.
type blockHasher struct{ seed uint64 }

func newBlockHasher(r *Repository) blockHasher {
	var k [8]byte
	blake3.DeriveKey("clusterguard 2024 block fast hash seed v1", r.key.ChunkID, k[:])
	return blockHasher{seed: binary.LittleEndian.Uint64(k[:])}
}

func (h blockHasher) sum(data []byte) [16]byte {
	return xxh3.Hash128Seed(data, h.seed).Bytes()
}
