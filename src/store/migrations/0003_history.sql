-- Channel and direct-message history: one row per message or event.
--
-- `msgid` is the server-assigned id (MessageId): the time in milliseconds
-- shifted left by 16 bits plus a counter, so ids sort in the order the
-- server handled the messages and a timestamp bound is an id bound. A QUIT
-- or NICK seen in several channels is stored once per channel with the
-- same id, hence the key on (target, msgid).
--
-- The id is the message's time too (msgid >> 16 is milliseconds since
-- the epoch), so there is no time column.
--
-- `target` is the casefolded channel name, or for a direct message
-- `dm:` and the two participants' identities in order (see
-- store/history.rs). `line` is the message as a client with every tag
-- capability receives it, without CRLF and without its leading `time`
-- and `msgid` tags, which are made again from the id when it is read:
-- what is replayed, and what exports parse.
--
-- The table is its key's B-tree (WITHOUT ROWID, SQLite's clustered
-- table): a row is one insert, not one into the table and another into
-- the key's index, and a range read is one scan. This clause is the only
-- SQLite-only syntax; on PostgreSQL drop it (its primary key gives the
-- same reads). There is no index by time: ids carry the time, and the
-- scans by time (pruning every ten minutes, the start-up load) are rare.
CREATE TABLE history (
    target TEXT NOT NULL,
    msgid BIGINT NOT NULL,
    command TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (target, msgid)
) WITHOUT ROWID;
