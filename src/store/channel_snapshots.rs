//! Snapshots of the channels alive when the server stopped, so that a
//! restart gives them back as they were (see `server/restore.rs`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{ChannelState, Store, StoreError};

/// A channel as it was: enough to make it the same channel again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSnapshot {
    /// The display name.
    pub name: String,
    /// Unix seconds (329).
    pub created: u64,
    /// The message id its history starts after (`Channel::history_after`).
    pub history_after: u64,
    pub state: ChannelState,
    /// Members who had ops or voice, and in a channel with `+i` or `+k`
    /// every member, since they could not otherwise come back in.
    pub members: Vec<SavedMember>,
    /// For a channel saved with nobody in it (still waiting after an
    /// earlier restart): when that wait ends, in Unix seconds. A restart
    /// does not make it wait longer. `None` for a channel that had people.
    #[serde(default)]
    pub wait_until: Option<u64>,
}

/// A member to recognise when it comes back, and its status then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedMember {
    pub who: MemberKey,
    pub op: bool,
    pub voice: bool,
    /// For a member still awaited from an earlier restart: when that wait
    /// ends (Unix seconds). `None` for a member there when it was saved.
    #[serde(default)]
    pub wait_until: Option<u64>,
}

/// How a returning member is recognised: by its account when it was
/// logged in to one, otherwise by its nick and address together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "lowercase")]
pub enum MemberKey {
    /// The folded account name and the account's uid: an account dropped
    /// and registered again by someone else is not the same one.
    Account { account: String, uid: i64 },
    /// The folded nick and the address it came from.
    Address { nick: String, ip: IpAddr },
}

impl Store {
    /// Writes each snapshot (`Some`) or forgets the channel (`None`), all
    /// in one transaction.
    pub async fn save_channel_snapshots(
        &self,
        changes: &[(String, Option<ChannelSnapshot>)],
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut transaction = self.pool.begin().await?;
        for (name_folded, snapshot) in changes {
            match snapshot {
                Some(snapshot) => {
                    let json = serde_json::to_string(snapshot)
                        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                    sqlx::query(
                        "INSERT INTO channel_snapshots (name_folded, snapshot) VALUES ($1, $2) \
                         ON CONFLICT (name_folded) DO UPDATE SET snapshot = excluded.snapshot",
                    )
                    .bind(name_folded)
                    .bind(json)
                    .execute(&mut *transaction)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM channel_snapshots WHERE name_folded = $1")
                        .bind(name_folded)
                        .execute(&mut *transaction)
                        .await?;
                }
            }
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Every saved channel. A row that cannot be read (hand-edited, or
    /// from a format that no longer exists) is deleted with a warning: one
    /// bad row must not keep the server from starting, nor warn at every
    /// start.
    pub async fn channel_snapshots(&self) -> Result<Vec<ChannelSnapshot>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT name_folded, snapshot FROM channel_snapshots ORDER BY name_folded",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut snapshots = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        for (name_folded, json) in rows {
            match serde_json::from_str::<ChannelSnapshot>(&json) {
                Ok(snapshot) => snapshots.push(snapshot),
                Err(error) => {
                    tracing::warn!(channel = %name_folded, %error, "cannot read saved channel; forgetting it");
                    unreadable.push((name_folded, None));
                }
            }
        }
        self.save_channel_snapshots(&unreadable).await?;
        Ok(snapshots)
    }

    /// Forgets every saved channel.
    pub async fn clear_channel_snapshots(&self) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM channel_snapshots")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
