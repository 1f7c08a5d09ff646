//! Client certificate fingerprints registered to accounts (certfp), for
//! SASL EXTERNAL.

use super::{Store, StoreError};

/// What adding a fingerprint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertAdded {
    Added,
    /// The account had it already.
    AlreadyYours,
    /// Another account has it.
    Taken,
}

/// Most fingerprints one account may register.
pub const MAX_CERTS_PER_ACCOUNT: usize = 16;

impl Store {
    /// Registers `fingerprint` to the account; refused when another account
    /// has it or the account has [`MAX_CERTS_PER_ACCOUNT`] already
    /// (`Ok(None)`).
    pub async fn add_certificate(
        &self,
        account_folded: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<Option<CertAdded>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT account FROM account_certificates WHERE fingerprint = $1")
                .bind(fingerprint)
                .fetch_optional(&mut *transaction)
                .await?;
        match owner {
            Some(owner) if owner == account_folded => return Ok(Some(CertAdded::AlreadyYours)),
            Some(_) => return Ok(Some(CertAdded::Taken)),
            None => {}
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM account_certificates WHERE account = $1")
                .bind(account_folded)
                .fetch_one(&mut *transaction)
                .await?;
        if count as usize >= MAX_CERTS_PER_ACCOUNT {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO account_certificates (fingerprint, account, created_at) VALUES ($1, $2, $3)",
        )
        .bind(fingerprint)
        .bind(account_folded)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Some(CertAdded::Added))
    }

    /// Removes `fingerprint` from the account; whether it had it.
    pub async fn remove_certificate(
        &self,
        account_folded: &str,
        fingerprint: &str,
    ) -> Result<bool, StoreError> {
        let deleted =
            sqlx::query("DELETE FROM account_certificates WHERE account = $1 AND fingerprint = $2")
                .bind(account_folded)
                .bind(fingerprint)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(deleted > 0)
    }

    /// The account's fingerprints, oldest first.
    pub async fn certificates(&self, account_folded: &str) -> Result<Vec<String>, StoreError> {
        let fingerprints = sqlx::query_scalar(
            "SELECT fingerprint FROM account_certificates WHERE account = $1 \
             ORDER BY created_at, fingerprint",
        )
        .bind(account_folded)
        .fetch_all(&self.pool)
        .await?;
        Ok(fingerprints)
    }

    /// The folded name of the account `fingerprint` is registered to.
    pub async fn account_of_certificate(
        &self,
        fingerprint: &str,
    ) -> Result<Option<String>, StoreError> {
        let account =
            sqlx::query_scalar("SELECT account FROM account_certificates WHERE fingerprint = $1")
                .bind(fingerprint)
                .fetch_optional(&self.pool)
                .await?;
        Ok(account)
    }
}
