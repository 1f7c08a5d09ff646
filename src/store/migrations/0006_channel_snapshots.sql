-- The channels that were alive when the server last stopped (or, after a
-- crash, when it last saved them): topic, modes, lists, creation time,
-- where their history starts, and who held ops or voice, so that a restart
-- gives every channel back as it was (see server/restore.rs).
--
-- One row per channel, its state as JSON: it is only ever read whole, at
-- start, and written whole, so columns would buy nothing but a join. TEXT
-- is portable as it is; PostgreSQL could use JSONB.
CREATE TABLE channel_snapshots (
    name_folded TEXT NOT NULL PRIMARY KEY,
    snapshot    TEXT NOT NULL
);
