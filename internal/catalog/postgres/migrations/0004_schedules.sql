-- Backup schedules (issue 10): schedules, the slots the leading daemon
-- claimed, the leadership roles daemons hold with fencing tokens, daemon
-- heartbeats and agent registrations. Same model as the SQLite catalog's 0004.
--
-- Same conventions as 0001 and 0002: times are BIGINT unix nanoseconds
-- (NULL is Go's zero time), durations BIGINT nanoseconds, lists of names
-- JSON arrays in TEXT columns.

-- A schedule names its group without a foreign key, like a group its
-- cluster: it may outlive the group (the daemon reports that).
CREATE TABLE schedules (
    name                 TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
    group_name           TEXT NOT NULL CHECK (group_name <> ''),
    cron                 TEXT NOT NULL,
    time_zone            TEXT NOT NULL,
    interval_ns          BIGINT NOT NULL CHECK (interval_ns >= 0),
    start_window_ns      BIGINT NOT NULL CHECK (start_window_ns >= 0),
    completion_window_ns BIGINT NOT NULL CHECK (completion_window_ns >= 0),
    jitter_ns            BIGINT NOT NULL CHECK (jitter_ns >= 0),
    paused               BOOLEAN NOT NULL,
    catch_up             TEXT NOT NULL CHECK (catch_up IN ('', 'latest', 'skip')),
    tags                 TEXT NOT NULL,
    keep_last            BIGINT NOT NULL CHECK (keep_last >= 0),
    keep_hourly          BIGINT NOT NULL CHECK (keep_hourly >= 0),
    keep_daily           BIGINT NOT NULL CHECK (keep_daily >= 0),
    keep_weekly          BIGINT NOT NULL CHECK (keep_weekly >= 0),
    keep_monthly         BIGINT NOT NULL CHECK (keep_monthly >= 0),
    keep_yearly          BIGINT NOT NULL CHECK (keep_yearly >= 0),
    keep_within_ns       BIGINT NOT NULL CHECK (keep_within_ns >= 0),
    verify_every_ns      BIGINT NOT NULL CHECK (verify_every_ns >= 0),
    created_at           BIGINT,
    updated_at           BIGINT,
    CHECK ((cron = '') <> (interval_ns = 0))
);

CREATE INDEX schedules_by_group ON schedules (group_name, name);

-- One row per slot a daemon claimed: the primary key is what makes a slot
-- run at most once. Deleting a schedule deletes its slots.
CREATE TABLE schedule_slots (
    schedule_name TEXT NOT NULL REFERENCES schedules (name) ON DELETE CASCADE,
    slot          BIGINT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'partial', 'failed', 'missed')),
    daemon        TEXT NOT NULL,
    token         BIGINT NOT NULL,
    run_id        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    claimed_at    BIGINT,
    started_at    BIGINT,
    finished_at   BIGINT,
    PRIMARY KEY (schedule_name, slot)
);

CREATE INDEX schedule_slots_running ON schedule_slots (schedule_name, slot) WHERE state = 'running';

-- One row per role, never deleted: the current grant (holder '' and
-- expires_at NULL once released) and highest_token, the highest token ever
-- granted, which only grows so a token is never issued twice.
CREATE TABLE leaderships (
    role          TEXT PRIMARY KEY NOT NULL CHECK (role <> ''),
    holder        TEXT NOT NULL,
    token         BIGINT NOT NULL CHECK (token >= 0),
    expires_at    BIGINT,
    highest_token BIGINT NOT NULL CHECK (highest_token >= token),
    CHECK ((holder = '') = (expires_at IS NULL))
);

CREATE FUNCTION leaderships_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'leadership rows are never deleted';
    END IF;
    IF NEW.highest_token < OLD.highest_token THEN
        RAISE EXCEPTION 'leadership highest_token must never decrease (from % to %)', OLD.highest_token, NEW.highest_token;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER leaderships_guard
BEFORE UPDATE OR DELETE ON leaderships
FOR EACH ROW EXECUTE FUNCTION leaderships_guard();

CREATE TABLE daemons (
    id         TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
    host       TEXT NOT NULL,
    version    TEXT NOT NULL,
    listen     TEXT NOT NULL,
    started_at BIGINT,
    seen_at    BIGINT
);

-- cluster is '' when the agent does not know its cluster.
CREATE TABLE node_registrations (
    cluster   TEXT NOT NULL,
    node      TEXT NOT NULL CHECK (node <> ''),
    endpoint  TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    version   TEXT NOT NULL,
    workloads TEXT NOT NULL,
    seen_at   BIGINT,
    PRIMARY KEY (cluster, node)
);
