//! pebble, Let's Encrypt's test ACME CA (Debian's package), run by the test
//! on loopback: its own HTTPS certificate made here, its http-01 checks
//! sent to the test server's HTTP door, no sleeping before them, and every
//! challenge really checked (`PEBBLE_VA_ALWAYS_VALID` unset).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::tls::Pem;

const INSTALL: &str = "apt-get install -y pebble";

/// Where a pebble listens and the certificate of its own HTTPS, chosen
/// before it runs so that a server can be pointed at it first.
pub struct PebbleSetup {
    pub dir: tempfile::TempDir,
    pub listen: SocketAddr,
    pub management: SocketAddr,
    /// Its HTTPS certificate (`tls.acme.ca_cert_file` trusts it).
    pub https: Pem,
}

impl PebbleSetup {
    pub fn new() -> PebbleSetup {
        let dir = tempfile::tempdir().expect("directory for pebble");
        let https = super::tls::dev_cert();
        std::fs::write(dir.path().join("https.pem"), &https.cert).unwrap();
        std::fs::write(dir.path().join("https.key"), &https.key).unwrap();
        PebbleSetup {
            dir,
            listen: free_addr(),
            management: free_addr(),
            https,
        }
    }

    pub fn directory_url(&self) -> String {
        format!("https://localhost:{}/dir", self.listen.port())
    }

    pub fn ca_cert_file(&self) -> PathBuf {
        self.dir.path().join("https.pem")
    }

    /// The `[tls.acme]` keys of a server using this pebble for
    /// `localhost`, with `extra` keys.
    pub fn acme_toml(&self, extra: &str) -> String {
        format!(
            "[tls]\nlisten = [\"127.0.0.1:0\"]\n[tls.acme]\ndomains = [\"localhost\"]\n\
             contact = \"admin@example.org\"\ndirectory = {:?}\nca_cert_file = {:?}\n{extra}",
            self.directory_url(),
            self.ca_cert_file().display().to_string()
        )
    }

    /// Starts pebble, checking http-01 challenges on `http_port`, and
    /// waits (bounded) until it answers.
    pub async fn start(&self, http_port: u16) -> Pebble {
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": self.listen.to_string(),
                "managementListenAddress": self.management.to_string(),
                "certificate": self.dir.path().join("https.pem"),
                "privateKey": self.dir.path().join("https.key"),
                "httpPort": http_port,
                "tlsPort": free_addr().port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        let config_path = self.dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = std::fs::File::create(self.dir.path().join("pebble.log")).unwrap();
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run pebble ({e}); install it: {INSTALL}"));
        let pebble = Pebble {
            child,
            log: self.dir.path().join("pebble.log"),
            management: self.management,
            https: self.https.cert.clone(),
        };
        let deadline = Instant::now() + super::WAIT;
        for addr in [self.listen, self.management] {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                assert!(
                    Instant::now() < deadline,
                    "pebble did not listen on {addr}; its log:\n{}",
                    pebble.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        pebble
    }
}

/// A running pebble, ended (by its PID) when dropped.
pub struct Pebble {
    child: Child,
    log: PathBuf,
    management: SocketAddr,
    https: String,
}

impl Pebble {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The root its certificates chain to, PEM, from its management
    /// interface (pebble makes a new one each run).
    pub async fn root(&self) -> String {
        let mut stream = super::tls::handshake(self.management, &self.https, None)
            .await
            .expect("handshake with pebble's management interface");
        stream
            .write_all(b"GET /roots/0 HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(super::WAIT, stream.read_to_end(&mut response))
            .await
            .expect("pebble answers in time")
            .ok();
        let response = String::from_utf8(response).expect("text");
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.0 200"), "{head}");
        assert!(body.contains("BEGIN CERTIFICATE"), "{body}");
        body.to_owned()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An address on loopback that was free a moment ago.
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap()
}

/// Fails with the install command when pebble is not there.
pub fn require() {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("pebble").is_file()));
    assert!(found, "pebble is not installed: {INSTALL}");
}

/// Reads a PEM file the server wrote.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
