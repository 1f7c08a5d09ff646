//! The health check's write: proof that the database takes writes now.

use super::{Store, StoreError};

impl Store {
    /// Writes (and commits) the one row of `health_probe` with `now_ms`.
    /// Fails as a real write would: the disk full, the file read-only,
    /// another writer holding the lock past the busy timeout.
    pub async fn probe_write(&self, now_ms: u64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO health_probe (id, checked_ms) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET checked_ms = excluded.checked_ms",
        )
        .bind(i64::try_from(now_ms).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
