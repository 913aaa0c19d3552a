// Package catalog holds the record types of the engine's durable state and
// the rules every catalog implementation shares. The engine reaches a catalog
// through its Store interface (internal/engine); implementations live in
// subpackages: sqlite (embedded default, one file), postgres (shared by
// several engines), memstore (in memory, for tests). sqlite and postgres are
// thin: they open the database and migrate it, and sqlstore holds their one
// set of queries, with a dialect for what the two spell differently.
// catalogtest is the conformance suite all of them pass; migrate applies
// their schema changes.
//
// # Glossary
//
//   - catalog: the engine's durable state — registered clusters and
//     repositories, the coordinator lease of each cluster, protection groups,
//     runs and their steps, and the recovery-point index — kept in one
//     database, and restore operations with their steps, backup schedules
//     with their slots, daemon leadership and liveness, and agent
//     registrations.
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
//   - repository: a registered backup location (a directory, or an
//     S3-compatible bucket and prefix) with the credentials agents need to
//     reach it and the password that unlocks its encryption key. See
//     Secrets.
//   - protection group: a set of workloads of one cluster backed up together
//     into one repository with one policy: an explicit list and/or a
//     selector (name pattern, driver, node) minus exclusions; consistency
//     (application quiesces, crash does not); node order policy and critical
//     workloads (E5); where files are extracted (E6); retention; and the RPO.
//     A group names its cluster and repository but does not depend on them:
//     deleting either leaves the group, and a group may be stored first.
//   - run: one federated backup of a protection group (E1–E8), identified by
//     an id the engine chooses. It records the master (a node or "engine"),
//     the nodes in the order visited, the workloads expected, and its status.
//   - step: one workload backed up, failed or skipped on one node within a
//     run, numbered from 1 by Seq in the order the engine took them. Phase
//     "node" is the ordered visit, "verify" the catch-up of workloads missed
//     (E8). A step carries the fencing epoch its node worked under. Steps are
//     added, never changed, and go with their run when it is deleted.
//   - recovery point: the index entry of one snapshot in a repository: which
//     workload of which cluster and group, made by which run on which node,
//     when, and how big. It is restorable to any node (E10). The index
//     outlives runs and groups; retention (the engine) deletes entries as it
//     forgets snapshots.
//   - schedule: backups of one protection group that run by themselves,
//     through the engine daemon: a cron expression (with a time zone) or a
//     plain interval, start and completion windows, jitter, paused, a
//     catch-up policy after downtime, tags and retention for its own
//     recovery points, and a verification cadence. Like a group it names
//     its group without depending on it. Deleting a schedule deletes its
//     slots.
//   - slot: one nominal due time of a schedule and what became of it
//     (running, succeeded, partial, failed, missed), claimed once by the
//     leading daemon. (Schedule, Slot) is unique, at the instant's
//     nanosecond in UTC, so a slot runs at most once across daemons and
//     failovers.
//   - leadership: a named role held by one daemon at a time with an expiry;
//     RoleScheduler ("scheduler") is the daemon that evaluates schedules and
//     claims slots. Its token is the fencing token of slot writes.
//   - token: the fencing token of a leadership. A grant to a new holder gets
//     the highest token ever granted for the role plus one (the first is 1);
//     a renewal by the holder keeps it. The highest token is kept per role
//     and never reset, not by release or expiry.
//   - slot fencing: ClaimSlot and UpdateSlot succeed only if the slot's
//     Token is the scheduler leadership's current token, held (not
//     released) and unexpired at the now passed (now < ExpiresAt); else
//     ErrConflict. The check and the write are one transaction that holds
//     the leadership row, so a takeover cannot commit in between: a daemon
//     that lost the role, even one whose clock lags, records nothing. A new
//     leader may update a slot an earlier leader claimed (to finish it).
//   - daemon: an engine daemon instance (id, host, version, listen address,
//     start and last heartbeat); PutDaemon is its heartbeat.
//   - node registration: what an agent announced to a daemon about itself,
//     keyed by (cluster, node); the cluster is "" if the agent does not
//     know it.
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
//	held or expired  RenewLease(its epoch)    -> held, same epoch, new ExpiresAt
//	held or expired  RenewLease(other)        -> unchanged, ErrConflict
//	free             RenewLease(any)          -> free, ErrNotFound
//	any              AdvanceEpoch(n)          -> unchanged; next grant above max(epoch, n)
//
// ListLeases returns every held or expired lease (engine lease list).
// Under contention exactly one AcquireLease wins and the losers consume no
// epoch.
//
// # Leadership state model
//
// Like a lease, a role is free (never granted, or released), held (now <
// ExpiresAt) or expired (now >= ExpiresAt), judged at the caller's now.
// token+1 is the role's highest token ever plus one:
//
//	free             AcquireLeadership(h)           -> held by h, token+1
//	held by h        AcquireLeadership(h)           -> held by h, same token, new ExpiresAt (renewal)
//	expired, was h   AcquireLeadership(h)           -> held by h, same token (nobody wrote with a newer one)
//	held by h        AcquireLeadership(other)       -> unchanged, ErrConflict
//	expired          AcquireLeadership(other)       -> held by the caller, token+1
//	held or expired  ReleaseLeadership(its token)   -> free (the token is not issued again)
//	any              ReleaseLeadership(other token) -> unchanged, no error
//
// GetLeadership returns the current grant; once released, Holder is "" and
// ExpiresAt zero, and Token the last one granted. It wraps ErrNotFound only
// if the role was never granted. Under contention exactly one
// AcquireLeadership wins and the losers consume no token.
//
// # Slot state model
//
// ClaimSlot inserts a slot in any state (running when a run starts, missed
// when its start window passed); it wraps ErrConflict if (Schedule, Slot)
// exists or the fence refuses, and ErrNotFound if the schedule does not
// exist. UpdateSlot replaces State, Daemon, Token, RunID, Reason, StartedAt
// and FinishedAt (Schedule, Slot and ClaimedAt stay), under the same fence;
// ErrNotFound if the slot does not exist. The catalog does not restrict
// transitions between states: the daemon does.
//
// # Run state model
//
// A run is created running, or already finished when it fails before doing
// anything. Finishing is one UpdateRun, and a finished run is final:
//
//	running   UpdateRun(running)                  -> running (new master, node order, expected)
//	running   UpdateRun(succeeded|partial|failed) -> finished, with FinishedAt and Error
//	finished  UpdateRun(anything)                 -> unchanged, ErrConflict
//
// The engine chooses the outcome; the intended meaning is succeeded: every
// expected workload has a recovery point; partial: some have, some were
// missed (their steps say why); failed: none, or the run could not proceed.
// Group, Cluster and StartedAt are fixed by CreateRun;
// UpdateRun keeps them whatever it is passed. When two engines finish the
// same run at once, exactly one succeeds.

// Runs and restore operations carry Owner (the engine carrying them out) and
// HeartbeatAt, set at creation and changed only by ClaimRun and
// ClaimRestore (UpdateRestore also when passed an owner, for a resume): a
// claim succeeds only while the record runs, is owned by the claimed-from
// owner, and either keeps the owner (a heartbeat) or finds its heartbeat
// older than the bound given (a take-over of abandoned work); of concurrent
// take-overs exactly one succeeds. RunningRuns and RunningRestores list what
// still runs, oldest first. Records from before migration 0005 have no
// owner and no heartbeat.
//
// # Lists and ordering
//
// ListGroups and ListSchedules sort by name (byte order); ListSlots returns
// newest slot first (limit 0: all), RunningSlots by schedule name then
// oldest slot, ListDaemons most recently seen first (equal times by id),
// ListNodeRegistrations by cluster then node. ListRuns and RecoveryPoints return
// newest first (StartedAt, CreatedAt), equal times by id, descending; a
// run's steps come by Seq. ListGroups and ListRuns take "" for every cluster
// or group, and ListRuns a limit of 0 for every run. RecoveryPointFilter's
// empty fields match everything; From is inclusive and To exclusive (From
// at or after To matches nothing). Lists stored in a record (workloads,
// node order) keep their order; an empty list may come back nil. Every
// record returned is a copy: changing it does not change the store.
//
// # Secrets
//
// Repository.Password, SecretAccessKey and SessionToken must be kept,
// because the engine (and its scheduler, without Terraform) must hand them
// to agents. The SQL stores seal them (package secretbox: AES-256-GCM, bound
// to row and column) with a catalog key the database does not hold, once
// given one with SetSecretBox; the provider always does (env
// CLUSTERGUARD_CATALOG_KEY or CLUSTERGUARD_CATALOG_KEY_FILE; for SQLite by
// default "<catalog>.key" beside the file, 0600; PostgreSQL requires a key).
// Plaintext rows of older releases still read, and SealExisting seals them
// (the provider then compacts a SQLite file so no free page keeps them).
// The SQLite catalog file and its directory are created owner-only (0600
// and 0700); a PostgreSQL connection uses sslmode=verify-full unless its URL
// says otherwise. Stores never log, and no error
// they return contains a secret: messages name records and fields, never
// values, and errors about a repository pass through RedactRepositoryError
// in case the database quotes the row.
//
// # Errors
//
// Implementations wrap ErrNotFound and ErrConflict (test with errors.Is) and
// name the record — cluster, holder, epoch, group, run, step — in the
// message. Get and Delete of an absent record wrap ErrNotFound, as do
// UpdateRun, AddStep and Steps for an absent run. ErrConflict means the
// write lost: a lease held by another, a run id taken (CreateRun), a step
// number taken (AddStep), a finished run (UpdateRun). Input that can never
// be stored or makes no sense (empty names or ids, duplicate node names, a
// non-positive ttl, an unknown run status or step outcome, a step Seq below
// 1, negative retention, sizes or durations, a run without StartedAt or a
// recovery point without CreatedAt) is refused by the Validate functions
// with an error wrapping neither.
//
// # Times
//
// Stores keep times exactly, to the nanosecond, but need not keep their
// location or monotonic reading: compare with time.Equal. The zero time
// round-trips as zero. Storable times lie between the years 1677 and 2262
// (int64 unix nanoseconds). Durations (RPO, KeepWithin) are kept in
// nanoseconds, as are a schedule's durations.
package catalog
