// Package serve is the `engine serve` and `engine check` commands: the
// daemon's config, its HTTP endpoints and the process shell around the
// scheduler (internal/engine/daemon). It holds no policy: what runs when is
// decided by the engine and the scheduler.
//
// HTTP (TLS required off loopback, see Config):
//
//	GET  /health             JSON of Health; 200 while the scheduler ticked within 5 ticks (≥ 5 s), else 503
//	GET  /metrics            Prometheus: Go and process collectors, the scheduler's and the registrations' metrics
//	POST /v1/nodes/register  an agent's api.NodeRegistration, bearer registration token (constant-time compare),
//	                         at most api.MaxRegistrationBody bytes of strict JSON; 204, or 401/403/400/413/503
//
// Process: on a SQLite catalog the daemon holds <catalog>.daemon.lock
// (flock) for its life, so a second daemon on the file is refused;
// PostgreSQL catalogs allow several, which elect a leader. SIGTERM or
// SIGINT: the scheduler stops (runs in progress finish or are handed back),
// then the HTTP server shuts down.
package serve
