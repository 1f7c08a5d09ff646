//! Certificates from an ACME CA (`[tls.acme]`): an account, an order for
//! the configured domains, http-01 challenges answered by the HTTP door,
//! and renewal before expiry, all on one task for the server's life.
//!
//! http-01 rather than tls-alpn-01: the CA fetches
//! `http://<domain>/.well-known/acme-challenge/<token>` on port 80, which
//! the HTTP door serves whatever ports IRC's TLS uses; tls-alpn-01 would
//! need a TLS listener on 443 answering the CA's special handshake.
//!
//! What is kept in `<data_dir>/acme/`: `account.json` (the account's key,
//! so a restart does not make a new account) and `<first domain>/cert.pem`
//! and `key.pem`. A stored certificate still valid is served at start and
//! no order is made until it is due.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Acceptor, CertFiles};
use crate::config::AcmeConfig;

/// Longest one attempt may take, from the account to the certificate: a
/// CA that stops answering mid-order is retried like one that is down.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the CA may take to check the challenges, and then to issue.
const CA_POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(60));

/// The key authorizations of the tokens the CA is checking now, for the
/// HTTP door's `/.well-known/acme-challenge/{token}`.
#[derive(Debug, Default)]
pub struct Challenges {
    pending: Mutex<HashMap<String, String>>,
}

impl Challenges {
    pub fn answer(&self, token: &str) -> Option<String> {
        self.lock().get(token).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Takes its tokens out of [`Challenges`] when the attempt ends, however
/// it ends.
struct Answering<'a> {
    challenges: &'a Challenges,
    tokens: Vec<String>,
}

impl Answering<'_> {
    fn add(&mut self, token: String, key_authorization: String) {
        self.challenges
            .lock()
            .insert(token.clone(), key_authorization);
        self.tokens.push(token);
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        let mut pending = self.challenges.lock();
        for token in &self.tokens {
            pending.remove(token);
        }
    }
}

/// What the ACME task has done, for the log's readers and for tests.
#[derive(Debug, Default)]
pub struct AcmeStatus {
    attempts: AtomicU64,
    failures: AtomicU64,
    issued: AtomicU64,
}

impl AcmeStatus {
    /// Orders begun (each try after a failure counts).
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Relaxed)
    }
    pub fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }
    /// Certificates obtained and served.
    pub fn issued(&self) -> u64 {
        self.issued.load(Relaxed)
    }
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
struct Validity {
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Validity {
    fn of(leaf_der: &[u8]) -> anyhow::Result<Validity> {
        let (_, cert) = x509_parser::parse_x509_certificate(leaf_der)
            .map_err(|e| anyhow::anyhow!("the certificate cannot be parsed: {e}"))?;
        let at = |t: x509_parser::time::ASN1Time| {
            UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64)
        };
        Ok(Validity {
            not_before: at(cert.validity().not_before),
            not_after: at(cert.validity().not_after),
        })
    }

    /// When to renew: `renew_before` before expiry, or with a third of
    /// the lifetime left when it is zero (Let's Encrypt's own advice).
    fn renew_at(&self, renew_before: Duration) -> SystemTime {
        let before = if renew_before.is_zero() {
            self.not_after
                .duration_since(self.not_before)
                .unwrap_or_default()
                / 3
        } else {
            renew_before
        };
        self.not_after.checked_sub(before).unwrap_or(UNIX_EPOCH)
    }
}

/// The account as stored: its credentials, and the directory they belong
/// to (another directory needs another account).
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

/// ACME for one server: its settings, the challenges it answers, and the
/// certificate it holds.
pub struct Acme {
    config: AcmeConfig,
    /// `<data_dir>/acme`.
    dir: PathBuf,
    pub challenges: Challenges,
    pub status: AcmeStatus,
    held: Mutex<Option<Validity>>,
}

impl Acme {
    pub fn new(config: AcmeConfig, data_dir: &Path) -> Acme {
        Acme {
            config,
            dir: data_dir.join("acme"),
            challenges: Challenges::default(),
            status: AcmeStatus::default(),
            held: Mutex::new(None),
        }
    }

    /// Where the certificate and its key are kept.
    pub fn cert_files(&self) -> CertFiles {
        let dir = self.dir.join(&self.config.domains[0]);
        CertFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    /// Serves the stored certificate if there is one still valid, so that
    /// a restart needs no CA. Blocking file I/O: call it off the async
    /// threads, before the listeners open.
    pub fn serve_stored(&self, acceptor: &Acceptor) {
        let files = self.cert_files();
        if !files.cert.exists() {
            return;
        }
        let loaded = files
            .load()
            .map_err(anyhow::Error::from)
            .and_then(|certified| Ok((Validity::of(certified.end_entity_cert()?)?, certified)));
        match loaded {
            Ok((validity, certified)) if validity.not_after > SystemTime::now() => {
                acceptor.serve(certified);
                *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(validity);
                info!(path = %files.cert.display(), "serving the stored ACME certificate");
            }
            Ok(_) => info!(path = %files.cert.display(), "the stored ACME certificate has expired"),
            Err(error) => {
                warn!(path = %files.cert.display(), error = %format!("{error:#}"), "the stored ACME certificate cannot be used")
            }
        }
    }

    fn held(&self) -> Option<Validity> {
        *self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gets a certificate when there is none or it is due, serves it, and
    /// starts again; until `stop`. A failed attempt is logged and tried
    /// again after a wait that doubles each time (`retry_first_ms` up to
    /// `retry_max_secs`).
    pub async fn run(self: Arc<Self>, acceptor: Arc<Acceptor>, stop: CancellationToken) {
        let check = Duration::from_secs(self.config.check_secs);
        let renew_before = Duration::from_secs(self.config.renew_before_secs);
        let first_retry = Duration::from_millis(self.config.retry_first_ms);
        let max_retry = Duration::from_secs(self.config.retry_max_secs).max(first_retry);
        let mut retry = first_retry;
        loop {
            let due_in = self.held().map_or(Duration::ZERO, |held| {
                held.renew_at(renew_before)
                    .duration_since(SystemTime::now())
                    .unwrap_or_default()
            });
            if !due_in.is_zero() {
                // Looked at again every `check_secs`: a clock that jumps
                // is noticed within that.
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(due_in.min(check)) => continue,
                }
            }
            let attempt = self.status.attempts.fetch_add(1, Relaxed) + 1;
            info!(attempt, domains = %self.config.domains.join(","), directory = %self.config.directory, "ordering a certificate from the ACME CA");
            let result = tokio::select! {
                () = stop.cancelled() => return,
                result = tokio::time::timeout(ATTEMPT_TIMEOUT, self.obtain()) => result,
            };
            let error = match result {
                Ok(Ok((certified, validity))) => {
                    acceptor.serve(certified);
                    *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(validity);
                    self.status.issued.fetch_add(1, Relaxed);
                    let expires = httpdate::fmt_http_date(validity.not_after);
                    info!(attempt, %expires, "ACME certificate obtained and served");
                    retry = first_retry;
                    // At least `check_secs` between orders, even when a
                    // CA's short lifetimes make the new one due at once.
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(check) => continue,
                    }
                }
                Ok(Err(error)) => format!("{error:#}"),
                Err(_) => format!("no certificate within {}s", ATTEMPT_TIMEOUT.as_secs()),
            };
            self.status.failures.fetch_add(1, Relaxed);
            warn!(
                attempt,
                %error,
                retry_in_ms = retry.as_millis() as u64,
                serving = if self.held().is_some() { "the current certificate" } else { "no certificate (TLS handshakes fail)" },
                "ACME order failed; trying again later"
            );
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(retry) => {}
            }
            retry = (retry * 2).min(max_retry);
        }
    }

    /// One order, from the account to the stored and loaded certificate.
    async fn obtain(&self) -> anyhow::Result<(CertifiedKey, Validity)> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .config
            .domains
            .iter()
            .map(|domain| Identifier::Dns(domain.clone()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .context("new order")?;
        let mut answering = Answering {
            challenges: &self.challenges,
            tokens: Vec::new(),
        };
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.context("authorization")?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                // Proved recently: the CA remembers.
                AuthorizationStatus::Valid => continue,
                status => bail!(
                    "the authorization for {} is {status:?}",
                    authorization.identifier()
                ),
            }
            let domain = authorization.identifier().to_string();
            let Some(mut challenge) = authorization.challenge(ChallengeType::Http01) else {
                bail!("the CA offers no http-01 challenge for {domain}");
            };
            answering.add(
                challenge.token.clone(),
                challenge.key_authorization().as_str().to_owned(),
            );
            challenge
                .set_ready()
                .await
                .with_context(|| format!("challenge for {domain}"))?;
        }
        let status = order.poll_ready(&CA_POLL).await.context("validation")?;
        if status != OrderStatus::Ready {
            let problem = order
                .state()
                .error
                .as_ref()
                .map_or_else(String::new, |p| format!(": {p}"));
            bail!("the CA did not validate the domains (order {status:?}){problem}; port 80 of each domain must reach the HTTP door");
        }
        drop(answering);
        let key_pem = order.finalize().await.context("finalize")?;
        let chain_pem = order
            .poll_certificate(&CA_POLL)
            .await
            .context("certificate")?;
        let files = self.cert_files();
        tokio::task::spawn_blocking(move || {
            write_private(&files.key, key_pem.as_bytes())?;
            write_private(&files.cert, chain_pem.as_bytes())?;
            let certified = files.load()?;
            let validity = Validity::of(certified.end_entity_cert()?)?;
            Ok((certified, validity))
        })
        .await?
    }

    /// The stored account for this directory, or a new one (stored).
    async fn account(&self) -> anyhow::Result<Account> {
        let path = self.dir.join("account.json");
        let builder = || -> anyhow::Result<_> {
            Ok(if self.config.ca_cert_file.as_os_str().is_empty() {
                Account::builder()?
            } else {
                Account::builder_with_root(&self.config.ca_cert_file).with_context(|| {
                    format!(
                        "tls.acme.ca_cert_file {}",
                        self.config.ca_cert_file.display()
                    )
                })?
            })
        };
        match tokio::fs::read(&path).await {
            Ok(bytes) => {
                let stored: StoredAccount = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not an account", path.display()))?;
                if stored.directory == self.config.directory {
                    return builder()?
                        .from_credentials(stored.credentials)
                        .await
                        .context("the directory");
                }
                info!(directory = %self.config.directory, "a new ACME directory: making an account there");
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).context(format!("cannot read {}", path.display())),
        }
        let contact = self.config.contact_uri();
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()?
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.config.directory.clone(),
                None,
            )
            .await
            .context("new account")?;
        let stored = serde_json::to_vec_pretty(&StoredAccount {
            directory: self.config.directory.clone(),
            credentials,
        })?;
        tokio::task::spawn_blocking(move || write_private(&path, &stored)).await??;
        info!(id = %account.id(), "ACME account created");
        Ok(account)
    }
}

/// Writes a file only the server's user may read (keys), whole: to a
/// temporary name first, renamed over the old one.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().context("a file in a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let temporary = path.with_extension("new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
