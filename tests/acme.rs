//! `[tls.acme]` against a real ACME CA: pebble from Debian, started by each
//! test on loopback, checking its http-01 challenges on the test server's
//! HTTP door for `localhost`.

mod common;

use std::time::{Duration, Instant};

use common::pebble::{self, PebbleSetup};
use common::tls::{fingerprint, handshake, served_fingerprint, tls_addr};
use common::TestServer;
use parlor::tls::acme::AcmeStatus;

/// Longest wait for a certificate from pebble (its checks do not sleep,
/// but a loaded machine is slow).
const ISSUE_WAIT: Duration = Duration::from_secs(60);

/// Short retries, so that a CA that comes up late is noticed at once.
const FAST_RETRIES: &str = "retry_first_ms = 100\nretry_max_secs = 1\n";

fn status(server: &TestServer) -> &AcmeStatus {
    &server
        .handle()
        .server()
        .acme
        .as_ref()
        .expect("ACME on")
        .status
}

/// Waits (bounded) until `done` holds for the server's ACME status.
async fn wait_for(server: &TestServer, what: &str, done: impl Fn(&AcmeStatus) -> bool) {
    let deadline = Instant::now() + ISSUE_WAIT;
    while !done(status(server)) {
        assert!(
            Instant::now() < deadline,
            "ACME: {what} did not happen within {ISSUE_WAIT:?}: {:?}",
            status(server)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stored_cert(server: &TestServer) -> String {
    pebble::read(&server.data_dir.path().join("acme/localhost/cert.pem"))
}

#[tokio::test]
async fn first_certificate_from_pebble_then_reused_after_a_restart() {
    pebble::require();
    let setup = PebbleSetup::new();
    let server = TestServer::start_with(&setup.acme_toml(FAST_RETRIES)).await;
    // No certificate yet: TLS handshakes fail, plain IRC works.
    assert!(handshake(tls_addr(&server), &setup.https.cert, None)
        .await
        .is_err());
    let mut plain = server.client("alice").await;
    plain.send("PING :before").await;
    plain
        .expect_line(&format!(":{0} PONG {0} :before", common::SERVER))
        .await;

    let ca = setup.start(server.http_addr().port()).await;
    wait_for(&server, "a certificate", |s| s.issued() == 1).await;
    let root = ca.root().await;
    let served = served_fingerprint(tls_addr(&server), &root)
        .await
        .expect("a handshake trusting pebble's root, for localhost");
    assert_eq!(served, fingerprint(&stored_cert(&server)));
    let mut secure = common::tls::connect(tls_addr(&server), &root, None).await;
    secure.register("bob").await;
    // The account and the certificate's key are the server's alone.
    for file in ["acme/account.json", "acme/localhost/key.pem"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(server.data_dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    // The challenge's answer is gone once the order is done.
    let client = common::http::get(server.http_addr(), "/.well-known/acme-challenge/x").await;
    assert_eq!(client.status, 404);

    // With the CA gone, a restart serves the stored certificate and
    // orders nothing.
    drop(secure);
    drop(ca);
    let server = server.restart().await;
    let again = served_fingerprint(tls_addr(&server), &root)
        .await
        .expect("the stored certificate, served at once");
    assert_eq!(again, served);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(&server).attempts(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn renewal_serves_a_new_certificate_while_old_connections_stay() {
    pebble::require();
    let setup = PebbleSetup::new();
    // Due as soon as it is issued (pebble's certificates live for years),
    // looked at every second.
    let server = TestServer::start_with(&setup.acme_toml(&format!(
        "{FAST_RETRIES}renew_before_secs = 3153600000\ncheck_secs = 1\n"
    )))
    .await;
    let ca = setup.start(server.http_addr().port()).await;
    wait_for(&server, "a certificate", |s| s.issued() >= 1).await;
    let root = ca.root().await;
    let mut old = common::tls::connect(tls_addr(&server), &root, None).await;
    old.register("alice").await;
    let first = served_fingerprint(tls_addr(&server), &root).await.unwrap();

    let issued = status(&server).issued();
    wait_for(&server, "a renewal", |s| s.issued() > issued).await;
    let second = served_fingerprint(tls_addr(&server), &root).await.unwrap();
    assert_ne!(second, first, "the renewal serves a new certificate");
    assert_eq!(second, fingerprint(&stored_cert(&server)));
    // The connection made with the first certificate lives on.
    old.send("PING :still-here").await;
    old.expect_line(&format!(":{0} PONG {0} :still-here", common::SERVER))
        .await;
    drop(ca);
    server.shutdown().await;
}

#[tokio::test]
async fn ca_down_retries_with_backoff_then_gets_its_certificate() {
    pebble::require();
    let setup = PebbleSetup::new();
    let server = TestServer::start_with(&setup.acme_toml(FAST_RETRIES)).await;
    // Nothing listens at the directory: attempts fail and are retried,
    // and the server goes on serving plain IRC meanwhile.
    wait_for(&server, "two failed attempts", |s| s.failures() >= 2).await;
    assert_eq!(status(&server).issued(), 0);
    let mut plain = server.client("alice").await;
    plain.send("PING :down").await;
    plain
        .expect_line(&format!(":{0} PONG {0} :down", common::SERVER))
        .await;
    assert!(handshake(tls_addr(&server), &setup.https.cert, None)
        .await
        .is_err());

    let ca = setup.start(server.http_addr().port()).await;
    wait_for(&server, "a certificate", |s| s.issued() == 1).await;
    let root = ca.root().await;
    let served = served_fingerprint(tls_addr(&server), &root).await.unwrap();
    assert_eq!(served, fingerprint(&stored_cert(&server)));
    let failures = status(&server).failures();
    assert!(failures >= 2, "{failures}");
    assert_eq!(status(&server).attempts(), failures + 1);
    server.shutdown().await;
}
