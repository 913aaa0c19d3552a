-- Block backups of VM disks (issue 11): whether a step's recovery point
-- was read incrementally (only the dirty extents), the bytes read from the
-- point-in-time view, and the dirty-bitmap generation (checkpoint) it
-- covers. Steps from before are full reads of nothing recorded.
ALTER TABLE run_steps ADD COLUMN incremental BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE run_steps ADD COLUMN bytes_read BIGINT NOT NULL DEFAULT 0 CHECK (bytes_read >= 0);
ALTER TABLE run_steps ADD COLUMN checkpoint TEXT NOT NULL DEFAULT '';
