-- Owners and heartbeats of runs and restore operations: the engine instance
-- carrying one out refreshes heartbeat_at while it works, so an operation
-- whose engine died (still "running", heartbeat old) is told from a long one
-- and recovered (engine.RecoverAbandoned). Rows from before have no owner and
-- no heartbeat, and count as abandoned once running.
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN heartbeat_at INTEGER;
CREATE INDEX runs_by_status ON runs (status);

ALTER TABLE restore_operations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE restore_operations ADD COLUMN heartbeat_at INTEGER;
CREATE INDEX restore_operations_by_status ON restore_operations (status);
