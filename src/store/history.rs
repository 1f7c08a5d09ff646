//! Channel and direct-message history: appended in batches by the history
//! writer, read by CHATHISTORY, join replay and `parlor logs export`.
//!
//! Every query is a range scan of the (target, msgid) key. Ids grow with
//! time (see the migration), so "before this timestamp" is "before this
//! id" and needs no index of its own.

use sqlx::{QueryBuilder, Row, Sqlite};

use super::{narrow, Store, StoreError};
use crate::proto::tags::{self, MessageId};

/// One message or event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    pub target: String,
    /// A `MessageId`: its time is `msgid >> 16` milliseconds.
    pub msgid: u64,
    pub command: &'static str,
    /// As a client with every tag capability gets it, without CRLF,
    /// starting with its `time` and `msgid` tags.
    pub line: String,
}

/// One stored message or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub msgid: u64,
    pub time_ms: u64,
    pub command: String,
    pub line: String,
}

/// Which rows a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kinds {
    /// PRIVMSG and NOTICE.
    Messages,
    /// Those, TAGMSG and the events (JOIN, PART, QUIT, KICK, NICK, MODE,
    /// TOPIC).
    Everything,
}

/// Rows per INSERT, largest first. An INSERT of 300 rows costs SQLite more
/// to parse than to run, so only these few statements are ever made, and
/// each is parsed once and kept (sqlx caches prepared statements by text).
/// 5 bound values a row stay far below SQLite's 32,766 per statement.
const INSERT_SIZES: [usize; 4] = [256, 32, 4, 1];

/// Rows one pruning statement deletes, and how many such statements one
/// pruning round runs at most (the rest waits for the next round).
const PRUNE_CHUNK: u64 = 5_000;
const MAX_PRUNE_CHUNKS: usize = 2_000;

const MESSAGE_COMMANDS: &str = "('PRIVMSG', 'NOTICE')";

/// What direct-message targets start with (`dm:<a> <b>`, the two
/// identities in order); channel names cannot.
pub const DIRECT_PREFIX: &str = "dm:";

impl Store {
    /// Appends `records` in one transaction.
    pub async fn append_history(&self, records: &[HistoryRecord]) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let mut transaction = self.pool.begin().await?;
        let mut rest = records;
        while !rest.is_empty() {
            let size = INSERT_SIZES
                .into_iter()
                .find(|&size| size <= rest.len())
                .unwrap_or(1);
            let (chunk, after) = rest.split_at(size);
            rest = after;
            let mut insert: QueryBuilder<'_, Sqlite> =
                QueryBuilder::new("INSERT INTO history (target, msgid, command, line) ");
            insert.push_values(chunk, |mut row, record| {
                row.push_bind(&record.target)
                    .push_bind(record.msgid as i64)
                    .push_bind(record.command)
                    .push_bind(without_stamp(&record.line));
            });
            // A record written twice (a retried batch) is already there.
            insert.push(" ON CONFLICT (target, msgid) DO NOTHING");
            insert.build().execute(&mut *transaction).await?;
        }
        let mut conversations: Vec<&str> = records
            .iter()
            .map(|record| record.target.as_str())
            .filter(|target| target.starts_with(DIRECT_PREFIX))
            .collect();
        conversations.sort_unstable();
        conversations.dedup();
        for target in conversations {
            let Some((first, second)) = target[DIRECT_PREFIX.len()..].split_once(' ') else {
                continue;
            };
            for identity in [first, second] {
                sqlx::query(
                    "INSERT INTO direct_conversations (identity, target) VALUES (?, ?) \
                     ON CONFLICT (identity, target) DO NOTHING",
                )
                .bind(identity)
                .bind(target)
                .execute(&mut *transaction)
                .await?;
            }
        }
        transaction.commit().await?;
        crate::metrics::history_committed(records.len(), started.elapsed());
        Ok(())
    }

    /// Up to `limit` rows of `target` with ids in `after..before`
    /// (exclusive), the ones nearest `before` if `newest` else nearest
    /// `after`; oldest first either way.
    pub async fn history_range(
        &self,
        target: &str,
        after: u64,
        before: u64,
        limit: usize,
        newest: bool,
        kinds: Kinds,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut query: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new("SELECT msgid, command, line FROM history WHERE target = ");
        query
            .push_bind(target)
            .push(" AND msgid > ")
            .push_bind(clamp_id(after))
            .push(" AND msgid < ")
            .push_bind(clamp_id(before));
        if kinds == Kinds::Messages {
            query.push(" AND command IN ").push(MESSAGE_COMMANDS);
        }
        query
            .push(if newest {
                " ORDER BY msgid DESC LIMIT "
            } else {
                " ORDER BY msgid ASC LIMIT "
            })
            .push_bind(limit as i64);
        let mut rows = query
            .build()
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| stored_message(&row))
            .collect::<Result<Vec<_>, _>>()?;
        if newest {
            rows.reverse();
        }
        Ok(rows)
    }

    /// The direct-message conversations `identity` takes part in whose
    /// latest message has an id in `after..before` (exclusive), each with
    /// that message's time.
    pub async fn direct_targets_of(
        &self,
        identity: &str,
        after: u64,
        before: u64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        // Each conversation's latest message is found by walking its key
        // back from the end, a few rows at most, however far back the
        // window is.
        let rows = sqlx::query(
            "SELECT target, latest FROM (SELECT c.target AS target, \
             (SELECT h.msgid FROM history h WHERE h.target = c.target \
             AND h.command IN ('PRIVMSG', 'NOTICE') ORDER BY h.msgid DESC LIMIT 1) AS latest \
             FROM direct_conversations c WHERE c.identity = ?) \
             WHERE latest > ? AND latest < ?",
        )
        .bind(identity)
        .bind(clamp_id(after))
        .bind(clamp_id(before))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let latest: u64 = narrow(row.try_get("latest")?, "latest")?;
                Ok((row.try_get("target")?, latest >> ID_TIME_SHIFT))
            })
            .collect()
    }

    /// Whether `target` has a row with id `msgid`.
    pub async fn history_has(&self, target: &str, msgid: u64) -> Result<bool, StoreError> {
        let found = sqlx::query("SELECT 1 FROM history WHERE target = ? AND msgid = ?")
            .bind(target)
            .bind(clamp_id(msgid))
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Of `targets`, those whose latest message has an id in
    /// `after..before` (exclusive), with that message's time, oldest first.
    pub async fn history_targets(
        &self,
        targets: &[String],
        after: u64,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        // As in `direct_targets_of`: each target's latest message by a
        // walk back from the end of its key.
        let mut query: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new("WITH wanted (target) AS (VALUES ");
        let mut separated = query.separated(", ");
        for target in targets {
            separated.push("(");
            separated.push_bind_unseparated(target);
            separated.push_unseparated(")");
        }
        query
            .push(
                ") SELECT target, latest FROM (SELECT wanted.target AS target, \
                 (SELECT h.msgid FROM history h WHERE h.target = wanted.target \
                 AND h.command IN ",
            )
            .push(MESSAGE_COMMANDS)
            .push(" ORDER BY h.msgid DESC LIMIT 1) AS latest FROM wanted) WHERE latest > ")
            .push_bind(clamp_id(after))
            .push(" AND latest < ")
            .push_bind(clamp_id(before))
            .push(" ORDER BY latest ASC LIMIT ")
            .push_bind(limit as i64);
        query
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let latest: u64 = narrow(row.try_get("latest")?, "latest")?;
                Ok((row.try_get("target")?, latest >> ID_TIME_SHIFT))
            })
            .collect()
    }

    /// Channels with a line stored since `since_ms`.
    pub async fn channels_active_since(&self, since_ms: u64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT target FROM history WHERE msgid >= ? AND target NOT LIKE 'dm:%'",
        )
        .bind(clamp_id(since_ms << ID_TIME_SHIFT))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The greatest id stored, so that new ids go on after it even if the
    /// clock went back.
    pub async fn newest_msgid(&self) -> Result<Option<u64>, StoreError> {
        let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(msgid) FROM history")
            .fetch_one(&self.pool)
            .await?;
        newest
            .map(|id| narrow(id, "msgid"))
            .transpose()
            .map_err(Into::into)
    }

    /// Deletes rows older than `older_than_ms`, and the oldest rows of any
    /// target holding more than `max_per_target`. Returns how many went.
    pub async fn prune_history(
        &self,
        older_than_ms: Option<u64>,
        max_per_target: Option<usize>,
    ) -> Result<u64, StoreError> {
        let mut deleted = 0;
        if let Some(cutoff) = older_than_ms {
            // In chunks, each its own short transaction: one DELETE over a
            // big table would hold the write lock long enough to make the
            // history writer (or the admin CLI) give up waiting.
            for _ in 0..MAX_PRUNE_CHUNKS {
                let chunk = sqlx::query(
                    "DELETE FROM history WHERE (target, msgid) IN \
                     (SELECT target, msgid FROM history WHERE msgid < ? LIMIT ?)",
                )
                .bind(clamp_id(cutoff << ID_TIME_SHIFT))
                .bind(PRUNE_CHUNK as i64)
                .execute(&self.pool)
                .await?
                .rows_affected();
                deleted += chunk;
                if chunk < PRUNE_CHUNK {
                    break;
                }
            }
        }
        if let Some(max) = max_per_target {
            let crowded: Vec<String> = sqlx::query_scalar(
                "SELECT target FROM history GROUP BY target HAVING COUNT(*) > ?",
            )
            .bind(max as i64)
            .fetch_all(&self.pool)
            .await?;
            for target in crowded {
                deleted += sqlx::query(
                    "DELETE FROM history WHERE target = ? AND msgid <= \
                     (SELECT msgid FROM history WHERE target = ? \
                      ORDER BY msgid DESC LIMIT 1 OFFSET ?)",
                )
                .bind(&target)
                .bind(&target)
                .bind(max as i64)
                .execute(&self.pool)
                .await?
                .rows_affected();
            }
        }
        Ok(deleted)
    }
}

/// Ids fit in 63 bits (milliseconds until the year 4000 shifted by 16);
/// a bound past that means "no bound".
fn clamp_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn stored_message(row: &sqlx::sqlite::SqliteRow) -> Result<StoredMessage, sqlx::Error> {
    let msgid: u64 = narrow(row.try_get("msgid")?, "msgid")?;
    let stored: String = row.try_get("line")?;
    Ok(StoredMessage {
        msgid,
        time_ms: msgid >> ID_TIME_SHIFT,
        command: row.try_get("command")?,
        line: with_stamp(msgid, &stored),
    })
}

/// Milliseconds are the id shifted right by this (see `MessageId`).
const ID_TIME_SHIFT: u32 = 16;

/// What a line stamped `@time=…;msgid=…` is stored as: the rest of it (the
/// id gives both back). A line without that stamp is stored whole.
fn without_stamp(line: &str) -> &str {
    let stamp_len = "@time=".len() + 24 + ";msgid=".len() + 16;
    let stamped = line.len() > stamp_len
        && line.starts_with("@time=")
        && line[stamp_len - 23..].starts_with(";msgid=")
        && matches!(line.as_bytes()[stamp_len], b';' | b' ');
    if stamped {
        &line[stamp_len + 1..]
    } else {
        line
    }
}

/// The line `without_stamp` stored, with its `time` and `msgid` again.
fn with_stamp(msgid: u64, stored: &str) -> String {
    if stored.starts_with('@') {
        return stored.to_owned();
    }
    let time = tags::format_time(msgid >> ID_TIME_SHIFT);
    let id = MessageId(msgid).encode();
    let mut line = String::with_capacity(stored.len() + 56);
    line.push_str("@time=");
    line.push_str(std::str::from_utf8(&time).unwrap_or_default());
    line.push_str(";msgid=");
    line.push_str(std::str::from_utf8(&id).unwrap_or_default());
    // Other tags follow the stamp after a `;`; a bare line after a space.
    line.push(if stored.starts_with(':') { ' ' } else { ';' });
    line.push_str(stored);
    line
}

/// Deletes every direct message `identity` sent or received, as part of
/// `transaction`.
pub(super) async fn delete_direct_messages_in(
    transaction: &mut sqlx::Transaction<'_, Sqlite>,
    identity: &str,
) -> Result<(), StoreError> {
    for statement in [
        "DELETE FROM history WHERE target IN \
         (SELECT target FROM direct_conversations WHERE identity = ?)",
        "DELETE FROM direct_conversations WHERE target IN \
         (SELECT target FROM direct_conversations WHERE identity = ?)",
    ] {
        sqlx::query(statement)
            .bind(identity)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}
