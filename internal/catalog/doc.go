// Package catalog holds the record types of the engine's durable state and
// the rules every catalog implementation shares. The engine reaches a catalog
// through its Store interface (internal/engine); implementations live in
// subpackages: sqlite (embedded default, one file), postgres (shared by
// several engines), memstore (in memory, for tests). catalogtest is the
// conformance suite all of them pass; migrate applies their schema changes.
//
// # Glossary
//
//   - catalog: the engine's durable state — registered clusters, and the
//     coordinator lease of each — kept in one database. Later: protection
//     groups, schedules, runs and their steps, the recovery-point index,
//     restore operations.
//   - cluster: a named set of nodes sharing one volume, registered by the
//     clusterguard_cluster resource. Stored with its master node policy,
//     join order and the identity of its shared volume.
//   - node: one member of a cluster, reached through the agent at its
//     endpoint. A cluster keeps its nodes in the order the user listed them.
//   - lease: the coordinator role for a cluster's shared volume (E3): the one
//     node allowed to do I/O on the volume for a run. It has a holder (node),
//     an owner (the engine instance that granted it, for diagnostics), an
//     epoch and an expiry time.
//   - epoch: the fencing token of a lease. Every grant of a cluster's lease,
//     including a renewal by the same holder, gets the previous highest epoch
//     plus one. The counter is stored apart from the lease and is never
//     reset, not by release, expiry, or deleting and re-registering the
//     cluster; the first grant is epoch 1.
//   - fencing: agents remember the highest epoch they have seen for a
//     cluster and refuse work carrying a lower one, so a coordinator whose
//     lease expired (a paused process, a partitioned engine) cannot corrupt
//     the volume after another has taken over, even if it still believes it
//     holds the role.
//
// # Lease state model
//
// A cluster's lease is in one of three states; "expired" is a matter of the
// caller's clock (now >= ExpiresAt), not a write:
//
//	free     no lease (never granted, or released)
//	held     granted to a holder, now < ExpiresAt
//	expired  granted, now >= ExpiresAt
//
// Transitions (each one atomic write; epoch+1 is the cluster's highest epoch
// ever plus one):
//
//	free             AcquireLease(h)          -> held by h, epoch+1
//	held by h        AcquireLease(h)          -> held by h, epoch+1 (renewal)
//	held by h        AcquireLease(other)      -> unchanged, ErrConflict
//	expired          AcquireLease(anyone)     -> held by the caller, epoch+1
//	held or expired  ReleaseLease(its epoch)  -> free
//	held or expired  ReleaseLease(other)      -> unchanged, ErrConflict
//	free             ReleaseLease(any)        -> free, ErrNotFound
//
// Under contention exactly one AcquireLease wins and the losers consume no
// epoch.
//
// # Errors
//
// Implementations wrap ErrNotFound and ErrConflict (test with errors.Is) and
// name the record — cluster, holder, epoch — in the message. Input that can
// never be stored (empty names, duplicate node names, a non-positive ttl) is
// refused by ValidateCluster and ValidateLeaseRequest with an error wrapping
// neither.
//
// # Times
//
// Stores keep times exactly, to the nanosecond, but need not keep their
// location or monotonic reading: compare with time.Equal. The zero time round-trips as
// zero.
package catalog
