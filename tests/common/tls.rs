//! TLS for test clients: certificates made in the test, and a client that
//! trusts exactly the server's (and may show one of its own).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::{tcp_connect, Client, WAIT};

/// A certificate and key, PEM.
#[derive(Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A self-signed certificate for `localhost` and 127.0.0.1, made the way
/// `parlor mkcert` makes one.
pub fn dev_cert() -> Pem {
    let made = parlor::tls::mkcert::self_signed(&["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("certificate");
    Pem {
        cert: made.cert_pem,
        key: made.key_pem,
    }
}

/// Writes `pem` as `cert.pem` and `key.pem` in `dir`; returns the `[tls]`
/// keys naming them.
pub fn write_cert(dir: &Path, pem: &Pem) -> String {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, &pem.cert).expect("write cert");
    std::fs::write(&key, &pem.key).expect("write key");
    format!(
        "cert_file = {:?}\nkey_file = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    )
}

/// The SHA-256 of a PEM certificate's DER bytes, in lowercase hex.
pub fn fingerprint(cert_pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("PEM certificate");
    parlor::tls::fingerprint(&der)
}

fn client_config(trusted: &str, identity: Option<&Pem>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(trusted.as_bytes()).expect("PEM certificate"))
        .expect("trusted certificate");
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    match identity {
        None => builder.with_no_client_auth(),
        Some(pem) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(pem.cert.as_bytes()).expect("PEM")],
                PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).expect("PEM key"),
            )
            .expect("client certificate"),
    }
}

/// The handshake with `addr`, trusting only `trusted` (PEM) for
/// `localhost`; the server certificate it was shown.
pub async fn handshake(
    addr: SocketAddr,
    trusted: &str,
    identity: Option<&Pem>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(trusted, identity)));
    let tcp = tcp_connect(addr).await;
    let name = ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
}

/// A client over TLS, trusting only `trusted`.
pub async fn connect(addr: SocketAddr, trusted: &str, identity: Option<&Pem>) -> Client {
    Client::over_stream(
        handshake(addr, trusted, identity)
            .await
            .expect("TLS handshake"),
    )
}

/// The fingerprint of the certificate the server at `addr` shows.
pub async fn served_fingerprint(addr: SocketAddr, trusted: &str) -> std::io::Result<String> {
    let stream = handshake(addr, trusted, None).await?;
    let (_, session) = stream.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("server certificate");
    Ok(parlor::tls::fingerprint(leaf))
}

/// A server listening for plain IRC and for TLS, serving `pem`, with
/// `extra` laid over the test defaults and `tls_keys` added to `[tls]`.
/// The directory holds the files.
pub async fn tls_server_with(
    pem: &Pem,
    extra: &str,
    tls_keys: &str,
) -> (super::TestServer, tempfile::TempDir) {
    let files = tempfile::tempdir().expect("directory for the certificate");
    let keys = write_cert(files.path(), pem);
    let server = super::TestServer::start_with(&format!(
        "{extra}\n[tls]\nlisten = [\"127.0.0.1:0\"]\n{keys}{tls_keys}"
    ))
    .await;
    (server, files)
}

pub async fn tls_server(pem: &Pem, extra: &str) -> (super::TestServer, tempfile::TempDir) {
    tls_server_with(pem, extra, "").await
}

pub fn tls_addr(server: &super::TestServer) -> std::net::SocketAddr {
    server.handle().tls_addrs()[0]
}
