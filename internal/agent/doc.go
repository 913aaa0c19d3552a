// Package agent is the clusterguard node agent: a daemon on every node of a
// cluster that reports the node's facts and the workloads it hosts, and drives
// those workloads through drivers, over an authenticated HTTP JSON API (/v1).
//
// # Glossary
//
//   - node: one machine of the cluster. Every node mounts the same shared volume
//     and runs one agent. A node is named in the agent config ("node-1").
//   - shared volume: the storage all nodes mount (NFS, a clustered file system).
//     Workload data lives there, so a workload can run on any node. The volume
//     carries its own identity in .clusterguard/volume-id, which lets the engine
//     check that every agent of a cluster really serves the same volume.
//   - agent: this daemon. It is configured by an HCL file (see LoadConfig), keeps
//     node-local state in its state directory and answers the engine. The one
//     cluster-wide rule it enforces itself is the ownership lease (below):
//     it starts a workload only under a lease no other node holds.
//   - repository: where backups are stored (a directory or an S3 bucket),
//     defined by a `repository "NAME"` block of the agent config with its URL,
//     S3 settings and the files holding its password and keys (mode 0600). The
//     agent opens no other repository: requests name a block and carry no
//     URL or secret, so the token does not let a caller move data to or from
//     a repository of their own. A request may carry the repository's id as
//     the engine knows it; a block of that name that opens a repository with
//     another id is refused (409 repository_mismatch). The check is made
//     against the repository as it is at request time; the id GET /v1/node
//     shows is the one last opened and may be stale. Results carry the id
//     written to or read from. A restore uses only a recovery point of the
//     workload it restores (and of the request's cluster, when it names one):
//     another's is refused with 422 wrong_recovery_point, file-level
//     restores too. Secret files are opened once, without following
//     symlinks, and must be regular files owned by root or the agent's user
//     that no one else can read. HTTP answers name the repository block,
//     never its location or the config's path (the log has those).
//   - workload: a service, database or virtual machine defined identically in the
//     config of every node that may run it: a name, a driver, driver settings and
//     data paths relative to the shared volume.
//   - driver: the code that knows how to probe and operate one kind of workload
//     (Driver). The exec driver (driver/exec) runs configured commands;
//     the postgresql driver (driver/postgresql) runs a PostgreSQL server;
//     the qemu driver (driver/qemu) runs a virtual machine.
//   - action: a state change asked of a driver: start, stop, quiesce (flush
//     pending writes and hold new ones so a consistent copy can be taken) and
//     thaw (resume after quiesce).
//   - state: what a driver's status probe says about a workload on this node.
//
// # Workload state model
//
// Each agent reports a workload's state on its own node only:
//
//	inactive --start--> active --stop--> inactive
//	            active --quiesce--> active (writes held) --thaw--> active
//	any state --probe fails--> failed (the workload says it is broken)
//	any state --probe cannot run or times out--> unknown
//
// "active" means running here. Quiesce does not change the reported state: a
// quiesced workload is still active on this node. "failed" comes from the
// workload itself (status exited non-zero, other than 3); "unknown" means the
// agent could not find out. The same workload may be active on at most one node;
// agents report what they see and the engine detects and reports a workload
// active on two nodes as a conflict.
//
// # HTTP API
//
// Run serves, over TLS when the config has a tls block (wire types in package api).
// Without one it listens only on loopback, unless insecure_plaintext = true
// (then it warns at every start); with client_ca_file in the tls block it
// requires a client certificate signed by that CA on every connection.
//
//	GET  /v1/health                          no token; liveness only ({"status":"ok"})
//	GET  /v1/node                            node facts, shared volume id, failure counters, repository names (ids once opened)
//	GET  /v1/workloads                       every workload, probed in parallel
//	GET  /v1/workloads/{name}                one workload
//	POST /v1/workloads/{name}/{action}       start, stop, quiesce, thaw; state probed afterwards
//	                                         (quiesce: optional {"max_hold_ms": N}, see below)
//	                                         (start: 409 lease_held while another node holds the lease)
//	GET  /v1/coordinator                     the coordinator role: epoch held, highest seen, marker
//	POST /v1/coordinator                     claim the role with a fencing epoch (409 stale_epoch if lower,
//	                                         or more than MaxEpochStep above the highest seen)
//	POST /v1/workloads/{name}/backup         freeze, point-in-time copy, release, upload (epoch checked)
//	POST /v1/node-backup                     the node's whole shared-volume view, its workloads frozen together
//	POST /v1/workloads/{name}/restore        inspect, stage on the volume, swap in atomically (or inspect only)
//	GET  /metrics                            Prometheus metrics (metrics.go): workloads by state, requests,
//	                                         quiesce holds, ownership lease renewals, last backup served
//
// Coordinator and fencing (E3): the engine grants an epoch from its catalog;
// the agent refuses an epoch lower than the highest it has seen (kept in
// state_dir across restarts) or than the marker .clusterguard/coordinator.json
// on the shared volume, and re-reads the marker before every read or write of
// the volume for a backup or restore, so a node that lost the role is refused.
// It also refuses an epoch more than MaxEpochStep (1,000,000) above the
// highest it has seen or the marker's: the engine steps by one, and one claim
// of 2^63-1 would otherwise be saved and block every later claim.
//
// Recovering a poisoned fence (an epoch far above the engine's, e.g. claimed
// by someone holding the token before the bound existed): stop every agent of
// the cluster and every engine, remove .clusterguard/coordinator.json on the
// shared volume and highest-epoch.json in every agent's state_dir, start the
// agents again, and let the engine claim its next epoch. Do this only when no
// backup or restore is running: the files are what keeps two nodes from both
// acting as coordinator.
//
// Stun: quiesce (or pause) until release. The agent releases the workload
// itself when the request's stun timeout passes, whatever happens to the
// request, and fails the backup as inconsistent if the copy was not done by
// then. A node backup releases every workload it froze on every failure,
// including one whose freeze failed half-way or ended after the deadline.
// A workload whose ownership lease was lost while it was frozen is stopped
// instead of released (another node may already run it on the same data)
// and the backup fails "not_active". The point-in-time copy is a
// node-local mirror under state_dir:
// unchanged files are not copied again and keep their inode, so the
// repository does not re-read them either (E9). The mirror is written only
// through an os.Root on it, and an entry whose type changed on the volume
// (a symlink that is now a directory) is removed before it is written, so
// a workload's user cannot make the root agent write outside the mirror.
//
// Restore: a file-level restore writes only under the workload's paths and
// the config's restore_destinations (403 "destination_not_allowed"
// otherwise), never into .clusterguard (checked on the resolved path), and
// restored files lose setuid and setgid unless the request sets keep_setuid.
//
// Quiesce through the API has a timer like a backup's stun timeout: the agent
// thaws the workload by itself when max_hold_ms (default DefaultQuiesceHold,
// at most MaxQuiesceHold) passes without a thaw or stop, and when the agent
// stops; the answer's thaw_by says when.
//
// Every endpoint but health needs "Authorization: Bearer <token>" (401
// "unauthorized" otherwise). The token in read_only_token_file may only GET;
// anything else with it gets 403 "forbidden". Backup, node-backup and restore
// bodies must hold only their documented fields (400 "bad_request" for any
// other, such as a "url" or "password") and name a configured repository (422
// "unknown_repository", listing the configured ones, before any workload is
// frozen). Unknown endpoints get 404 "not_found" without a list of routes (the
// caller may hold no token); unknown workloads and actions 404 "not_found"
// naming what exists; a failing driver command 502 "driver_failed" with the
// command, its exit code and the tail of its output. Actions on one workload
// run one at a time.
//
// Slow clients: headers must arrive within read_header_timeout and the whole
// request within read_timeout (408 "request_timeout" otherwise), at most
// max_connections connections are served at once, and responses have no write
// deadline (a backup answers after minutes); see the limits block. The actual listen address is logged and written to
// <state_dir>/agent.addr, so "127.0.0.1:0" works for tests.
//
// # Ownership lease
//
// Every start takes the workload's ownership lease on the shared volume
// (Owners, .clusterguard/owners/<workload>.json), like a sanlock delta
// lease: read the record; refuse while another node's lease is live
// (heartbeat + expiry + clock_skew_margin not passed); write a claim (node,
// generation + 1, random claim id, heartbeat); wait 1.5 renewal intervals
// (expiry + margin when taking over a lease another node let expire);
// re-read; own it only if the record is still that claim. An acquirer
// stalled between its read and its rename for longer than the skew margin
// (measured on the monotonic clock) decided on a stale record and may have
// overwritten a newer holder's: it re-reads at once, backing off if another
// record replaced its own, and waits expiry + margin before trusting the
// claim, as for a takeover. While the
// workload runs here the lease is renewed every renew_interval; a node that
// finds its claim replaced, or cannot renew for longer than expiry, stops
// the workload itself. A holder judges its own lease only on the monotonic
// clock (time since its last successful renewal began, before its read and
// write), never by comparing the record's expiry with wall time: an NTP step
// of the wall clock neither stretches nor shortens it. Wall time is only
// written into records, for other nodes. A stop releases the lease, so another node may start
// at once, once Status confirms the workload inactive (a stop that left it
// running fails and keeps the lease); a failed start or an inactive probe
// releases it only when the workload is definitely inactive (probes: twice,
// a renewal interval apart). Waits use the longer of our timing and the
// record writer's. At agent start a workload running here is adopted when no other
// node holds a live lease; if one does, the copy here is stopped only when
// this node ran it under an older lease of its own that it never released
// (the claim is noted in state_dir until a stop) and the other lease is valid even after the margin — never
// the newest holder, never a copy started by hand (that is reported in
// owner_conflict). Backups re-check, under the workload's lock right before
// the copy, that it is still active here and the lease still held here; an
// in-place restore is refused while another node holds a live lease or the
// workload is active here, checked again under the workload's lock right
// before the swap (held through it).
//
// Self-fence: a holder that cannot renew stops its workload expiry −
// clock_skew_margin − stop_deadline after its last successful renewal
// began (monotonic clock), decided by a timer apart from the renewals so a
// renewal write hanging on the volume cannot delay it. That stop is bounded
// by stop_deadline: the graceful stop gets two thirds of it, then the
// driver's forced stop (Killer: SIGKILL of the exec workload's processes,
// found by the CLUSTERGUARD_STATE_DIR in their environment; QEMU quit then
// SIGKILL; PostgreSQL immediate shutdown then SIGKILL) the rest; an action
// holding the workload's lock (a backup) delays it by at most a third of
// the deadline before the workload is forced down beside it. So the
// workload is down expiry − margin after the last renewal by the holder's
// own clock, before any node can see the lease expired; a takeover's
// taker waits expiry + margin more on top. The config enforces
//
//	renew_interval + stop_deadline + clock_skew_margin < expiry
//
// (at least one renewal attempt may fail before the holder must stop).
//
// Watchdog: all of the above runs in the agent, which cannot stop anything
// while it is itself stopped (SIGSTOP, a frozen VM) or starved. As sanlock
// does with wdmd — the lease manager pushes an expiry time forward after
// every successful renewal, and an independent daemon acts once it passes
// — the agent started from the binary (Options.WatchdogBinary) runs a
// second process, `agent watchdog` (package watchdog), and after every
// successful renewal writes it, through a pipe, the end of the lease's
// validity (expiry − clock_skew_margin after the renewal began) on the
// host's CLOCK_MONOTONIC. When that passes without a new feed the watchdog
// SIGKILLs every process carrying the workload's identifying environment
// entry (WatchdogTarget: exec, qemu and postgresql). It kills processes rather than
// resetting the host through /dev/watchdog: the agent needs neither the
// device nor the right to reset the node, and its workloads are processes
// it started. The simplest robust channel is the pipe: a stopped agent
// cannot write to it, and its end (the agent exited or was killed) makes
// the watchdog disarm everything and exit, so stopping or restarting an
// agent still leaves its workloads running for the next agent to adopt.
// Not covered: a process that cleared its environment, and a stalled host
// (the watchdog stalls with it).
//
// Timing (config block ownership): renew_interval 2s, expiry 10s,
// clock_skew_margin 2s by default; stop_deadline defaults to half of
// expiry − renew_interval − clock_skew_margin (3s). It assumes node clocks agree within the
// margin and that a rename on the shared volume is atomic and seen by every
// node within one renewal interval. An agent that dies leaves its workloads
// running and its lease expiring (its watchdog exits with it): only an
// operator's confirmation that the node is dead lets the engine start the
// workload elsewhere after that.
//
// # Registration with the engine daemon
//
// With an engine block the agent announces itself to the engine daemon
// (register.go): POST /v1/nodes/register with the daemon's registration
// token (not the agent's own token), carrying the node name, the URL the
// engine reaches it at (advertise_url, else the scheme and bound listen
// address), the shared volume id, the version and the workload names; at
// start and every interval, in the background, one warning per failed
// attempt. https:// is required off loopback unless insecure_plaintext.
//
// # Failure counters
//
// The agent counts, since it started, driver commands that failed or timed out
// (including status probes that could not run) and requests refused for a bad
// token; the engine uses them for failure-rate based node policies. A status
// probe that reports "failed" is the workload's state, not an agent failure, and
// is not counted.
package agent
