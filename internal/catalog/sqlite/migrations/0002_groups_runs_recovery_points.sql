-- Federated backups: repositories, protection groups, runs with their steps,
-- and the recovery-point index.
--
-- Same conventions as 0001: times are INTEGER unix nanoseconds (NULL is Go's
-- zero time), durations are INTEGER nanoseconds, booleans are 0 or 1, and
-- lists of names are JSON arrays of strings in TEXT columns.
--
-- Records refer to each other by name only, without foreign keys, except a
-- step to its run: a group may outlive its cluster or repository (an import,
-- an out-of-band delete; the engine decides what that means), and recovery
-- points outlive the runs and groups that made them (they index snapshots
-- that exist in the repository until retention forgets them).

-- Secrets (password, secret_access_key, session_token) are stored as given:
-- the engine hands them to agents. The catalog file is created 0600.
CREATE TABLE repositories (
    name              TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
    url               TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    region            TEXT NOT NULL,
    access_key_id     TEXT NOT NULL,
    secret_access_key TEXT NOT NULL,
    session_token     TEXT NOT NULL,
    path_style        INTEGER NOT NULL CHECK (path_style IN (0, 1)),
    insecure          INTEGER NOT NULL CHECK (insecure IN (0, 1)),
    password          TEXT NOT NULL,
    created_at        INTEGER,
    updated_at        INTEGER
) STRICT;

-- The selector columns are all NULL when the group has no selector and all
-- set (possibly to '') when it has one, so an empty selector survives.
CREATE TABLE protection_groups (
    name                TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
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
    keep_last           INTEGER NOT NULL CHECK (keep_last >= 0),
    keep_hourly         INTEGER NOT NULL CHECK (keep_hourly >= 0),
    keep_daily          INTEGER NOT NULL CHECK (keep_daily >= 0),
    keep_weekly         INTEGER NOT NULL CHECK (keep_weekly >= 0),
    keep_monthly        INTEGER NOT NULL CHECK (keep_monthly >= 0),
    keep_yearly         INTEGER NOT NULL CHECK (keep_yearly >= 0),
    keep_within_ns      INTEGER NOT NULL CHECK (keep_within_ns >= 0),
    rpo_ns              INTEGER NOT NULL CHECK (rpo_ns >= 0),
    created_at          INTEGER,
    updated_at          INTEGER,
    CHECK ((selector_name_regex IS NULL) = (selector_driver IS NULL)
       AND (selector_driver IS NULL) = (selector_node IS NULL))
) STRICT;

CREATE INDEX protection_groups_by_cluster ON protection_groups (cluster, name);

-- group_name and cluster are fixed at creation; the other columns change
-- while the run is running and are final once it has finished.
CREATE TABLE runs (
    id          TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    group_name  TEXT NOT NULL CHECK (group_name <> ''),
    cluster     TEXT NOT NULL,
    master      TEXT NOT NULL,
    node_order  TEXT NOT NULL,
    expected    TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'partial', 'failed')),
    error       TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER
) STRICT;

CREATE INDEX runs_by_group ON runs (group_name, started_at);

CREATE TABLE run_steps (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    phase       TEXT NOT NULL,
    node        TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    workload    TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    bytes       INTEGER NOT NULL CHECK (bytes >= 0),
    bytes_added INTEGER NOT NULL CHECK (bytes_added >= 0),
    stun_ms     INTEGER NOT NULL CHECK (stun_ms >= 0),
    outcome     TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'skipped')),
    error       TEXT NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (run_id, seq)
) STRICT;

CREATE TABLE recovery_points (
    id          TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    repository  TEXT NOT NULL,
    cluster     TEXT NOT NULL,
    group_name  TEXT NOT NULL,
    workload    TEXT NOT NULL,
    node        TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    consistency TEXT NOT NULL,
    size        INTEGER NOT NULL CHECK (size >= 0),
    created_at  INTEGER NOT NULL
) STRICT;

-- One index per filter the engine uses: a workload's history, a group's
-- history (retention), and a repository's points (forget, deregistration).
CREATE INDEX recovery_points_by_workload ON recovery_points (cluster, workload, created_at);
CREATE INDEX recovery_points_by_group ON recovery_points (group_name, created_at);
CREATE INDEX recovery_points_by_repository ON recovery_points (repository);
