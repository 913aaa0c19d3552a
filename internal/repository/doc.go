// Package repository stores deduplicated, compressed, encrypted,
// verifiable point-in-time snapshots of directory trees on a Backend (a
// local or shared directory, an S3 bucket, memory). Agents back up into it
// directly; the engine lists, verifies and applies retention through it.
// The byte-level format is specified in FORMAT.md (version 1).
//
// # Glossary
//
//   - Repository: everything under one backend location: a config, key
//     files, packs, index files, snapshots and locks. Opened with a password.
//   - Key (password slot): a key file wraps the random master key with a
//     key derived from one password (argon2id). Several passwords can open
//     one repository; changing a password re-wraps, it never re-encrypts.
//   - Master key: the AES-256-GCM key that encrypts everything, the BLAKE3
//     key that names chunks, and the seed of the chunker.
//   - Chunk: a piece of file content, cut by content-defined chunking
//     (FastCDC, 512 KiB–4 MiB, about 1 MiB on average) or, for large images
//     and files with changed-range hints, in fixed-size blocks. A chunk of
//     zeros is not stored: the file records a hole.
//   - Blob: a stored unit, a chunk (data blob) or a tree (tree blob). Its id
//     is the keyed BLAKE3 hash of its content, so equal content is stored
//     once (deduplication) and ids reveal nothing without the key. A blob is
//     zstd-compressed unless that does not pay, then encrypted with its type
//     and id as associated data.
//   - Pack: a file of blobs (about 16 MiB) followed by an encrypted header
//     listing them. Packs are written once and never changed; prune deletes
//     or replaces whole packs.
//   - Index: files mapping blob id → pack, offset, length. Loaded into
//     memory on use. Redundant with the pack headers: RebuildIndex
//     recreates it from them.
//   - Tree: one directory: its entries (files with mode, mtime, owner,
//     size and chunk list; subdirectories by tree id; symlinks), stored as a
//     tree blob. Unchanged directories produce identical trees and are
//     stored once.
//   - Snapshot (recovery point): a small encrypted manifest naming a root
//     tree plus metadata: workload, node, cluster, protection group, run id,
//     consistency (application or crash), tags, labels, time, parent. Its id
//     is the hash of the stored manifest. The node is informational: a
//     snapshot restores on any node.
//   - Parent: the previous snapshot of the same workload/cluster/group; files
//     whose size, mtime and inode are unchanged are taken from it unread.
//     A changed file in fixed-size blocks without changed-range hints is
//     read in full (several reads in flight), but each block equal to the
//     parent's block at the same offset (by a seeded XXH3-128 fast hash
//     recorded in the tree, or by content id) is taken from the parent;
//     only the changed blocks are compressed, encrypted and stored.
//   - Lock: a small object saying an operation is running. Backup, forget,
//     restore and verify take shared locks (any number at once); prune and
//     rebuild-index take the exclusive lock. A held lock is rewritten every
//     minute; a lock not refreshed for StaleLockAge (5 minutes, by the
//     injected clock) is stale and ignored. A lock whose holder ran on this
//     host (same boot id and PID namespace) and is gone (its PID
//     unused or reused by a process with another start time) is stale at
//     once: a killed agent blocks no prune, and unlock removes its lock.
//   - Copy: snapshots copied to a second repository (Copy; `repo copy`).
//     Only blobs the target lacks are sent; between repositories with other
//     keys every blob is decrypted, re-hashed under the target's chunk key
//     and re-encrypted, and trees are rewritten with the new ids (chunk
//     boundaries stay as the source cut them). The copy keeps the source's
//     metadata and is labelled with the source repository and snapshot ids,
//     which makes a rerun skip copies already made; packs are indexed every
//     few packs, so an interrupted copy resumes where it stopped.
//
// # State model of a backup
//
//	locked (shared) → index loaded → parent chosen →
//	walking ∥ reading+chunking ∥ hashing+compressing+encrypting ∥ uploading packs
//	→ trees stored → packs flushed → index saved → snapshot saved → unlocked
//
// Every uploaded pack is complete and immutable before any index names it,
// and the snapshot is saved only after the index covering all its blobs.
// Interrupted at any point, the repository stays valid: at worst it holds
// packs no index names (reported by Verify as unindexed, removed by Prune,
// adopted by RebuildIndex) and a stale lock. Index files are saved every 64
// packs, so a rerun deduplicates against what the interrupted run uploaded.
//
// # State model of a prune
//
//	locked (exclusive) → index read in full → snapshots and trees marked →
//	packs classified (keep / repack / delete) → live blobs of packs to
//	repack copied into new packs → new index saved → old index files
//	deleted → unreferenced packs deleted → unlocked
//
// Prune refuses to delete anything when a snapshot, tree or index file is
// unreadable. Interrupted after the new packs: they are unindexed garbage.
// After the new index: old and new index files overlap (duplicates are
// harmless). After deleting old index files: the packs left to delete are
// unindexed garbage. Each state is a valid repository, and the next prune
// finishes the job.
//
// # Damage
//
// Every blob, header, index file and manifest is authenticated on read, so
// corruption is detected, never returned as data. Verify names damaged
// packs, chunks, snapshots and files; Restore restores every file it can
// and returns a *DamageError naming the others.
package repository
