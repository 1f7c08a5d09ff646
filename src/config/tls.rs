//! `[tls]`: TLS listeners, the certificate they serve, STS, and whether
//! passwords may cross plaintext connections.

use std::net::SocketAddr;
use std::path::PathBuf;

pub use super::acme::AcmeConfig;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Addresses for IRC over TLS; empty: no TLS.
    pub listen: Vec<String>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// How often the files are checked for a renewal; 0: only on SIGHUP
    /// and REHASH.
    pub reload_check_secs: u64,
    /// Advertise the `sts` capability (only when TLS listens).
    pub sts: bool,
    pub sts_duration_secs: u64,
    /// The port `sts` points plaintext clients to; 0: the first TLS
    /// listener's.
    pub sts_port: u16,
    pub sts_preload: bool,
    pub plaintext_passwords: PlaintextPasswords,
    /// Whether clients on this host may send passwords over plaintext
    /// whatever `plaintext_passwords` says: nobody else can read them.
    pub plaintext_passwords_loopback: bool,
    /// Certificates from an ACME CA instead of `cert_file`/`key_file`.
    #[serde(default)]
    pub acme: Option<AcmeConfig>,
}

/// Whether SASL PLAIN and password commands are taken over plaintext
/// connections from other hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaintextPasswords {
    /// Refused whenever TLS is configured, so there is somewhere better
    /// to send them.
    Auto,
    Allow,
    Refuse,
}

/// Longest `tls.sts_duration_secs`: a year, what preload lists ask for.
const MAX_STS_DURATION_SECS: u64 = 366 * 86_400;

impl TlsConfig {
    /// Whether any listener speaks TLS.
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty()
    }

    /// The TLS listen addresses, parsed. Validation guarantees they parse.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.listen.iter().filter_map(|a| a.parse().ok()).collect()
    }

    /// Whether passwords are refused over plaintext from other hosts.
    pub fn refuses_plaintext_passwords(&self) -> bool {
        match self.plaintext_passwords {
            PlaintextPasswords::Auto => self.enabled(),
            PlaintextPasswords::Allow => false,
            PlaintextPasswords::Refuse => true,
        }
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        for addr in &self.listen {
            if addr.parse::<SocketAddr>().is_err() {
                return Err((
                    "tls.listen",
                    format!("{addr:?} is not an address: write IP:PORT, e.g. \"0.0.0.0:6697\" or \"[::]:6697\""),
                ));
            }
        }
        if let Some(acme) = &self.acme {
            acme.validate()?;
            for (key, path) in [
                ("tls.cert_file", &self.cert_file),
                ("tls.key_file", &self.key_file),
            ] {
                if !path.as_os_str().is_empty() {
                    return Err((
                        key,
                        "[tls.acme] provides the certificate: leave tls.cert_file and tls.key_file empty, or remove [tls.acme] to serve files".into(),
                    ));
                }
            }
        } else if self.enabled() {
            if self.cert_file.as_os_str().is_empty() {
                return Err((
                    "tls.cert_file",
                    "TLS listens (tls.listen) but no certificate is named: give a PEM file (`parlor mkcert` writes one for testing)".into(),
                ));
            }
            if self.key_file.as_os_str().is_empty() {
                return Err((
                    "tls.key_file",
                    "TLS listens (tls.listen) but no key is named: give the PEM key of tls.cert_file".into(),
                ));
            }
        }
        if self.sts_duration_secs > MAX_STS_DURATION_SECS {
            return Err((
                "tls.sts_duration_secs",
                format!(
                    "{} is out of range: allowed 0 to {MAX_STS_DURATION_SECS} (a year)",
                    self.sts_duration_secs
                ),
            ));
        }
        Ok(())
    }
}
