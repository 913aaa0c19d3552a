-- Federated backups: repositories, protection groups, runs with their steps,
-- and the recovery-point index. Same model as the SQLite catalog's 0002.
--
-- Times are BIGINT unix nanoseconds (NULL is Go's zero time), durations are
-- BIGINT nanoseconds, and lists of names are JSON arrays of strings in TEXT
-- columns (read and written whole, never queried inside).
--
-- Records refer to each other by name only, without foreign keys, except a
-- step to its run: a group may outlive its cluster or repository (an import,
-- an out-of-band delete; the engine decides what that means), and recovery
-- points outlive the runs and groups that made them.

-- Secrets (password, secret_access_key, session_token) are stored as given:
-- the engine hands them to agents. Grant access to this database only to
-- the engines.
CREATE TABLE repositories (
    name              TEXT PRIMARY KEY CHECK (name <> ''),
    url               TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    region            TEXT NOT NULL,
    access_key_id     TEXT NOT NULL,
    secret_access_key TEXT NOT NULL,
    session_token     TEXT NOT NULL,
    path_style        BOOLEAN NOT NULL,
    insecure          BOOLEAN NOT NULL,
    password          TEXT NOT NULL,
    created_at        BIGINT,
    updated_at        BIGINT
);

-- The selector columns are all NULL when the group has no selector and all
-- set (possibly to '') when it has one, so an empty selector survives.
CREATE TABLE protection_groups (
    name                TEXT PRIMARY KEY CHECK (name <> ''),
    cluster             TEXT NOT NULL CHECK (cluster <> ''),
    repository          TEXT NOT NULL,
    workloads           TEXT NOT NULL,
    selector_name_regex TEXT,
    selector_driver     TEXT,
    selector_node       TEXT,
    exclude             TEXT NOT NULL,
    consistency         TEXT NOT NULL,
    node_order          TEXT NOT NULL,
    critical_workloads  TEXT NOT NULL,
    extract_at          TEXT NOT NULL,
    keep_last           BIGINT NOT NULL CHECK (keep_last >= 0),
    keep_hourly         BIGINT NOT NULL CHECK (keep_hourly >= 0),
    keep_daily          BIGINT NOT NULL CHECK (keep_daily >= 0),
    keep_weekly         BIGINT NOT NULL CHECK (keep_weekly >= 0),
    keep_monthly        BIGINT NOT NULL CHECK (keep_monthly >= 0),
    keep_yearly         BIGINT NOT NULL CHECK (keep_yearly >= 0),
    keep_within_ns      BIGINT NOT NULL CHECK (keep_within_ns >= 0),
    rpo_ns              BIGINT NOT NULL CHECK (rpo_ns >= 0),
    created_at          BIGINT,
    updated_at          BIGINT,
    CHECK ((selector_name_regex IS NULL) = (selector_driver IS NULL)
       AND (selector_driver IS NULL) = (selector_node IS NULL))
);

CREATE INDEX protection_groups_by_cluster ON protection_groups (cluster, name COLLATE "C");

-- group_name and cluster are fixed at creation; the other columns change
-- while the run is running and are final once it has finished.
CREATE TABLE runs (
    id          TEXT PRIMARY KEY CHECK (id <> ''),
    group_name  TEXT NOT NULL CHECK (group_name <> ''),
    cluster     TEXT NOT NULL,
    master      TEXT NOT NULL,
    node_order  TEXT NOT NULL,
    expected    TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'partial', 'failed')),
    error       TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT
);

CREATE INDEX runs_by_group ON runs (group_name, started_at);

CREATE TABLE run_steps (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    phase       TEXT NOT NULL,
    node        TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    workload    TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    bytes       BIGINT NOT NULL CHECK (bytes >= 0),
    bytes_added BIGINT NOT NULL CHECK (bytes_added >= 0),
    stun_ms     BIGINT NOT NULL CHECK (stun_ms >= 0),
    outcome     TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'skipped')),
    error       TEXT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE recovery_points (
    id          TEXT PRIMARY KEY CHECK (id <> ''),
    repository  TEXT NOT NULL,
    cluster     TEXT NOT NULL,
    group_name  TEXT NOT NULL,
    workload    TEXT NOT NULL,
    node        TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    consistency TEXT NOT NULL,
    size        BIGINT NOT NULL CHECK (size >= 0),
    created_at  BIGINT NOT NULL
);

-- One index per filter the engine uses: a workload's history, a group's
-- history (retention), and a repository's points (forget, deregistration).
CREATE INDEX recovery_points_by_workload ON recovery_points (cluster, workload, created_at);
CREATE INDEX recovery_points_by_group ON recovery_points (group_name, created_at);
CREATE INDEX recovery_points_by_repository ON recovery_points (repository);
