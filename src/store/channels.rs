//! Registered channels: their founder, access list and the state (topic,
//! modes, ban/exception/invite lists) restored when the server restarts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{Sqlite, Transaction};

use super::{narrow, Store, StoreError};

/// Channel access granted to an account, applied when it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessLevel {
    Op,
    Voice,
}

impl AccessLevel {
    fn as_column(self) -> &'static str {
        match self {
            AccessLevel::Op => "op",
            AccessLevel::Voice => "voice",
        }
    }

    fn from_column(text: &str) -> Result<AccessLevel, sqlx::Error> {
        match text {
            "op" => Ok(AccessLevel::Op),
            "voice" => Ok(AccessLevel::Voice),
            other => Err(sqlx::Error::Decode(
                format!("column level: unknown access level {other:?}").into(),
            )),
        }
    }
}

/// An entry of a channel's ban (`b`), exception (`e`) or invite-exception
/// (`I`) list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    pub mode: char,
    pub mask: String,
    pub set_by: String,
    /// Unix seconds.
    pub set_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub text: String,
    pub set_by: String,
    /// Unix seconds.
    pub set_at: i64,
}

/// The part of a channel's state that survives a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    pub topic: Option<Topic>,
    /// Flag modes without arguments, e.g. "imnpst"; stored as given.
    pub modes: String,
    pub key: Option<String>,
    pub limit: Option<u32>,
    pub lists: Vec<ListEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredChannel {
    pub name: String,
    pub name_folded: String,
    /// Folded name of the founding account.
    pub founder: String,
    /// Unix seconds.
    pub registered_at: i64,
    /// Lists come ordered by mode, then time set, then mask.
    pub state: ChannelState,
    /// (folded account name, level), ordered by account.
    pub access: Vec<(String, AccessLevel)>,
}

#[derive(sqlx::FromRow)]
struct ChannelRow {
    name: String,
    name_folded: String,
    founder: String,
    registered_at: i64,
    topic: Option<String>,
    topic_set_by: Option<String>,
    topic_set_at: Option<i64>,
    modes: String,
    channel_key: Option<String>,
    user_limit: Option<i64>,
}

impl ChannelRow {
    fn into_channel(self) -> Result<RegisteredChannel, sqlx::Error> {
        // The table's CHECK makes the topic columns all-or-nothing.
        let topic = match (self.topic, self.topic_set_by, self.topic_set_at) {
            (Some(text), Some(set_by), Some(set_at)) => Some(Topic {
                text,
                set_by,
                set_at,
            }),
            _ => None,
        };
        let limit = self
            .user_limit
            .map(|limit| narrow(limit, "user_limit"))
            .transpose()?;
        Ok(RegisteredChannel {
            name: self.name,
            name_folded: self.name_folded,
            founder: self.founder,
            registered_at: self.registered_at,
            state: ChannelState {
                topic,
                modes: self.modes,
                key: self.channel_key,
                limit,
                lists: Vec::new(),
            },
            access: Vec::new(),
        })
    }
}

#[derive(sqlx::FromRow)]
struct AccessRow {
    channel: String,
    account: String,
    level: String,
}

#[derive(sqlx::FromRow)]
struct ListRow {
    channel: String,
    mode: String,
    mask: String,
    set_by: String,
    set_at: i64,
}

impl ListRow {
    fn into_entry(self) -> Result<ListEntry, sqlx::Error> {
        let mut chars = self.mode.chars();
        let (Some(mode), None) = (chars.next(), chars.next()) else {
            return Err(sqlx::Error::Decode(
                format!("column mode: {:?} is not one mode letter", self.mode).into(),
            ));
        };
        Ok(ListEntry {
            mode,
            mask: self.mask,
            set_by: self.set_by,
            set_at: self.set_at,
        })
    }
}

/// Puts each access and list row on its channel. Rows of channels not in
/// `channel_rows` are skipped: foreign keys rule them out unless someone
/// edited the file with enforcement off.
fn assemble_channels(
    channel_rows: Vec<ChannelRow>,
    access_rows: Vec<AccessRow>,
    list_rows: Vec<ListRow>,
) -> Result<Vec<RegisteredChannel>, sqlx::Error> {
    let mut channels = Vec::with_capacity(channel_rows.len());
    let mut index_by_name = HashMap::with_capacity(channel_rows.len());
    for row in channel_rows {
        index_by_name.insert(row.name_folded.clone(), channels.len());
        channels.push(row.into_channel()?);
    }
    for row in access_rows {
        if let Some(&index) = index_by_name.get(&row.channel) {
            let level = AccessLevel::from_column(&row.level)?;
            channels[index].access.push((row.account, level));
        }
    }
    for row in list_rows {
        if let Some(&index) = index_by_name.get(&row.channel) {
            channels[index].state.lists.push(row.into_entry()?);
        }
    }
    Ok(channels)
}

/// Writes the channel's lists; the caller has removed the old ones. A mask
/// repeated under one mode is kept once rather than failing the save.
async fn insert_list_entries(
    transaction: &mut Transaction<'_, Sqlite>,
    channel_folded: &str,
    lists: &[ListEntry],
) -> Result<(), sqlx::Error> {
    let mut mode_buffer = [0; 4];
    for entry in lists {
        sqlx::query(
            "INSERT INTO channel_list_entries (channel, mode, mask, set_by, set_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (channel, mode, mask) DO NOTHING",
        )
        .bind(channel_folded)
        .bind(&*entry.mode.encode_utf8(&mut mode_buffer))
        .bind(&entry.mask)
        .bind(&entry.set_by)
        .bind(entry.set_at)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

/// All names are folded with the server's casemapping by the caller (the
/// display `name` aside); the store compares them exactly.
impl Store {
    /// Registers the channel with `founder_folded` (an existing account, or
    /// a foreign key error) and its current state. Returns false, writing
    /// nothing, if it is already registered.
    pub async fn register_channel(
        &self,
        name: &str,
        name_folded: &str,
        founder_folded: &str,
        state: &ChannelState,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let insert = sqlx::query(
            "INSERT INTO registered_channels (name_folded, name, founder, registered_at, \
             topic, topic_set_by, topic_set_at, modes, channel_key, user_limit) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (name_folded) DO NOTHING",
        )
        .bind(name_folded)
        .bind(name)
        .bind(founder_folded)
        .bind(now);
        let inserted = bind_state(insert, state)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        insert_list_entries(&mut transaction, name_folded, &state.lists).await?;
        transaction.commit().await?;
        Ok(true)
    }

    pub async fn registered_channel(
        &self,
        name_folded: &str,
    ) -> Result<Option<RegisteredChannel>, StoreError> {
        let channels = self.load_channels(Some(name_folded)).await?;
        Ok(channels.into_iter().next())
    }

    /// Every registered channel, ordered by folded name, for restoring them
    /// at start.
    pub async fn registered_channels(&self) -> Result<Vec<RegisteredChannel>, StoreError> {
        self.load_channels(None).await
    }

    /// Loads one channel or all of them with three queries however many
    /// channels there are, in one transaction so the three agree.
    async fn load_channels(
        &self,
        only: Option<&str>,
    ) -> Result<Vec<RegisteredChannel>, StoreError> {
        let (channel_filter, member_filter) = match only {
            Some(_) => ("WHERE name_folded = $1", "WHERE channel = $1"),
            None => ("", ""),
        };
        let channel_sql = format!(
            "SELECT name, name_folded, founder, registered_at, topic, topic_set_by, \
             topic_set_at, modes, channel_key, user_limit \
             FROM registered_channels {channel_filter} ORDER BY name_folded"
        );
        let access_sql = format!(
            "SELECT channel, account, level FROM channel_access {member_filter} \
             ORDER BY channel, account"
        );
        let list_sql = format!(
            "SELECT channel, mode, mask, set_by, set_at FROM channel_list_entries \
             {member_filter} ORDER BY channel, mode, set_at, mask"
        );

        let mut transaction = self.pool.begin().await?;
        let mut channel_query = sqlx::query_as::<_, ChannelRow>(&channel_sql);
        let mut access_query = sqlx::query_as::<_, AccessRow>(&access_sql);
        let mut list_query = sqlx::query_as::<_, ListRow>(&list_sql);
        if let Some(name_folded) = only {
            channel_query = channel_query.bind(name_folded);
            access_query = access_query.bind(name_folded);
            list_query = list_query.bind(name_folded);
        }
        let channel_rows = channel_query.fetch_all(&mut *transaction).await?;
        let access_rows = access_query.fetch_all(&mut *transaction).await?;
        let list_rows = list_query.fetch_all(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(assemble_channels(channel_rows, access_rows, list_rows)?)
    }

    /// Unregisters the channel, with its access and lists. Returns whether
    /// it was registered.
    pub async fn drop_channel(&self, name_folded: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM registered_channels WHERE name_folded = $1")
            .bind(name_folded)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    /// Grants `level` to the account on the channel, replacing any earlier
    /// level, or with `None` revokes it. Returns whether the channel is
    /// registered. Granting to an unknown account is a foreign key error.
    pub async fn set_access(
        &self,
        channel_folded: &str,
        account_folded: &str,
        level: Option<AccessLevel>,
    ) -> Result<bool, StoreError> {
        let Some(level) = level else {
            let revoked =
                sqlx::query("DELETE FROM channel_access WHERE channel = $1 AND account = $2")
                    .bind(channel_folded)
                    .bind(account_folded)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
            return if revoked > 0 {
                Ok(true)
            } else {
                self.channel_is_registered(channel_folded).await
            };
        };
        // Selecting the values only when the channel exists turns a missing
        // channel into zero rows instead of a foreign key error. (The WHERE
        // also keeps SQLite from parsing ON CONFLICT as part of the SELECT.)
        let granted = sqlx::query(
            "INSERT INTO channel_access (channel, account, level) \
             SELECT $1, $2, $3 \
             WHERE EXISTS (SELECT 1 FROM registered_channels WHERE name_folded = $1) \
             ON CONFLICT (channel, account) DO UPDATE SET level = excluded.level",
        )
        .bind(channel_folded)
        .bind(account_folded)
        .bind(level.as_column())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(granted > 0)
    }

    async fn channel_is_registered(&self, name_folded: &str) -> Result<bool, StoreError> {
        let registered = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM registered_channels WHERE name_folded = $1)",
        )
        .bind(name_folded)
        .fetch_one(&self.pool)
        .await?;
        Ok(registered)
    }

    /// Replaces the channel's saved topic, modes, key, limit and all its
    /// lists at once, so a crash leaves either the old state or the new.
    /// Returns whether the channel is registered.
    pub async fn save_channel_state(
        &self,
        name_folded: &str,
        state: &ChannelState,
    ) -> Result<bool, StoreError> {
        // Writing first takes the write lock at once, which waits out
        // another process's writer instead of failing to upgrade a read.
        let mut transaction = self.pool.begin().await?;
        let update = sqlx::query(
            "UPDATE registered_channels SET topic = $2, topic_set_by = $3, topic_set_at = $4, \
             modes = $5, channel_key = $6, user_limit = $7 \
             WHERE name_folded = $1",
        )
        .bind(name_folded);
        let updated = bind_state(update, state)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM channel_list_entries WHERE channel = $1")
            .bind(name_folded)
            .execute(&mut *transaction)
            .await?;
        insert_list_entries(&mut transaction, name_folded, &state.lists).await?;
        transaction.commit().await?;
        Ok(true)
    }
}

/// Binds the state columns, in the order both statements list them:
/// topic, topic_set_by, topic_set_at, modes, channel_key, user_limit.
fn bind_state<'q>(
    query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    state: &'q ChannelState,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    let topic = state.topic.as_ref();
    query
        .bind(topic.map(|t| t.text.as_str()))
        .bind(topic.map(|t| t.set_by.as_str()))
        .bind(topic.map(|t| t.set_at))
        .bind(&state.modes)
        .bind(state.key.as_deref())
        .bind(state.limit.map(i64::from))
}
