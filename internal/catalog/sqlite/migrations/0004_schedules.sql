-- Backup schedules (issue 10): schedules, the slots the leading daemon
-- claimed, the leadership roles daemons hold with fencing tokens, daemon
-- heartbeats and agent registrations.
--
-- Same conventions as 0001 and 0002: times are INTEGER unix nanoseconds
-- (NULL is Go's zero time), durations INTEGER nanoseconds, booleans 0 or 1,
-- lists of names JSON arrays in TEXT columns.

-- A schedule names its group without a foreign key, like a group its
-- cluster: it may outlive the group (the daemon reports that).
CREATE TABLE schedules (
    name                 TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
    group_name           TEXT NOT NULL CHECK (group_name <> ''),
    cron                 TEXT NOT NULL,
    time_zone            TEXT NOT NULL,
    interval_ns          INTEGER NOT NULL CHECK (interval_ns >= 0),
    start_window_ns      INTEGER NOT NULL CHECK (start_window_ns >= 0),
    completion_window_ns INTEGER NOT NULL CHECK (completion_window_ns >= 0),
    jitter_ns            INTEGER NOT NULL CHECK (jitter_ns >= 0),
    paused               INTEGER NOT NULL CHECK (paused IN (0, 1)),
    catch_up             TEXT NOT NULL CHECK (catch_up IN ('', 'latest', 'skip')),
    tags                 TEXT NOT NULL,
    keep_last            INTEGER NOT NULL CHECK (keep_last >= 0),
    keep_hourly          INTEGER NOT NULL CHECK (keep_hourly >= 0),
    keep_daily           INTEGER NOT NULL CHECK (keep_daily >= 0),
    keep_weekly          INTEGER NOT NULL CHECK (keep_weekly >= 0),
    keep_monthly         INTEGER NOT NULL CHECK (keep_monthly >= 0),
    keep_yearly          INTEGER NOT NULL CHECK (keep_yearly >= 0),
    keep_within_ns       INTEGER NOT NULL CHECK (keep_within_ns >= 0),
    verify_every_ns      INTEGER NOT NULL CHECK (verify_every_ns >= 0),
    created_at           INTEGER,
    updated_at           INTEGER,
    CHECK ((cron = '') <> (interval_ns = 0))
) STRICT;

CREATE INDEX schedules_by_group ON schedules (group_name, name);

-- One row per slot a daemon claimed: the primary key is what makes a slot
-- run at most once. Deleting a schedule deletes its slots.
CREATE TABLE schedule_slots (
    schedule_name TEXT NOT NULL REFERENCES schedules (name) ON DELETE CASCADE,
    slot          INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'partial', 'failed', 'missed')),
    daemon        TEXT NOT NULL,
    token         INTEGER NOT NULL,
    run_id        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    claimed_at    INTEGER,
    started_at    INTEGER,
    finished_at   INTEGER,
    PRIMARY KEY (schedule_name, slot)
) STRICT;

CREATE INDEX schedule_slots_running ON schedule_slots (schedule_name, slot) WHERE state = 'running';

-- One row per role, never deleted: the current grant (holder '' and
-- expires_at NULL once released) and highest_token, the highest token ever
-- granted, which only grows so a token is never issued twice.
CREATE TABLE leaderships (
    role          TEXT PRIMARY KEY NOT NULL CHECK (role <> ''),
    holder        TEXT NOT NULL,
    token         INTEGER NOT NULL CHECK (token >= 0),
    expires_at    INTEGER,
    highest_token INTEGER NOT NULL CHECK (highest_token >= token),
    CHECK ((holder = '') = (expires_at IS NULL))
) STRICT;

CREATE TRIGGER leaderships_highest_token_only_increases
BEFORE UPDATE OF highest_token ON leaderships
WHEN NEW.highest_token < OLD.highest_token
BEGIN
    SELECT RAISE(ABORT, 'leadership highest_token must never decrease');
END;

CREATE TRIGGER leaderships_never_deleted
BEFORE DELETE ON leaderships
BEGIN
    SELECT RAISE(ABORT, 'leadership rows are never deleted');
END;

CREATE TABLE daemons (
    id         TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    host       TEXT NOT NULL,
    version    TEXT NOT NULL,
    listen     TEXT NOT NULL,
    started_at INTEGER,
    seen_at    INTEGER
) STRICT;

-- cluster is '' when the agent does not know its cluster.
CREATE TABLE node_registrations (
    cluster   TEXT NOT NULL,
    node      TEXT NOT NULL CHECK (node <> ''),
    endpoint  TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    version   TEXT NOT NULL,
    workloads TEXT NOT NULL,
    seen_at   INTEGER,
    PRIMARY KEY (cluster, node)
) STRICT;
