// Package daemon is the engine daemon's core: it runs backup schedules by
// itself, through the same engine code as clusterguard_backup_run
// (engine.RunBackup: federated, fenced, verified), applies retention, runs
// scheduled verification and hands work a dead daemon left to the next
// one. Several daemons may share one catalog (PostgreSQL); one leads.
// `engine serve` wraps it with a config file, /health and /metrics.
//
// Glossary
//
//   - daemon: one process (ID "<host>/<pid>/<start unix nanos>"); it writes
//     a heartbeat record (PutDaemon) on the first tick after
//     min(HeartbeatEvery, LeaderTTL/3), so the provider can warn when none
//     was seen, and deletes it when it stops.
//   - leader: the daemon holding the "scheduler" leadership, a lease of
//     LeaderTTL renewed every TTL/3. Only the leader claims slots.
//   - token: the leadership's fencing token; it grows whenever leadership
//     changes hands. Every slot write carries it and the catalog refuses a
//     token that is not current and unexpired, so a deposed leader records
//     nothing.
//   - slot: one due time of a schedule (before jitter). (schedule, slot) is
//     unique in the catalog: a slot is claimed once.
//   - start window: a slot runnable from slot+jitter until slot+start window;
//     after that it is missed (or, with catch-up "latest", only the newest
//     missed slot runs, once).
//   - completion window: a run still going after it is cancelled (context
//     deadline); its slot fails with the reason.
//   - queue: a due slot whose group is busy (one run per group at a time) or
//     that finds MaxConcurrentRuns runs in progress is not claimed; it is
//     looked at again on the next tick, oldest due first, and if its start
//     window ends meanwhile it is recorded as missed with that reason.
//   - retention tier: a schedule's own Retention, applied after each of its
//     runs to the recovery points carrying its tags plus "schedule:<name>"
//     (ApplyScheduleRetention: forget only). Pruning, which rewrites packs
//     under an exclusive lock, runs at most every PruneEvery per repository
//     (remembered by the leader in memory: a new leader may prune at once).
//     The group's retention is then applied as the provider does after a run
//     (it covers every point of the group, tier points included).
//
// State model of a daemon
//
//	follower --AcquireLeadership granted (new token)--> leader: calls Recover,
//	        then every tick: failover, due schedules, verification
//	leader --renewed every TTL/3--> leader (same token)
//	leader --renewal refused or failed, or the lease expired--> follower:
//	        claims nothing at once; runs in progress go on (they hold their
//	        own fenced coordinator leases on the agents) but their slot
//	        writes are refused; the new leader completes those slots
//	any --Run's context cancelled--> stopping: no new run; runs in progress
//	        get StopGrace, then are cancelled (their slots stay "running"
//	        with their run ids for the next leader); leadership released,
//	        daemon record deleted
//
// State model of a slot
//
//	(absent) --due, claimed by the leader (atomic, fenced)--> running
//	        (run id chosen before the run starts, so it is on the slot)
//	(absent) --start window over (no leader, or queued)--> missed (reason)
//	running --run ended--> succeeded | partial | failed (reason: the
//	        per-workload errors, or the completion window)
//	running --owner dead, its run finished--> the run's state
//	running --owner dead, run interrupted, retry allowed--> running (taken
//	        over: new daemon, token and run id; reason "retry of run X")
//	        --retry ended--> succeeded | partial | failed
//	running --owner dead, run interrupted, no retry--> partial | failed
//	        (reason says why not: retried once already, window over, ...)
//
// # Failover bound
//
// A killed leader stops renewing; its lease expires at most LeaderTTL after
// its last renewal and a follower tries every Tick, so a new leader holds
// the role within LeaderTTL + Tick of the kill. Its heartbeat is then
// LeaderTTL old too, so on that same tick the new leader takes over the
// dead leader's running slots: a run record still "running" is marked
// failed ("daemon <id> stopped mid-run") and the slot is retried once if it
// is still in its start window (or is the latest slot and catch-up is
// "latest"); a run that had finished gives the slot its state. The retry's
// run may wait for the dead run's coordinator lease to expire
// (engine.DefaultLeaseTTL) before it can coordinate the node it held.
//
// # Exactly one recovery point per slot and workload
//
// One run per slot at a time: a slot is claimed once (unique key, fenced
// token), and a slot is only taken over when its daemon is not running it
// any more: its heartbeat is older than LeaderTTL (or its record is gone),
// or it is this daemon and the run is not among its own. While a deposed
// leader is alive (heartbeat fresh) its run is left to finish; the new
// leader completes the slot from the run record afterwards.
//
// A retry backs up only what the interrupted run did not capture
// (RunOptions.Only): the workloads of its expected list minus those with a
// succeeded step in the catalog and those with a snapshot of that run id in
// the repository itself — an agent may have finished a backup after the
// engine that asked for it died, unrecorded in the catalog, and agents
// stamp the run id on every snapshot. One window remains: an agent still
// writing the dead run's backup at the moment the retry looks (a dead
// engine's requests end with its connections and its coordinator lease is
// no longer renewed, but a backup that completes in that last moment is not
// seen), and the retry may then add a second point for that workload.
// Making this exact would need the retry to wait until the agent confirms
// the old epoch's work is over, which the agent API does not offer yet.
// Such points are recognisable: the first carries the interrupted run's id,
// the retry's carry the tag "retry-of:<run id>"; retention treats both as
// ordinary points. A slot is retried
// at most once (the reason of a retried slot starts with "retry of run "),
// so an interrupted retry is completed as partial or failed, never retried
// again: no bursts after repeated crashes.
//
// # Scheduled verification
//
// A schedule with VerifyEvery verifies its group's repository (reading
// every pack, like a PBS verify job) when VerifyEvery has passed since this
// leader last did; one verification per repository at a time. The result is
// in Health().Verifications and the verify_* metrics. It is not in the
// catalog (no table for it yet): a new leader therefore verifies at once.
// Persisting it needs one small record per schedule (last verification
// time, ok, summary), e.g. two columns on the schedule row.
//
// Tests drive the loop with an injected clock and Tick (export_test.go)
// instead of timers; a run's completion window uses a real context deadline.
package daemon
