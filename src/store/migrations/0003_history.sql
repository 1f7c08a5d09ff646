-- Channel and direct-message history: one row per message or event.
--
-- `msgid` is the server-assigned id (MessageId): the time in milliseconds
-- shifted left by 16 bits plus a counter, so ids sort in the order the
-- server handled the messages and a timestamp bound is an id bound. A QUIT
-- or NICK seen in several channels is stored once per channel with the
-- same id, hence the key on (target, msgid).
--
-- `target` is the casefolded channel name, or for a direct message
-- `dm:` and the two participants' identities in order (see
-- store/history.rs). `line` is the message as a client with every tag
-- capability receives it, without CRLF: what is replayed, and what
-- exports parse.
CREATE TABLE history (
    target TEXT NOT NULL,
    msgid BIGINT NOT NULL,
    time_ms BIGINT NOT NULL,
    command TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (target, msgid)
);

-- Retention by age and the start-up "ids go on after the newest" check.
CREATE INDEX history_by_time ON history (time_ms);
