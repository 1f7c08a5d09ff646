-- Accounts and registered channels.
--
-- Written to run unchanged on PostgreSQL except for the column types noted
-- here; nothing else is SQLite-specific:
--   * BLOB becomes BYTEA.
--   * INTEGER must become BIGINT: SQLite integers are always 64-bit and the
--     Rust side reads them as i64, while PostgreSQL's INTEGER is 32-bit.
--   * Foreign keys are only enforced on SQLite because the connection turns
--     on `PRAGMA foreign_keys` (see Store::open); PostgreSQL always does.
--
-- Names are stored twice: the display form and the key folded with the
-- server's configured casemapping. The database never folds: the casemapping
-- is server configuration, and a collation here could disagree with it.
-- Timestamps are unix seconds.

CREATE TABLE accounts (
    name_folded      TEXT    NOT NULL PRIMARY KEY,
    name             TEXT    NOT NULL,
    email            TEXT    NULL,
    -- Argon2id PHC string.
    password_hash    TEXT    NOT NULL,
    -- SCRAM-SHA-256 credentials are optional (accounts created before SCRAM
    -- support, or by an admin who only set a hash) but never partial.
    scram_salt       BLOB    NULL,
    scram_iterations INTEGER NULL,
    scram_stored_key BLOB    NULL,
    scram_server_key BLOB    NULL,
    created_at       INTEGER NOT NULL,
    CHECK ((scram_salt IS NULL) = (scram_iterations IS NULL)
       AND (scram_salt IS NULL) = (scram_stored_key IS NULL)
       AND (scram_salt IS NULL) = (scram_server_key IS NULL))
);

-- Every account owns its own name as a nick, so this table alone answers
-- "who may use this nick", and an account name can never collide with a
-- nick another account owns.
CREATE TABLE account_nicks (
    nick_folded TEXT    NOT NULL PRIMARY KEY,
    nick        TEXT    NOT NULL,
    account     TEXT    NOT NULL REFERENCES accounts (name_folded) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);

CREATE INDEX account_nicks_by_account ON account_nicks (account);

CREATE TABLE registered_channels (
    name_folded   TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    founder       TEXT    NOT NULL REFERENCES accounts (name_folded) ON DELETE CASCADE,
    registered_at INTEGER NOT NULL,
    topic         TEXT    NULL,
    topic_set_by  TEXT    NULL,
    topic_set_at  INTEGER NULL,
    -- Flag letters without arguments, e.g. 'nst'; key and limit carry theirs.
    modes         TEXT    NOT NULL,
    channel_key   TEXT    NULL,
    user_limit    INTEGER NULL,
    CHECK ((topic IS NULL) = (topic_set_by IS NULL)
       AND (topic IS NULL) = (topic_set_at IS NULL))
);

CREATE INDEX registered_channels_by_founder ON registered_channels (founder);

CREATE TABLE channel_access (
    channel TEXT NOT NULL REFERENCES registered_channels (name_folded) ON DELETE CASCADE,
    account TEXT NOT NULL REFERENCES accounts (name_folded) ON DELETE CASCADE,
    level   TEXT NOT NULL CHECK (level IN ('op', 'voice')),
    PRIMARY KEY (channel, account)
);

-- Deleting an account has to find its access entries without a full scan.
CREATE INDEX channel_access_by_account ON channel_access (account);

CREATE TABLE channel_list_entries (
    channel TEXT    NOT NULL REFERENCES registered_channels (name_folded) ON DELETE CASCADE,
    mode    TEXT    NOT NULL CHECK (mode IN ('b', 'e', 'I')),
    mask    TEXT    NOT NULL,
    set_by  TEXT    NOT NULL,
    set_at  INTEGER NOT NULL,
    PRIMARY KEY (channel, mode, mask)
);
