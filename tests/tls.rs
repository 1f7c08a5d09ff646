//! IRC over TLS: handshakes with a development certificate, `+Z`, `671`
//! and `276`, certificates swapped without a restart, and the seam where
//! queued lines become records (big replies, a client that stops reading).

mod common;

use std::time::Duration;

use common::tls::{self, tls_addr, tls_server, tls_server_with};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_client_registers_over_tls_with_a_development_certificate() {
    let pem = tls::dev_cert();
    let (server, _files) = tls_server(&pem, "").await;
    let mut alice = tls::connect(tls_addr(&server), &pem.cert, None).await;
    alice.register("alice").await;
    assert_eq!(
        alice.exchange("MODE alice").await,
        [numeric("221", "alice", "+Z")]
    );
    // +Z is the connection's, not the user's to change.
    assert_eq!(
        alice.exchange("MODE alice -Z+i").await,
        [":alice MODE alice +i"]
    );
    let mut bob = server.client("bob").await;
    assert_eq!(bob.exchange("MODE bob").await, [numeric("221", "bob", "+")]);

    // Both see each other's messages, whichever way each came.
    alice.send("PRIVMSG bob :over TLS").await;
    bob.expect_line(&format!(":{} PRIVMSG bob :over TLS", alice.mask()))
        .await;
    bob.send("PRIVMSG alice :over plain TCP").await;
    alice
        .expect_line(&format!(":{} PRIVMSG alice :over plain TCP", bob.mask()))
        .await;

    let whois = bob.exchange("WHOIS alice").await;
    assert!(
        whois.contains(&numeric(
            "671",
            "bob",
            "alice :is using a secure connection"
        )),
        "{whois:?}"
    );
    assert!(
        !whois.iter().any(|l| l.contains(" 276 ")),
        "no certificate: {whois:?}"
    );
    let whois = alice.exchange("WHOIS bob").await;
    assert!(!whois.iter().any(|l| l.contains(" 671 ")), "{whois:?}");
}

#[tokio::test]
async fn a_client_certificate_fingerprint_is_shown_to_its_owner_and_to_operators() {
    let pem = tls::dev_cert();
    let identity = tls::dev_cert();
    let certfp = tls::fingerprint(&identity.cert);
    let (server, _files) = tls_server(&pem, OPER_CONFIG).await;
    let mut carol = tls::connect(tls_addr(&server), &pem.cert, Some(&identity)).await;
    carol.register("carol").await;
    let shown = numeric(
        "276",
        "carol",
        &format!("carol :has client certificate fingerprint {certfp}"),
    );
    assert!(carol.exchange("WHOIS carol").await.contains(&shown));

    let mut dave = server.client("dave").await;
    let whois = dave.exchange("WHOIS carol").await;
    assert!(!whois.iter().any(|l| l.contains(" 276 ")), "{whois:?}");
    make_oper(&mut dave).await;
    let whois = dave.exchange("WHOIS carol").await;
    let shown = numeric(
        "276",
        "dave",
        &format!("carol :has client certificate fingerprint {certfp}"),
    );
    assert!(whois.contains(&shown), "{whois:?}");
}

/// Renewed files are served from the next handshake on; a client
/// connected before goes on talking over its session.
#[tokio::test]
async fn a_renewed_certificate_is_served_while_old_connections_live_on() {
    let old = tls::dev_cert();
    let (server, files) = tls_server_with(&old, "", "reload_check_secs = 1\n").await;
    let addr = tls_addr(&server);
    let mut early = tls::connect(addr, &old.cert, None).await;
    early.register("early").await;
    assert_eq!(
        tls::served_fingerprint(addr, &old.cert).await.unwrap(),
        tls::fingerprint(&old.cert)
    );

    let new = tls::dev_cert();
    // Written aside and renamed into place, as certbot's links change.
    let staged = tempfile::tempdir_in(files.path()).unwrap();
    tls::write_cert(staged.path(), &new);
    std::fs::rename(staged.path().join("key.pem"), files.path().join("key.pem")).unwrap();
    std::fs::rename(
        staged.path().join("cert.pem"),
        files.path().join("cert.pem"),
    )
    .unwrap();

    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(served) = tls::served_fingerprint(addr, &new.cert).await {
            assert_eq!(served, tls::fingerprint(&new.cert));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The old session still carries lines both ways.
    let mut late = tls::connect(addr, &new.cert, None).await;
    late.register("late").await;
    early.send("PRIVMSG late :still here").await;
    late.expect_line(&format!(":{} PRIVMSG late :still here", early.mask()))
        .await;
    assert!(
        tls::handshake(addr, &old.cert, None).await.is_err(),
        "the old certificate is gone"
    );
}

/// A key that does not match its certificate is refused and the pair
/// served stays.
#[tokio::test]
async fn a_broken_renewal_keeps_the_certificate_served() {
    let old = tls::dev_cert();
    let (server, files) = tls_server_with(&old, "", "reload_check_secs = 1\n").await;
    let addr = tls_addr(&server);
    let other = tls::dev_cert();
    std::fs::write(files.path().join("key.pem"), &other.key).unwrap();
    // Two checks pass.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        tls::served_fingerprint(addr, &old.cert).await.unwrap(),
        tls::fingerprint(&old.cert)
    );
}

/// Replies far bigger than one record (a 16 KiB plaintext) reach the
/// client whole and in order.
#[tokio::test]
async fn a_long_burst_of_replies_arrives_whole_over_tls() {
    const PINGS: usize = 3000;
    let pem = tls::dev_cert();
    let (server, _files) = tls_server(&pem, "").await;
    let mut client = tls::connect(tls_addr(&server), &pem.cert, None).await;
    client.register("burst").await;
    let burst: String = (0..PINGS)
        .map(|i| format!("PING token-{i}-{}\r\n", "x".repeat(60)))
        .collect();
    client.send_raw(burst.as_bytes()).await;
    for i in 0..PINGS {
        client
            .expect_line(&format!(
                ":{SERVER} PONG {SERVER} :token-{i}-{}",
                "x".repeat(60)
            ))
            .await;
    }
}

/// A TLS client that stops reading is cut off at its sendq like any
/// other: sealed records do not let its backlog grow without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_that_stops_reading_is_cut_off() {
    const SENDQ: usize = 32 * 1024;
    let pem = tls::dev_cert();
    let (server, _files) = tls_server(&pem, &format!("[limits]\nsendq_bytes = {SENDQ}\n")).await;
    let mut slow = tls::connect(tls_addr(&server), &pem.cert, None).await;
    slow.register("slow").await;
    slow.exchange("JOIN #flood").await;
    let mut flooder = server.client("flooder").await;
    flooder.exchange("JOIN #flood").await;
    let mut watcher = server.client("watcher").await;
    watcher.exchange("JOIN #flood").await;
    let padding = "y".repeat(400);
    let quit = ":slow!~slow@127.0.0.1 QUIT :SendQ exceeded";
    // Bounded: far past the sendq and what the kernel's buffers hold.
    for round in 0..200 {
        let lines: String = (0..50)
            .map(|i| format!("PRIVMSG #flood :{round}-{i} {padding}\r\n"))
            .collect();
        flooder.send_raw(lines.as_bytes()).await;
        flooder.exchange("PING :pace").await;
        let seen = watcher.exchange("PING :check").await;
        if seen.iter().any(|l| l == quit) {
            return;
        }
    }
    panic!("the client that stopped reading was never cut off");
}

/// Something that is not TLS on a TLS port is closed, and the port goes
/// on serving.
#[tokio::test]
async fn plain_irc_on_a_tls_port_is_closed_and_the_port_serves_on() {
    let pem = tls::dev_cert();
    let (server, _files) = tls_server(&pem, "").await;
    let addr = tls_addr(&server);
    let mut plain = tcp_connect(addr).await;
    plain
        .write_all(b"NICK oops\r\nUSER oops 0 * :Oops\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, plain.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was closed");
    assert!(
        !String::from_utf8_lossy(&answer).contains("001"),
        "{answer:?}"
    );
    let mut client = tls::connect(addr, &pem.cert, None).await;
    client.register("after").await;
}

/// A TLS port where nothing is said is closed after the handshake's
/// time limit, not kept.
#[tokio::test]
async fn a_silent_tls_connection_is_closed_when_its_handshake_time_runs_out() {
    let pem = tls::dev_cert();
    let (server, _files) = tls_server(&pem, "").await;
    let mut silent = tcp_connect(tls_addr(&server)).await;
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
}

/// The HTTP door over HTTPS serves with the IRC listeners' certificate.
#[tokio::test]
async fn the_http_door_speaks_https_with_the_same_certificate() {
    let pem = tls::dev_cert();
    let (server, _files) = tls_server(&pem, "[http]\ntls_listen = [\"127.0.0.1:0\"]\n").await;
    let addr = server.handle().https_addrs()[0];
    assert_eq!(
        tls::served_fingerprint(addr, &pem.cert).await.unwrap(),
        tls::fingerprint(&pem.cert)
    );
    let mut stream = tls::handshake(addr, &pem.cert, None).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("answered in time")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
}
