//! Everything that touches the database: accounts, registered channels
//! and history (media later), behind a small async API the commands call.
//!
//! The store never case-folds. The casemapping is server configuration, so
//! callers pass both the display form of a name and its key already folded
//! with that casemapping (`name_folded`, `nick_folded`, ...); lookups compare
//! folded keys byte for byte.
//!
//! The SQL is kept portable to PostgreSQL (see the header of the migration)
//! so a second backend needs new connection code, not new queries.

mod accounts;
pub mod backup;
mod certificates;
mod channel_snapshots;
mod channels;
mod health;
mod history;
mod nick_owners;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use tokio::time::Instant;

pub use accounts::{Account, AccountSummary, CreateAccountError, NewAccount, ScramCredentials};
pub use certificates::{CertAdded, MAX_CERTS_PER_ACCOUNT};
pub use channel_snapshots::{ChannelSnapshot, MemberKey, SavedMember};
pub use channels::{AccessLevel, ChannelState, ListEntry, RegisteredChannel, Topic};
pub use history::{HistoryRecord, Kinds, StoredMessage, DIRECT_PREFIX};

const DATABASE_FILE_NAME: &str = "parlor.db";

/// The admin CLI and a running server may write the same file; a writer
/// waits this long for the other's lock before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `close` waits for connections other tasks still use.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: Migrator = sqlx::migrate!("src/store/migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `source` is the I/O error creating the directory or SQLite's error.
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot migrate database {path}: {source}")]
    Migrate { path: PathBuf, source: MigrateError },
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

/// Every failed query becomes a `StoreError` here, once: the metrics count
/// database errors at this one place.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        crate::metrics::database_error();
        StoreError::Database(error)
    }
}

impl StoreError {
    /// Whether the database refused a write for a reason that passes with
    /// time or an admin's hand, so the write is worth trying again: a full
    /// disk, an I/O error, a read-only or locked file, memory, a file that
    /// cannot be opened, or the pool timing out. Other errors (a
    /// constraint, corruption, a bad statement) would fail the same way
    /// every time.
    pub fn is_transient(&self) -> bool {
        let StoreError::Database(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(error) => {
                // The extended result code; its low byte is the primary one.
                let code = error.code().and_then(|code| code.parse::<i32>().ok());
                matches!(
                    code.map(|code| code & 0xff),
                    Some(
                        SQLITE_BUSY
                            | SQLITE_LOCKED
                            | SQLITE_NOMEM
                            | SQLITE_READONLY
                            | SQLITE_IOERR
                            | SQLITE_FULL
                            | SQLITE_CANTOPEN
                            | SQLITE_PROTOCOL
                    )
                )
            }
            _ => false,
        }
    }
}

// SQLite's primary result codes (https://www.sqlite.org/rescode.html).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_NOMEM: i32 = 7;
const SQLITE_READONLY: i32 = 8;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_PROTOCOL: i32 = 15;

/// Handle to the database. Clones share one connection pool and one copy
/// of the nicks' owners (`nick_owners.rs`).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    nick_owners: Arc<nick_owners::NickOwners>,
}

impl Store {
    /// Opens (creating if needed) `data_dir/parlor.db` and brings its schema
    /// up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = database_path(data_dir);
        let open_error = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            path: path.clone(),
            source,
        };
        // Blocking, but only once at startup (and tokio's fs is not enabled).
        std::fs::create_dir_all(data_dir).map_err(|e| open_error(e.into()))?;

        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            // WAL lets readers run while another process writes. With it,
            // NORMAL sync can lose the last commits to a power cut but never
            // corrupts the file, and saves an fsync per commit.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePool::connect_with(options)
            .await
            .map_err(|e| open_error(e.into()))?;

        if let Err(source) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(StoreError::Migrate { path, source });
        }
        tracing::debug!(path = %path.display(), "database opened");
        let store = Store {
            pool,
            path,
            nick_owners: Arc::default(),
        };
        store.reload_nick_owners().await?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection, for all clones, checkpointing the WAL into
    /// the main file so a backup of `parlor.db` alone is complete.
    pub async fn close(&self) {
        if self.pool.is_closed() {
            return;
        }
        // SQLite checkpoints by itself when its last connection closes, but
        // sqlx's Pool::close can return while a connection is still on its
        // way back to the pool (sqlx issue #3217), so do it explicitly.
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot checkpoint database");
        }
        // Closing again picks up connections returned since the last pass;
        // waiting is bounded because a task may still hold one.
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        loop {
            self.pool.close().await;
            if self.pool.size() == 0 {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    path = %self.path.display(),
                    open_connections = self.pool.size(),
                    "database connections still in use after close"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The database file in `data_dir`.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DATABASE_FILE_NAME)
}

/// Converts a column read as i64 (the only integer type SQLite and
/// PostgreSQL's BIGINT share) into a narrower Rust type, treating an
/// out-of-range value as a decode failure rather than truncating it.
fn narrow<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T, sqlx::Error> {
    T::try_from(value).map_err(|_| {
        sqlx::Error::Decode(format!("column {column}: value {value} out of range").into())
    })
}

#[cfg(test)]
mod tests;
