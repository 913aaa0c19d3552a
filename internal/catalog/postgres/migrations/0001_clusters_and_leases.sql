-- Clusters with their ordered nodes, and coordinator leases with fencing
-- epochs. Same model as the SQLite catalog's 0001.
--
-- Times are BIGINT unix nanoseconds (UTC); NULL stands for Go's zero time.
-- (timestamptz keeps only microseconds; the catalog keeps times exactly.)

CREATE TABLE clusters (
    name             TEXT PRIMARY KEY CHECK (name <> ''),
    shared_volume    TEXT NOT NULL,
    shared_volume_id TEXT NOT NULL,
    master_policy    TEXT NOT NULL,
    master_node      TEXT NOT NULL,
    join_order       TEXT NOT NULL,
    created_at       BIGINT,
    updated_at       BIGINT
);

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
);

-- The highest fencing epoch ever granted per cluster. Kept apart from leases,
-- and not tied to clusters, so releasing or expiring a lease, or deleting and
-- re-registering a cluster, never lets an epoch be issued twice. The row is
-- also the lock that serialises grants for its cluster.
CREATE TABLE lease_epochs (
    cluster_name TEXT PRIMARY KEY,
    epoch        BIGINT NOT NULL CHECK (epoch > 0)
);

CREATE FUNCTION lease_epochs_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'lease epochs are never deleted';
    END IF;
    IF NEW.epoch <= OLD.epoch THEN
        RAISE EXCEPTION 'lease epoch must only increase (from % to %)', OLD.epoch, NEW.epoch;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER lease_epochs_guard
BEFORE UPDATE OR DELETE ON lease_epochs
FOR EACH ROW EXECUTE FUNCTION lease_epochs_guard();

-- The current coordinator lease per cluster; a released lease is deleted, an
-- expired one stays until the next grant replaces it.
CREATE TABLE leases (
    cluster_name TEXT PRIMARY KEY REFERENCES lease_epochs (cluster_name),
    holder       TEXT NOT NULL,
    owner        TEXT NOT NULL,
    epoch        BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
