//! `[tls.acme]`: certificates from an ACME CA (Let's Encrypt by default),
//! renewed before they expire.

use std::path::PathBuf;

use serde::Deserialize;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeConfig {
    /// The names the certificate is for; the first names its directory
    /// under `<data_dir>/acme/`.
    pub domains: Vec<String>,
    /// An email address the CA may write to about the account (expiry
    /// warnings, policy changes). Empty: none.
    pub contact: String,
    /// The CA's directory URL.
    pub directory: String,
    /// A PEM CA certificate to trust for the directory's own HTTPS instead
    /// of the system's roots (a test CA such as pebble's). Empty: the
    /// system's roots.
    pub ca_cert_file: PathBuf,
    /// Renew when this many seconds of the certificate are left; 0: when a
    /// third of its lifetime is left.
    pub renew_before_secs: u64,
    /// How often the certificate is looked at to see whether it is due.
    pub check_secs: u64,
    /// The first wait after a failed attempt; each failure doubles it up
    /// to `retry_max_secs`.
    pub retry_first_ms: u64,
    pub retry_max_secs: u64,
}

impl Default for AcmeConfig {
    fn default() -> AcmeConfig {
        AcmeConfig {
            domains: Vec::new(),
            contact: String::new(),
            directory: LETS_ENCRYPT.to_owned(),
            ca_cert_file: PathBuf::new(),
            renew_before_secs: 0,
            check_secs: 3600,
            retry_first_ms: 5000,
            retry_max_secs: 3600,
        }
    }
}

impl AcmeConfig {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.domains.is_empty() {
            return Err((
                "tls.acme.domains",
                "no domain: name at least one, e.g. [\"irc.example.org\"]".into(),
            ));
        }
        for domain in &self.domains {
            if !is_dns_name(domain) {
                return Err((
                    "tls.acme.domains",
                    format!("{domain:?} is not a DNS name (letters, digits, '-' and '.'; no wildcard, which http-01 cannot prove)"),
                ));
            }
        }
        let contact = self
            .contact
            .strip_prefix("mailto:")
            .unwrap_or(&self.contact);
        if !contact.is_empty()
            && (contact.split('@').count() != 2
                || contact.starts_with('@')
                || contact.ends_with('@')
                || contact.contains([' ', ',', '\r', '\n']))
        {
            return Err((
                "tls.acme.contact",
                format!(
                    "{:?} is not an email address, e.g. \"admin@example.org\"",
                    self.contact
                ),
            ));
        }
        if !self.directory.starts_with("https://") {
            return Err((
                "tls.acme.directory",
                format!(
                    "{:?} is not an https:// URL (ACME directories are served over HTTPS)",
                    self.directory
                ),
            ));
        }
        if self.check_secs == 0 {
            return Err(("tls.acme.check_secs", "must be at least 1".into()));
        }
        if self.retry_first_ms == 0 || self.retry_max_secs == 0 {
            let key = if self.retry_first_ms == 0 {
                "tls.acme.retry_first_ms"
            } else {
                "tls.acme.retry_max_secs"
            };
            return Err((key, "must be at least 1".into()));
        }
        Ok(())
    }

    /// The contact as the CA takes it: a `mailto:` URI.
    pub fn contact_uri(&self) -> Option<String> {
        match self.contact.as_str() {
            "" => None,
            c if c.starts_with("mailto:") => Some(c.to_owned()),
            c => Some(format!("mailto:{c}")),
        }
    }
}

/// A host name a CA can issue for: labels of letters, digits and '-', not
/// starting or ending with '-', at most 253 characters.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
