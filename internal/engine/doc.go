// Package engine is clusterguard's orchestration engine: it registers
// clusters, probes node agents, builds the workload digest and (in later
// stages) runs federated backups and restores. The Terraform provider and the
// engine daemon both embed it; neither holds behaviour of its own.
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
//     run step; a lease with a fencing epoch (E3).
//   - digest: the location and state of every workload of a cluster (E14).
//
// State model of a cluster registration
//
//	(absent) --Register: every agent reachable, authenticated, same volume--> registered
//	registered --Status: probe--> registered (per-node status refreshed; drift visible)
//	registered --Unregister--> (absent)       workloads are never touched
//
// Workload states in the digest: active (on exactly one node), inactive (on
// none), failed (a node's driver reports failure and none is active),
// unknown (no node active and at least one node unreachable), conflict
// (active on two or more nodes; reported, never resolved silently).
package engine
