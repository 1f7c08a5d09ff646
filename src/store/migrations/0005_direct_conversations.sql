-- Who takes part in each direct-message conversation (history targets
-- `dm:<a> <b>`), so that one account's conversations are found, and
-- deleted with it, without reading everyone else's.
CREATE TABLE direct_conversations (
    identity TEXT NOT NULL,
    target   TEXT NOT NULL,
    PRIMARY KEY (identity, target)
) WITHOUT ROWID;

INSERT OR IGNORE INTO direct_conversations (identity, target)
    SELECT substr(target, 4, instr(target, ' ') - 4), target
    FROM history WHERE target >= 'dm:' AND target < 'dm;' AND instr(target, ' ') > 0
    GROUP BY target;

INSERT OR IGNORE INTO direct_conversations (identity, target)
    SELECT substr(target, instr(target, ' ') + 1), target
    FROM history WHERE target >= 'dm:' AND target < 'dm;' AND instr(target, ' ') > 0
    GROUP BY target;
