//! TLS: the rustls configuration every TLS listener shares, the
//! certificate it serves (swapped without a restart when its files
//! change), client certificates for `certfp`, and development
//! certificates (`parlor mkcert`).
//!
//! The handshake is rustls's (through tokio-rustls); once it is done the
//! connection is handed to the same connection code as plain TCP, and its
//! records are made where every client's bytes leave (`server/wire.rs`).

pub mod acme;
mod client_certs;
pub mod mkcert;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::ring::sign::any_supported_type;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// How long a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no certificate in it (expected PEM `BEGIN CERTIFICATE` blocks)")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {message}")]
    BadPem { path: PathBuf, message: String },
    #[error("{path}: the key cannot sign with TLS (RSA, ECDSA and Ed25519 keys can): {message}")]
    BadKey { path: PathBuf, message: String },
    #[error("the key in {key} does not belong to the certificate in {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// The certificate and key files the server reads, and when they last
/// changed, to read them again after a renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    /// Reads and checks the pair.
    pub fn load(&self) -> Result<CertifiedKey, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let bad_pem = |path: &Path, error: rustls_pki_types::pem::Error| TlsError::BadPem {
            path: path.to_owned(),
            message: error.to_string(),
        };
        let cert_pem = read(&self.cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_pem(&self.cert, e))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: self.cert.clone(),
            });
        }
        let key_pem = read(&self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad_pem(&self.key, e))?;
        let signing_key = any_supported_type(&key).map_err(|e| TlsError::BadKey {
            path: self.key.clone(),
            message: e.to_string(),
        })?;
        let certified = CertifiedKey::new(chain, signing_key);
        if certified.keys_match().is_err() {
            return Err(TlsError::Mismatch {
                cert: self.cert.clone(),
                key: self.key.clone(),
            });
        }
        Ok(certified)
    }

    /// When either file last changed, if both can be read.
    pub fn modified(&self) -> Option<(SystemTime, SystemTime)> {
        let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        Some((modified(&self.cert)?, modified(&self.key)?))
    }
}

/// The certificate every TLS handshake is answered with. Swapped in
/// place: handshakes after a swap get the new one, connections made before
/// go on with theirs.
#[derive(Debug, Default)]
pub struct ServedCert {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl ServedCert {
    pub fn set(&self, certified: CertifiedKey) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(certified));
    }

    pub fn get(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ServedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.get()
    }
}

/// The configuration every TLS listener shares: TLS 1.2 and 1.3 with
/// rustls's safe defaults, the served certificate, and client
/// certificates asked for but not required (for certfp and SASL
/// EXTERNAL).
pub fn server_config(served: Arc<ServedCert>) -> Arc<ServerConfig> {
    // ring rather than aws-lc-rs: it builds with nothing but a C compiler
    // and quickly. rustls marks it deprecated for its lack of post-quantum
    // key exchange; the clients IRC has today do not offer one either.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    // X25519 first, as clients offer it. ring's default puts P-384 first,
    // whose generic arithmetic took ~850 µs of server CPU per handshake
    // (10,000 TLS connects: 890 µs per registration, against 33 plain).
    provider.kx_groups = vec![
        rustls::crypto::ring::kx_group::X25519,
        rustls::crypto::ring::kx_group::SECP256R1,
        rustls::crypto::ring::kx_group::SECP384R1,
    ];
    // AES-128 before AES-256: ten rounds instead of fourteen for every
    // record a fan-out seals, and SHA-256 instead of SHA-384 (which ring
    // runs without hardware help here: 11% of a handshake's CPU).
    // AES-128-GCM is the suite browsers and Go prefer.
    provider.cipher_suites.sort_by_key(|suite| {
        suite
            .suite()
            .as_str()
            .is_some_and(|name| name.contains("256_GCM"))
    });
    let provider = Arc::new(provider);
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_client_cert_verifier(Arc::new(client_certs::AnyClientCert::new(provider)))
        .with_cert_resolver(served);
    // The order above, not the client's: OpenSSL leads with AES-256.
    config.ignore_client_order = true;
    Arc::new(config)
}

/// A certificate's fingerprint as IRC shows it (certfp): the SHA-256 of its
/// DER bytes, in lowercase hex.
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = Sha256::digest(cert);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// What every TLS listener answers handshakes with: the served certificate
/// (reloaded from its files when they change) and rustls's configuration.
pub struct Acceptor {
    /// None: the certificate comes from ACME (`tls/acme.rs`), not files.
    files: Option<CertFiles>,
    served: Arc<ServedCert>,
    /// When the files held the certificate now served.
    loaded_from: std::sync::Mutex<Option<(SystemTime, SystemTime)>>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl Acceptor {
    /// Reads the certificate and key. Blocking file I/O: call it off the
    /// async threads.
    pub fn load(files: CertFiles) -> Result<Acceptor, TlsError> {
        let modified = files.modified();
        let certified = files.load()?;
        let served = Arc::new(ServedCert::default());
        served.set(certified);
        Ok(Acceptor {
            acceptor: tokio_rustls::TlsAcceptor::from(server_config(served.clone())),
            files: Some(files),
            served,
            loaded_from: std::sync::Mutex::new(modified),
        })
    }

    /// An acceptor with no certificate yet, for ACME to [`serve`] one:
    /// until then every handshake fails (rustls finds nothing to answer
    /// with), and the plaintext listeners work as ever.
    ///
    /// [`serve`]: Acceptor::serve
    pub fn empty() -> Acceptor {
        let served = Arc::new(ServedCert::default());
        Acceptor {
            acceptor: tokio_rustls::TlsAcceptor::from(server_config(served.clone())),
            files: None,
            served,
            loaded_from: std::sync::Mutex::new(None),
        }
    }

    /// The files served from; None when ACME provides the certificate.
    pub fn files(&self) -> Option<&CertFiles> {
        self.files.as_ref()
    }

    /// Reads the files again and serves what they hold from the next
    /// handshake on; a pair that fails to load leaves the current one.
    /// `only_if_changed` skips files whose times have not moved (the
    /// periodic check). Returns whether a new certificate is served.
    /// Blocking file I/O: call it off the async threads.
    pub fn reload(&self, only_if_changed: bool) -> Result<bool, TlsError> {
        let Some(files) = &self.files else {
            // ACME renews on its own schedule.
            return Ok(false);
        };
        let modified = files.modified();
        let mut loaded_from = self.loaded_from.lock().unwrap_or_else(|e| e.into_inner());
        if only_if_changed && modified == *loaded_from {
            return Ok(false);
        }
        let certified = files.load()?;
        self.served.set(certified);
        *loaded_from = modified;
        Ok(true)
    }

    /// Serves `certified` from the next handshake on (certificates that
    /// come from ACME rather than files).
    pub fn serve(&self, certified: CertifiedKey) {
        self.served.set(certified);
    }

    /// The certificate served now.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.served.get()
    }

    /// Runs the handshake on an accepted connection for a server that
    /// reads and writes through tokio-rustls (the HTTP door), within
    /// [`HANDSHAKE_TIMEOUT`].
    pub async fn handshake_stream(
        &self,
        socket: tokio::net::TcpStream,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(socket)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }

    /// Runs the handshake on an accepted connection, within
    /// [`HANDSHAKE_TIMEOUT`], and hands back the socket and its session.
    pub async fn handshake(
        &self,
        socket: tokio::net::TcpStream,
    ) -> std::io::Result<(tokio::net::TcpStream, rustls::ServerConnection)> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(socket)).await {
            Ok(Ok(stream)) => Ok(stream.into_inner()),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }
}
