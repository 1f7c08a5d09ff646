//! Accounts as the commands and the admin CLI see them: the rules for names,
//! passwords and emails, hashing off the async runtime, and logins that
//! take as long whether or not the account exists.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::RngCore;
use tokio::sync::Semaphore;

use crate::casemap::CaseMapping;
use crate::commands::is_valid_nick;
use crate::config::{AccountsConfig, Config};
use crate::password;
use crate::scram::ScramCredentials;
use crate::store::{Account, CreateAccountError, NewAccount, Store, StoreError};

/// Longest email address accepted (RFC 5321's path limit).
const MAX_EMAIL_LENGTH: usize = 254;
/// Longest password accepted, in bytes. Password managers make long ones
/// (600 bytes must work, in SASL's 400-byte pieces); Argon2 hashes any
/// length at about the same cost, but a bound keeps what a client can make
/// the server hold and hash small. `parlor account` and SASL take this
/// much; `REGISTER` and NickServ are bounded sooner by the 512-byte line.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The refusal of a password over [`MAX_PASSWORD_BYTES`].
pub fn password_too_long() -> String {
    format!("Passwords are at most {MAX_PASSWORD_BYTES} bytes long")
}

/// Why an account could not be registered or changed. The messages are
/// shown to the user as they are.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("The account name {0} is already registered")]
    Exists(String),
    #[error("{0}")]
    BadName(String),
    #[error("{0}")]
    WeakPassword(String),
    /// A password refused for another reason than weakness (its length).
    #[error("{0}")]
    UnacceptablePassword(String),
    #[error("{0}")]
    BadEmail(String),
    #[error("No such account")]
    NoSuchAccount,
    /// The database failed (logged with its cause, which users don't see).
    #[error("Accounts are unavailable right now; please try again later")]
    Unavailable,
}

/// The server's accounts: shared, cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    casemapping: CaseMapping,
    /// Swapped by a reload of `[accounts]`.
    hashing: arc_swap::ArcSwap<Hashing>,
    /// Argon2 runs this many at a time on the blocking pool: a burst of
    /// logins queues instead of taking every core and its memory cost each.
    permits: Arc<Semaphore>,
    /// Keys the fake SCRAM salts of unknown names (see
    /// [`ScramCredentials::decoy`]).
    decoy_secret: [u8; 32],
}

/// The `[accounts]` rules and the Argon2 instance made from them.
struct Hashing {
    rules: AccountsConfig,
    argon2: Argon2<'static>,
    /// Checked when a name is unknown, so that probing names costs what
    /// guessing passwords costs. Made with the same parameters as new
    /// hashes, so that it costs the same.
    decoy_hash: String,
}

impl Hashing {
    /// Computes one Argon2 hash (the decoy): call it off the async runtime.
    fn new(rules: &AccountsConfig) -> Hashing {
        let params = Params::new(
            rules.argon2_memory_kib,
            rules.argon2_iterations,
            rules.argon2_parallelism,
            None,
        )
        // Config validation builds the same parameters and refuses the file
        // if they fail, so this cannot fail.
        .expect("validated Argon2 parameters");
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        Hashing {
            decoy_hash: password::hash_with(&argon2, "a decoy that no password matches"),
            argon2,
            rules: rules.clone(),
        }
    }
}

impl Accounts {
    /// Computes one Argon2 hash (the decoy): call it off the async runtime.
    pub fn new(store: Store, config: &Config) -> Accounts {
        let mut decoy_secret = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut decoy_secret);
        let parallel = std::thread::available_parallelism().map_or(2, usize::from);
        Accounts {
            inner: Arc::new(Inner {
                store,
                hashing: arc_swap::ArcSwap::from_pointee(Hashing::new(&config.accounts)),
                casemapping: config.server.casemapping,
                permits: Arc::new(Semaphore::new(parallel)),
                decoy_secret,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Puts new `[accounts]` rules in force (a reload). Computes one
    /// Argon2 hash: call it off the async runtime.
    pub fn reload(&self, rules: &AccountsConfig) {
        self.inner.hashing.store(Arc::new(Hashing::new(rules)));
    }

    /// The rules in force.
    fn rules(&self) -> arc_swap::Guard<Arc<Hashing>> {
        self.inner.hashing.load()
    }

    /// The key an account name is stored under.
    pub fn fold(&self, name: &str) -> String {
        self.inner.casemapping.fold(name)
    }

    pub fn check_name(&self, name: &str) -> Result<(), AccountError> {
        let max = self.rules().rules.name_length;
        if name.len() > max {
            return Err(AccountError::BadName(format!(
                "Account names are at most {max} characters long"
            )));
        }
        if !is_valid_nick(name, max) || name.eq_ignore_ascii_case("NickServ") {
            return Err(AccountError::BadName(format!(
                "{name} is not a valid account name: use a nickname (letters, digits and -[]\\`_^{{|}}, not starting with a digit or -)"
            )));
        }
        Ok(())
    }

    pub fn check_password(&self, password: &str) -> Result<(), AccountError> {
        // The longest is checked first, in bytes: counting the characters
        // of a huge one would be work for nothing.
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(AccountError::UnacceptablePassword(password_too_long()));
        }
        let min = self.rules().rules.min_password_length;
        if password.chars().count() < min {
            return Err(AccountError::WeakPassword(format!(
                "Passwords must be at least {min} characters long"
            )));
        }
        Ok(())
    }

    /// `None` is no address given (`*`).
    pub fn check_email(&self, email: Option<&str>) -> Result<(), AccountError> {
        let Some(email) = email else {
            return if self.rules().rules.email_required {
                Err(AccountError::BadEmail(
                    "An email address is required to register on this server".into(),
                ))
            } else {
                Ok(())
            };
        };
        let plausible = email.len() <= MAX_EMAIL_LENGTH
            && !email.contains(|c: char| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if plausible {
            Ok(())
        } else {
            Err(AccountError::BadEmail(format!(
                "{email} is not a valid email address"
            )))
        }
    }

    /// Registers `name` after checking every rule. The name is also the
    /// first nick the account owns.
    pub async fn register(
        &self,
        name: &str,
        email: Option<&str>,
        password: &str,
    ) -> Result<Account, AccountError> {
        self.check_name(name)?;
        self.check_email(email)?;
        self.check_password(password)?;
        let (hash, scram) = self.credentials(password).await?;
        let folded = self.fold(name);
        let created = NewAccount {
            name,
            name_folded: &folded,
            email,
            password_hash: &hash,
            scram: Some(&scram),
            created_at: unix_now(),
        };
        match self.inner.store.create_account(&created).await {
            Ok(()) => {
                tracing::info!(account = name, "account registered");
                crate::metrics::account_registered();
            }
            Err(CreateAccountError::Exists) => return Err(AccountError::Exists(name.to_owned())),
            Err(CreateAccountError::Store(error)) => return Err(unavailable(error)),
        }
        self.inner
            .store
            .account(&folded)
            .await
            .map_err(unavailable)?
            .ok_or(AccountError::NoSuchAccount)
    }

    /// The account `name` if `password` is its password. Takes one Argon2
    /// check whether or not the account exists; a password no account can
    /// have (too long) takes none.
    pub async fn log_in(&self, name: &str, password: &str) -> Result<Account, AccountError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(AccountError::UnacceptablePassword(password_too_long()));
        }
        let account = self
            .inner
            .store
            .account(&self.fold(name))
            .await
            .map_err(unavailable)?;
        let hash = match &account {
            Some(account) => account.password_hash.clone(),
            None => self.rules().decoy_hash.clone(),
        };
        let password = password.to_owned();
        let matched = self
            .blocking(move || password::verify(&hash, &password))
            .await?;
        match account {
            Some(account) if matched => Ok(account),
            _ => Err(AccountError::NoSuchAccount),
        }
    }

    /// What a SCRAM exchange for `name` checks against, and the account it
    /// logs in to. An unknown name, or an account made before SCRAM
    /// credentials were kept, gets a decoy that no proof matches, with a
    /// salt that stays the same for the name, so the exchange looks the
    /// same as for a real account.
    pub async fn scram_credentials(
        &self,
        name: &str,
    ) -> Result<(Option<Account>, ScramCredentials), AccountError> {
        let folded = self.fold(name);
        let account = self
            .inner
            .store
            .account(&folded)
            .await
            .map_err(unavailable)?;
        match account {
            Some(Account {
                scram: Some(ref credentials),
                ..
            }) => {
                let credentials = credentials.clone();
                Ok((account, credentials))
            }
            _ => {
                let mut decoy = ScramCredentials::decoy(&folded, &self.inner.decoy_secret);
                // The iteration count is sent to the client: a decoy with
                // another count than real accounts would tell them apart.
                decoy.iterations = self.rules().rules.scram_iterations;
                Ok((None, decoy))
            }
        }
    }

    pub async fn change_password(
        &self,
        account_folded: &str,
        password: &str,
    ) -> Result<(), AccountError> {
        self.check_password(password)?;
        let (hash, scram) = self.credentials(password).await?;
        match self
            .inner
            .store
            .set_password(account_folded, &hash, Some(&scram))
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(AccountError::NoSuchAccount),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// The Argon2 hash and SCRAM credentials for a new password, computed
    /// on the blocking pool.
    async fn credentials(
        &self,
        password: &str,
    ) -> Result<(String, ScramCredentials), AccountError> {
        let hashing = self.inner.hashing.load_full();
        let password = password.to_owned();
        self.blocking(move || {
            (
                password::hash_with(&hashing.argon2, &password),
                ScramCredentials::generate(&password, hashing.rules.scram_iterations),
            )
        })
        .await
    }

    /// Runs slow work on the blocking pool, a few at a time.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountError> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AccountError::Unavailable)?;
        // The permit goes with the work: if the waiting connection goes
        // away, the hash still runs to its end and must still count.
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|_| AccountError::Unavailable)
    }
}

fn unavailable(error: StoreError) -> AccountError {
    tracing::error!(%error, "account store failed");
    AccountError::Unavailable
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A unix time as an HTTP date (`Mon, 23 Nov 2026 10:44:18 GMT`), how
/// account dates are shown.
pub fn http_date(unix: i64) -> String {
    let since_epoch = std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + since_epoch)
}
