//! Development certificates: a self-signed certificate and key for a host
//! name, for trying TLS without a certificate authority.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls_pki_types::pem::PemObject;

/// A certificate and its key, both PEM.
pub struct DevCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A self-signed certificate for `hosts` (names or IP addresses), valid
/// for a year, with an ECDSA P-256 key.
pub fn self_signed(hosts: &[String]) -> Result<DevCert, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(hosts.to_vec())?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        hosts.first().map_or("localhost", |h| h.as_str()),
    );
    name.push(DnType::OrganizationName, "Parlor development certificate");
    params.distinguished_name = name;
    let now = time::OffsetDateTime::now_utc();
    // A day back, for clocks a little behind.
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
    let cert = params.self_signed(&key)?;
    Ok(DevCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Files `parlor mkcert` wrote.
pub struct Written {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub hosts: Vec<String>,
    pub fingerprint: String,
}

/// Writes a development certificate and key into `dir` as `cert.pem` and
/// `key.pem` (the key readable by its owner only). Files that exist are
/// kept unless `force`.
pub fn write(dir: &std::path::Path, hosts: &[String], force: bool) -> anyhow::Result<Written> {
    use anyhow::Context as _;
    use std::io::Write as _;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Absolute, so the printed config lines work from any directory.
    let dir = &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if !force {
        for path in [&cert, &key] {
            if path.exists() {
                anyhow::bail!("{} exists; --force replaces it", path.display());
            }
        }
    }
    let made = self_signed(hosts).context("cannot make the certificate")?;
    let open = |path: &std::path::Path, mode: u32| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        options
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))
    };
    open(&key, 0o600)?.write_all(made.key_pem.as_bytes())?;
    open(&cert, 0o644)?.write_all(made.cert_pem.as_bytes())?;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(made.cert_pem.as_bytes())
        .context("cannot read back the certificate")?;
    Ok(Written {
        cert,
        key,
        hosts: hosts.to_vec(),
        fingerprint: super::fingerprint(&der),
    })
}

impl Written {
    /// What to put in the config, and how clients can trust the
    /// certificate.
    pub fn instructions(&self) -> String {
        let cert = self.cert.display();
        let key = self.key.display();
        format!(
            "Wrote a self-signed certificate for {hosts} (valid for a year):\n  \
             {cert}\n  {key}\n\
             SHA-256 fingerprint: {fp}\n\n\
             Serve it with, in the config file:\n  \
             [tls]\n  listen = [\"127.0.0.1:6697\"]\n  cert_file = \"{cert}\"\n  key_file = \"{key}\"\n\
             or for one run: --tls-listen 127.0.0.1:6697 with those two keys set.\n\n\
             Clients do not trust it until told to:\n  \
             irssi:   /connect -tls -tls_cafile {cert} localhost 6697\n  \
             WeeChat: /server add parlor localhost/6697 -tls -tls_fingerprint={fp}\n  \
                      (WeeChat 3.x: -ssl -ssl_fingerprint={fp})\n  \
             openssl: openssl s_client -connect localhost:6697 -CAfile {cert}\n  \
             the whole machine (Debian): cp {cert} /usr/local/share/ca-certificates/parlor-dev.crt && update-ca-certificates\n\
             For a server on the internet, use [tls.acme] or a certificate from a CA instead.\n",
            hosts = self.hosts.join(", "),
            fp = self.fingerprint,
        )
    }
}
