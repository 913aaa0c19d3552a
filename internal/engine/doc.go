// Package engine is clusterguard's orchestration engine: it registers
// clusters and repositories, probes node agents, builds the workload digest,
// runs federated backups (RunBackup) and restores (PlanRestore, RunRestore),
// applies retention and reconciles protection drift. The Terraform provider
// embeds it and holds no behaviour of its own.
//
// Glossary
//
//   - cluster: nodes that mount one shared volume; registered in the catalog.
//   - node: a machine running the clusterguard agent, reached at an endpoint.
//   - agent: the daemon on a node that reports facts and drives workloads.
//   - workload: a VM, database or service defined on every node and active on
//     at most one of them at a time.
//   - master: the node (or the engine itself) that starts a run (E1).
//   - coordinator: the one node allowed to do I/O on the shared volume for a
//     run step; a lease with a fencing epoch (E3). The lease is short
//     (DefaultLeaseTTL) and renewed while the step works; a lost renewal
//     aborts the step.
//   - assume_down: nodes an operator confirms are down; any other node that
//     cannot be asked may still run a workload, so nothing is restored or
//     started while it is unreachable (unreachable means unknown).
//   - digest: the location and state of every workload of a cluster (E14).
//   - run: one federated backup of a protection group; steps are its
//     workload backups, recorded as they finish.
//   - recovery point: a snapshot in a repository, indexed in the catalog per
//     workload (node views as "<snapshot>@<workload>").
//   - restore operation: one restore job, recorded before work starts and
//     keyed by its request so an interrupted apply resumes it.
//   - schedule: when a protection group is backed up by itself (PutSchedule);
//     the engine daemon claims each due slot once. ScheduleStatus reads its
//     slots and runs back (last run, failures, misses) and whether a daemon
//     heartbeat is recent (DaemonSeenWithin).
//   - node registration: what an agent announced to a daemon; stale after
//     StaleRegistrationAfter without a new announcement.
//
// State model of a cluster registration
//
//	(absent) --Register: every agent reachable, authenticated, same volume--> registered
//	registered --Status: probe--> registered (per-node status refreshed; drift visible)
//	registered --Unregister--> (absent)       workloads are never touched
//
// State model of a backup run
//
//	running --all expected workloads captured--> succeeded
//	running --some captured, others missed after verification--> partial
//	running --nothing captured, or nothing selected--> failed
//	running --its engine died (heartbeat older than AbandonedAfter)--> failed
//	        (RecoverAbandoned: "abandoned by <owner> at <time>")
//
// State model of a restore operation
//
//	(absent) --recorded before work--> running --every step done--> succeeded
//	running --a step failed--> failed --apply again (same request)--> running
//	running --process died--> running (resumed by the next apply, which
//	        first re-checks where each workload runs and restarts any it
//	        had stopped if it cannot go on)
//	running --its engine died, no re-apply--> failed (RecoverAbandoned
//	        restarts what it stopped where it ran, once every node answers)
//
// Runs and restore operations carry their engine (Owner) and a heartbeat
// refreshed every HeartbeatInterval while they run, so RecoverAbandoned
// (the engine daemon's leader, every minute) tells a dead engine's work
// from a long one; see abandoned.go and ARCHITECTURE.md, "Safety model".
//
// Workload states in the digest: active (on exactly one node), inactive (on
// none), failed (a node's driver reports failure and none is active),
// unknown (no node active and at least one node unreachable), conflict
// (active on two or more nodes; reported, never resolved silently).
package engine
