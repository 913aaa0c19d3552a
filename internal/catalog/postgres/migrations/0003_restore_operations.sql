-- Restore operations (issue 5): one row per restore job run, written before
-- any work so an interrupted apply resumes it; steps are the workloads in
-- order. A step's fields are kept as a JSON document: they are read and
-- written whole, never queried by field.
CREATE TABLE restore_operations (
    id          TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    key         TEXT NOT NULL CHECK (key <> ''),
    cluster     TEXT NOT NULL,
    repository  TEXT NOT NULL,
    spec        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    error       TEXT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT
);
CREATE INDEX restore_operations_by_key ON restore_operations (key, started_at);

CREATE TABLE restore_steps (
    operation_id TEXT NOT NULL REFERENCES restore_operations (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL CHECK (seq >= 1),
    body         TEXT NOT NULL,
    PRIMARY KEY (operation_id, seq)
);
