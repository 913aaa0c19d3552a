-- Clusters with their ordered nodes, and coordinator leases with fencing epochs.
--
-- Times are INTEGER unix nanoseconds (UTC); NULL stands for Go's zero time.
-- Tables are STRICT so a value of the wrong type is an error, not a silent
-- conversion.

CREATE TABLE clusters (
    name             TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
    shared_volume    TEXT NOT NULL,
    shared_volume_id TEXT NOT NULL,
    master_policy    TEXT NOT NULL,
    master_node      TEXT NOT NULL,
    join_order       TEXT NOT NULL,
    created_at       INTEGER,
    updated_at       INTEGER
) STRICT;

-- ordinal is the index in Cluster.Nodes (the order the user listed them);
-- position is Node.Position, stored as given.
CREATE TABLE cluster_nodes (
    cluster_name TEXT NOT NULL REFERENCES clusters (name) ON DELETE CASCADE,
    ordinal      INTEGER NOT NULL,
    name         TEXT NOT NULL CHECK (name <> ''),
    endpoint     TEXT NOT NULL,
    position     INTEGER NOT NULL,
    PRIMARY KEY (cluster_name, ordinal),
    UNIQUE (cluster_name, name)
) STRICT;

-- The highest fencing epoch ever granted per cluster. Kept apart from leases,
-- and not tied to clusters, so releasing or expiring a lease, or deleting and
-- re-registering a cluster, never lets an epoch be issued twice.
CREATE TABLE lease_epochs (
    cluster_name TEXT PRIMARY KEY NOT NULL,
    epoch        INTEGER NOT NULL CHECK (epoch > 0)
) STRICT;

CREATE TRIGGER lease_epochs_only_increase
BEFORE UPDATE OF epoch ON lease_epochs
WHEN NEW.epoch <= OLD.epoch
BEGIN
    SELECT RAISE(ABORT, 'lease epoch must only increase');
END;

CREATE TRIGGER lease_epochs_never_deleted
BEFORE DELETE ON lease_epochs
BEGIN
    SELECT RAISE(ABORT, 'lease epochs are never deleted');
END;

-- The current coordinator lease per cluster; a released lease is deleted, an
-- expired one stays until the next grant replaces it.
CREATE TABLE leases (
    cluster_name TEXT PRIMARY KEY NOT NULL REFERENCES lease_epochs (cluster_name),
    holder       TEXT NOT NULL,
    owner        TEXT NOT NULL,
    epoch        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
