//! Accounts and the nicks they own.
//!
//! An account always owns its own name as a nick, so `account_nicks` alone
//! answers who may use a nick, and no account can be named after a nick
//! another account owns.

use std::fmt;

use super::{narrow, Store, StoreError};
pub use crate::scram::ScramCredentials;

/// An account to create. `name_folded` is `name` folded with the server's
/// casemapping; the store does not fold.
#[derive(Clone, Copy)]
pub struct NewAccount<'a> {
    pub name: &'a str,
    pub name_folded: &'a str,
    pub email: Option<&'a str>,
    /// Argon2id PHC string.
    pub password_hash: &'a str,
    pub scram: Option<&'a ScramCredentials>,
    /// Unix seconds.
    pub created_at: i64,
}

impl fmt::Debug for NewAccount<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccount")
            .field("name", &self.name)
            .field("name_folded", &self.name_folded)
            .field("email", &self.email)
            .field("scram", &self.scram)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub name_folded: String,
    pub email: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub scram: Option<ScramCredentials>,
    /// Unix seconds.
    pub created_at: i64,
    /// Tells this account from an earlier one of the same name (see the
    /// second migration).
    pub uid: i64,
    /// When its last connection ended, in milliseconds (0: never).
    pub last_seen_ms: u64,
    /// Display forms of the nicks the account owns, its own name included,
    /// ordered by folded form.
    pub nicks: Vec<String>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("name_folded", &self.name_folded)
            .field("email", &self.email)
            .field("scram", &self.scram)
            .field("created_at", &self.created_at)
            .field("nicks", &self.nicks)
            .finish_non_exhaustive()
    }
}

/// One line of an account listing (admin CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub name: String,
    pub email: Option<String>,
    pub created_at: i64,
    pub nick_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateAccountError {
    #[error("account name is already taken")]
    Exists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CreateAccountError {
    fn from(error: sqlx::Error) -> Self {
        CreateAccountError::Store(StoreError::from(error))
    }
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    name: String,
    name_folded: String,
    email: Option<String>,
    password_hash: String,
    scram_salt: Option<Vec<u8>>,
    scram_iterations: Option<i64>,
    scram_stored_key: Option<Vec<u8>>,
    scram_server_key: Option<Vec<u8>>,
    created_at: i64,
    uid: i64,
    last_seen_ms: i64,
}

impl AccountRow {
    fn into_account(self, nicks: Vec<String>) -> Result<Account, sqlx::Error> {
        // The table's CHECK makes the SCRAM columns all-or-nothing.
        let scram = match (
            self.scram_salt,
            self.scram_iterations,
            self.scram_stored_key,
            self.scram_server_key,
        ) {
            (Some(salt), Some(iterations), Some(stored_key), Some(server_key)) => {
                Some(ScramCredentials {
                    salt,
                    iterations: narrow(iterations, "scram_iterations")?,
                    stored_key,
                    server_key,
                })
            }
            _ => None,
        };
        Ok(Account {
            name: self.name,
            name_folded: self.name_folded,
            email: self.email,
            password_hash: self.password_hash,
            scram,
            created_at: self.created_at,
            uid: self.uid,
            last_seen_ms: narrow(self.last_seen_ms, "last_seen_ms")?,
            nicks,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AccountSummaryRow {
    name: String,
    email: Option<String>,
    created_at: i64,
    nick_count: i64,
}

/// The SCRAM columns as bind values; `None` binds NULL to all four.
struct ScramColumns<'a> {
    salt: Option<&'a [u8]>,
    iterations: Option<i64>,
    stored_key: Option<&'a [u8]>,
    server_key: Option<&'a [u8]>,
}

impl<'a> ScramColumns<'a> {
    fn of(scram: Option<&'a ScramCredentials>) -> ScramColumns<'a> {
        ScramColumns {
            salt: scram.map(|s| s.salt.as_slice()),
            iterations: scram.map(|s| i64::from(s.iterations)),
            stored_key: scram.map(|s| s.stored_key.as_slice()),
            server_key: scram.map(|s| s.server_key.as_slice()),
        }
    }
}

/// All keys are folded with the server's casemapping by the caller; the
/// store compares them exactly.
impl Store {
    /// Creates the account and makes it the owner of its own name as a nick.
    /// Fails with `Exists` if the name is an account or a nick another
    /// account owns; then nothing is written.
    pub async fn create_account(&self, account: &NewAccount<'_>) -> Result<(), CreateAccountError> {
        let scram = ScramColumns::of(account.scram);
        // Both statements are writes, so the transaction takes the write lock
        // on its first statement (waiting out another process's writer)
        // rather than failing to upgrade a stale read snapshot.
        let mut transaction = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO accounts (name_folded, name, email, password_hash, scram_salt, \
             scram_iterations, scram_stored_key, scram_server_key, created_at, uid) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (name_folded) DO NOTHING",
        )
        .bind(account.name_folded)
        .bind(account.name)
        .bind(account.email)
        .bind(account.password_hash)
        .bind(scram.salt)
        .bind(scram.iterations)
        .bind(scram.stored_key)
        .bind(scram.server_key)
        .bind(account.created_at)
        .bind(new_uid())
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(CreateAccountError::Exists);
        }
        let nick_claimed = sqlx::query(
            "INSERT INTO account_nicks (nick_folded, nick, account, created_at) \
             VALUES ($1, $2, $1, $3) \
             ON CONFLICT (nick_folded) DO NOTHING",
        )
        .bind(account.name_folded)
        .bind(account.name)
        .bind(account.created_at)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if nick_claimed == 0 {
            // Dropping the transaction rolls back the account row.
            return Err(CreateAccountError::Exists);
        }
        // Direct messages left under the name (kept for an account deleted
        // while the server still held some for it) are not the new one's.
        super::history::delete_direct_messages_in(&mut transaction, account.name_folded).await?;
        transaction.commit().await?;
        self.nick_owners
            .owned(account.name_folded, account.name_folded);
        Ok(())
    }

    pub async fn account(&self, name_folded: &str) -> Result<Option<Account>, StoreError> {
        // One transaction so the nicks belong to the same snapshot as the row.
        let mut transaction = self.pool.begin().await?;
        let row: Option<AccountRow> = sqlx::query_as(
            "SELECT name, name_folded, email, password_hash, scram_salt, scram_iterations, \
             scram_stored_key, scram_server_key, created_at, uid, last_seen_ms \
             FROM accounts WHERE name_folded = $1",
        )
        .bind(name_folded)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let nicks: Vec<String> = sqlx::query_scalar(
            "SELECT nick FROM account_nicks WHERE account = $1 ORDER BY nick_folded",
        )
        .bind(name_folded)
        .fetch_all(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Some(row.into_account(nicks)?))
    }

    pub async fn set_last_seen(&self, name_folded: &str, time_ms: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET last_seen_ms = $1 WHERE name_folded = $2")
            .bind(time_ms as i64)
            .bind(name_folded)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The folded name of the account owning `nick_folded`, if any.
    pub async fn account_owning_nick(
        &self,
        nick_folded: &str,
    ) -> Result<Option<String>, StoreError> {
        let owner = sqlx::query_scalar("SELECT account FROM account_nicks WHERE nick_folded = $1")
            .bind(nick_folded)
            .fetch_optional(&self.pool)
            .await?;
        Ok(owner)
    }

    /// Replaces the password hash and SCRAM credentials; `scram: None`
    /// clears the old credentials, which no longer match the password.
    /// Returns whether the account exists.
    pub async fn set_password(
        &self,
        name_folded: &str,
        password_hash: &str,
        scram: Option<&ScramCredentials>,
    ) -> Result<bool, StoreError> {
        let scram = ScramColumns::of(scram);
        let updated = sqlx::query(
            "UPDATE accounts SET password_hash = $2, scram_salt = $3, scram_iterations = $4, \
             scram_stored_key = $5, scram_server_key = $6 \
             WHERE name_folded = $1",
        )
        .bind(name_folded)
        .bind(password_hash)
        .bind(scram.salt)
        .bind(scram.iterations)
        .bind(scram.stored_key)
        .bind(scram.server_key)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated > 0)
    }

    /// Deletes the account with its nicks, its channel access entries and
    /// the channels it founded. Returns whether it existed.
    pub async fn delete_account(&self, name_folded: &str) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        // The rest goes by ON DELETE CASCADE.
        let deleted = sqlx::query("DELETE FROM accounts WHERE name_folded = $1")
            .bind(name_folded)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        // Its direct messages go too: whoever registers the name next must
        // not read them.
        super::history::delete_direct_messages_in(&mut transaction, name_folded).await?;
        transaction.commit().await?;
        if deleted > 0 {
            self.nick_owners.account_deleted(name_folded);
        }
        Ok(deleted > 0)
    }

    /// Every account, ordered by folded name.
    pub async fn accounts(&self) -> Result<Vec<AccountSummary>, StoreError> {
        // PostgreSQL wants every selected column grouped, not just the key.
        let rows: Vec<AccountSummaryRow> = sqlx::query_as(
            "SELECT a.name, a.email, a.created_at, COUNT(n.nick_folded) AS nick_count \
             FROM accounts a LEFT JOIN account_nicks n ON n.account = a.name_folded \
             GROUP BY a.name_folded, a.name, a.email, a.created_at \
             ORDER BY a.name_folded",
        )
        .fetch_all(&self.pool)
        .await?;
        let summaries = rows
            .into_iter()
            .map(|row| {
                Ok(AccountSummary {
                    name: row.name,
                    email: row.email,
                    created_at: row.created_at,
                    nick_count: narrow(row.nick_count, "nick_count")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(summaries)
    }

    /// Gives `nick` to the account. Returns false if another account owns
    /// it; re-adding a nick the account already owns succeeds and updates
    /// its display form. The account must exist (a foreign key error
    /// otherwise).
    pub async fn add_nick(
        &self,
        account_folded: &str,
        nick: &str,
        nick_folded: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let written = sqlx::query(
            "INSERT INTO account_nicks (nick_folded, nick, account, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (nick_folded) DO UPDATE SET nick = excluded.nick \
             WHERE account_nicks.account = excluded.account",
        )
        .bind(nick_folded)
        .bind(nick)
        .bind(account_folded)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if written > 0 {
            self.nick_owners.owned(nick_folded, account_folded);
        }
        Ok(written > 0)
    }

    /// Releases a nick the account owns. Returns false if it does not own
    /// it, or if it is the account's own name, which it keeps for life.
    pub async fn remove_nick(
        &self,
        account_folded: &str,
        nick_folded: &str,
    ) -> Result<bool, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM account_nicks \
             WHERE nick_folded = $2 AND account = $1 AND nick_folded <> $1",
        )
        .bind(account_folded)
        .bind(nick_folded)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if deleted > 0 {
            self.nick_owners.released(nick_folded);
        }
        Ok(deleted > 0)
    }
}

/// A fresh account uid: random, positive, never 0 (the uid of accounts
/// made before uids existed).
fn new_uid() -> i64 {
    use rand_core::RngCore;
    let uid = (rand_core::OsRng.next_u64() >> 1) as i64;
    uid.max(1)
}
