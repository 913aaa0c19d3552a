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
//     a heartbeat record (PutDaemon) every min(HeartbeatEvery, LeaderTTL/3),
//     so the provider can warn when none was seen, and deletes it when it
//     stops. Under Run, heartbeat and leadership renewal have their own
//     goroutine (the keeper), apart from the tick: a slow tick cannot let
//     them lapse, and it goes on through a graceful stop until every run
//     ended. Options.Recover runs in the background (at most one at a time,
//     bounded by RecoverEvery), never inside the tick.
//   - leader: the daemon holding the "scheduler" leadership, a lease of
//     LeaderTTL renewed every TTL/3. Only the leader claims slots; it
//     changes recovery points (retention, prune) only while the catalog
//     shows it leading with its token.
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
//   - queue: a due slot whose group is busy (one run per group at a time,
//     across daemons: a running slot of the group in the catalog counts) or
//     that finds MaxConcurrentRuns runs in progress is not claimed; it is
//     looked at again on the next tick, oldest due first, and if its start
//     window ends meanwhile it is recorded as missed with that reason.
//   - retention tier: a schedule's own Retention, applied after each of its
//     runs to the recovery points carrying its tags plus
//     "schedule:<name>@<created unix>" (ApplyScheduleRetention: forget
//     only); the creation time keeps a new schedule that reuses a deleted
//     one's name from counting the old one's points. The prefixes
//     "schedule:" and "retry-of:" are reserved (catalog.CheckUserTag):
//     refused on schedule and clusterguard_backup_run tags. Points made
//     before this tag format carry "schedule:<name>" and are no longer
//     counted by the tier (kept; the group's retention still applies). Pruning, which rewrites packs
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
//	any --Run's context cancelled--> stopping: no new run, no prune; runs
//	        in progress get StopGrace (heartbeat and lease still renewed),
//	        then are cancelled with retention (their slots stay "running"
//	        with their run ids for the next leader); leadership released,
//	        daemon record deleted, leader-only metrics dropped
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
// the role within LeaderTTL + Tick of the kill. It takes over the dead
// leader's running slot once both its daemon record is LeaderTTL old and
// its run's own heartbeat (refreshed every engine.HeartbeatInterval by the
// engine running it) is engine.AbandonedAfter (35 s) old: within
// max(LeaderTTL + Tick, AbandonedAfter + Tick) of the kill with the
// defaults, about 36 s. The run is taken with ClaimRun (atomic, only while
// its heartbeat is stale), marked failed ("daemon <id> stopped mid-run;
// taken over by daemon <id>"), and the slot is retried once if it is still
// in its start window (or is the latest slot and catch-up is "latest"); a
// run that had finished gives the slot its state. Whether a retry could
// start (leader, group free, MaxConcurrentRuns) is decided before anything
// is changed: a queued take-over is tried again on a later tick. The
// retry's run may wait for the dead run's coordinator lease to expire
// (engine.DefaultLeaseTTL) before it can coordinate the node it held.
//
// # Clock skew
//
// Lease expiry, the fence, daemon records and run heartbeats are judged
// with each daemon's own clock (the caller's now; the catalog does not
// substitute its own). Assumption: the clocks of daemons sharing a catalog
// agree to within engine.HeartbeatSkew (5 s), as for coordinator leases.
// What larger skew does:
//   - leadership: a follower ahead by more than LeaderTTL*2/3 (10 s) sees
//     a healthy lease as expired and takes leadership; the fence then
//     refuses the old leader's slot writes and it steps down on its next
//     renewal. Leadership flaps; slots are still claimed once.
//   - runs: a run is taken over only when its own heartbeat is
//     AbandonedAfter old on the taker's clock, and ClaimRun re-checks that
//     atomically; a live run's heartbeat is at most HeartbeatInterval
//     old, so a live run is never taken over while the skew stays below
//     AbandonedAfter - HeartbeatInterval (25 s). A live owner that is taken
//     over anyway sees its next heartbeat refused and stops.
//
// Using the database's clock on PostgreSQL for these would remove the
// assumption; it is not done yet.
//
// # Exactly one recovery point per slot and workload
//
// One run per slot at a time: a slot is claimed once (unique key, fenced
// token), and a slot is only taken over when its daemon is not running it
// any more: its daemon's heartbeat is older than LeaderTTL (or its record
// is gone, or it is this daemon and the run is not among its own) and the
// run's own heartbeat is older than engine.AbandonedAfter. While a deposed
// or stuck leader's run is alive (either heartbeat fresh) it is left to
// finish; the new leader completes the slot from the run record afterwards.
// A stopping daemon keeps both heartbeats and its lease while its runs
// finish, so a graceful stop never causes a retry of a run still going.
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
