//! SASL (IRCv3 sasl-3.1/3.2): PLAIN and SCRAM-SHA-256, before and after
//! registration, chunking, failures, and login timing.

mod common;
use common::*;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::scram::{self, ScramClient};

/// Registers account `name` with `password` from a throwaway connection.
async fn create_account(server: &TestServer, name: &str, password: &str) {
    let mut c = server.client(name).await;
    // A trailing parameter, so that a password may hold spaces.
    let lines = c.exchange(&format!("REGISTER * * :{password}")).await;
    assert!(
        lines.contains(&format!(
            ":{SERVER} REGISTER SUCCESS {name} :Account successfully registered"
        )),
        "{lines:?}"
    );
    c.send("QUIT").await;
    c.read_to_end().await;
}

fn plain(authzid: &str, authcid: &str, password: &str) -> String {
    BASE64.encode(format!("{authzid}\0{authcid}\0{password}"))
}

/// Sends `payload` as AUTHENTICATE lines of 400 characters, ending with
/// `AUTHENTICATE +` when the last one is full.
async fn send_authenticate(c: &mut Client, payload: &str) {
    for chunk in payload.as_bytes().chunks(400) {
        c.send(&format!(
            "AUTHENTICATE {}",
            std::str::from_utf8(chunk).unwrap()
        ))
        .await;
    }
    if payload.len() % 400 == 0 {
        c.send("AUTHENTICATE +").await;
    }
}

/// Starts a connection that negotiates `sasl` and sends NICK/USER, without
/// ending negotiation: registration waits for CAP END.
async fn negotiating(server: &TestServer, nick: &str) -> Client {
    let mut c = server.connect().await;
    c.send("CAP LS 302").await;
    let ls = c.next_line().await;
    assert_eq!(
        ls,
        format!(
            ":{SERVER} CAP * LS :account-notify account-tag away-notify batch cap-notify chghost draft/account-registration=before-connect \
             draft/chathistory draft/event-playback echo-message extended-join invite-notify labeled-response message-tags multi-prefix sasl=EXTERNAL,PLAIN,SCRAM-SHA-256 \
         server-time setname standard-replies userhost-in-names znc.in/playback znc.in/self-message"
        )
    );
    c.send("CAP REQ :sasl").await;
    c.expect_line(&format!(":{SERVER} CAP * ACK :sasl")).await;
    c.send(&format!("NICK {nick}")).await;
    c.send(&format!("USER {nick} 0 * :Real {nick}")).await;
    c.nick = nick.to_owned();
    c
}

#[tokio::test]
async fn plain_during_negotiation_logs_in_and_registration_follows() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    create_account(&server, "alice", "correct horse").await;

    let mut c = negotiating(&server, "alice").await;
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    c.send(&format!(
        "AUTHENTICATE {}",
        plain("", "alice", "correct horse")
    ))
    .await;
    c.expect_line(&numeric(
        "900",
        "alice",
        "alice!~alice@127.0.0.1 alice :You are now logged in as alice",
    ))
    .await;
    c.expect_line(&numeric("903", "alice", ":SASL authentication successful"))
        .await;
    c.send("CAP END").await;
    c.expect_numeric("001").await;

    // Logged in: a second exchange is refused.
    c.skip_until(|l| l.contains(" 376 ")).await;
    assert_eq!(
        c.exchange("AUTHENTICATE PLAIN").await,
        [numeric(
            "907",
            "alice",
            ":You have already authenticated using SASL"
        )]
    );
    let whois = c.exchange("WHOIS alice").await;
    assert!(
        whois.contains(&numeric("330", "alice", "alice alice :is logged in as")),
        "{whois:?}"
    );
}

#[tokio::test]
async fn plain_after_registration_works_too() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    create_account(&server, "bob", "bobs password").await;
    let mut c = server.client("bob").await;
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    // authzid given and equal to the authcid (in another case): allowed.
    let lines = c
        .exchange(&format!(
            "AUTHENTICATE {}",
            plain("BOB", "bob", "bobs password")
        ))
        .await;
    assert_eq!(
        lines,
        [
            numeric(
                "900",
                "bob",
                "bob!~bob@127.0.0.1 bob :You are now logged in as bob"
            ),
            numeric("903", "bob", ":SASL authentication successful"),
        ]
    );
}

#[tokio::test]
async fn failures_are_answered_with_the_standard_numerics() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    create_account(&server, "carol", "carols password").await;
    let mut c = server.client("carol").await;
    let fail = numeric("904", "carol", ":SASL authentication failed");

    // Wrong password, unknown account, someone else's authzid, garbage.
    for payload in [
        plain("", "carol", "not the password"),
        plain("", "nobody", "carols password"),
        plain("dave", "carol", "carols password"),
        BASE64.encode("no separators"),
        "not base64!".to_owned(),
    ] {
        c.send("AUTHENTICATE PLAIN").await;
        c.expect_line("AUTHENTICATE +").await;
        assert_eq!(
            c.exchange(&format!("AUTHENTICATE {payload}")).await,
            std::slice::from_ref(&fail),
            "{payload}"
        );
    }

    // An unknown mechanism: the list, then 904.
    assert_eq!(
        c.exchange("AUTHENTICATE GSSAPI").await,
        [
            numeric(
                "908",
                "carol",
                "EXTERNAL,PLAIN,SCRAM-SHA-256 :are available SASL mechanisms"
            ),
            fail.clone(),
        ]
    );
    // Abort.
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    assert_eq!(
        c.exchange("AUTHENTICATE *").await,
        [numeric("906", "carol", ":SASL authentication aborted")]
    );
    // A parameter over 400 bytes.
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    assert_eq!(
        c.exchange(&format!("AUTHENTICATE {}", "A".repeat(404)))
            .await,
        [numeric(
            "905",
            "carol",
            ":SASL message too long: at most 400 bytes per AUTHENTICATE"
        )]
    );
    // Not logged in after all that.
    let whois = c.exchange("WHOIS carol").await;
    assert!(!whois.iter().any(|l| l.contains(" 330 ")), "{whois:?}");
}

#[tokio::test]
async fn too_many_failures_on_one_connection_stop_being_checked() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    create_account(&server, "erin", "erins password").await;
    create_account(&server, "mallory", "mallorys password").await;
    let mut c = server.client("erin").await;
    for _ in 0..4 {
        c.send("AUTHENTICATE PLAIN").await;
        c.expect_line("AUTHENTICATE +").await;
        c.exchange(&format!("AUTHENTICATE {}", plain("", "erin", "guess")))
            .await;
    }
    // Logging in to one's own account in between forgives nothing.
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    let lines = c
        .exchange(&format!(
            "AUTHENTICATE {}",
            plain("", "mallory", "mallorys password")
        ))
        .await;
    assert!(lines.iter().any(|l| l.contains(" 903 ")), "{lines:?}");
    c.exchange("NICKSERV LOGOUT").await;
    for _ in 0..1 {
        c.send("AUTHENTICATE PLAIN").await;
        c.expect_line("AUTHENTICATE +").await;
        c.exchange(&format!("AUTHENTICATE {}", plain("", "erin", "guess")))
            .await;
    }
    // The right password now fails too, on this connection.
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    assert_eq!(
        c.exchange(&format!(
            "AUTHENTICATE {}",
            plain("", "erin", "erins password")
        ))
        .await,
        [numeric("904", "erin", ":SASL authentication failed")]
    );
    // A new connection is not affected.
    let mut other = server.client("erin2").await;
    other.send("AUTHENTICATE PLAIN").await;
    other.expect_line("AUTHENTICATE +").await;
    let lines = other
        .exchange(&format!(
            "AUTHENTICATE {}",
            plain("", "erin", "erins password")
        ))
        .await;
    assert!(lines.iter().any(|l| l.contains(" 903 ")), "{lines:?}");
}

/// A 30-character account name, so that a PLAIN message of exactly 300
/// bytes (400 in base64, one full chunk) fits a legal password.
const LONG_NAME: &str = "abcdefghijklmnopqrstuvwxyz1234";

#[tokio::test]
async fn chunked_messages_are_reassembled_at_and_past_the_boundary() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    // authzid + authcid + two NULs = 62 bytes: a 238-byte password makes
    // exactly 300, a 250-byte one 312 (two chunks: 400 + 16).
    for (length, chunks) in [(238, 1), (250, 2)] {
        let password = "p".repeat(length);
        let name = format!("{}{}", &LONG_NAME[..29], chunks);
        create_account(&server, &name, &password).await;
        let payload = plain(&name, &name, &password);
        assert_eq!(payload.len().div_ceil(400), chunks);
        let mut c = server.client(&format!("x{chunks}")).await;
        c.send("AUTHENTICATE PLAIN").await;
        c.expect_line("AUTHENTICATE +").await;
        send_authenticate(&mut c, &payload).await;
        let lines = c.sync().await;
        assert!(
            lines.iter().any(|l| l.contains(" 903 ")),
            "{length}: {lines:?}"
        );
    }
}

/// Runs a SCRAM-SHA-256 exchange for `user`; returns the lines after the
/// client-final-message (and after the final `+`, when the server sent
/// its signature).
async fn scram_login(c: &mut Client, user: &str, password: &str) -> Vec<String> {
    c.send("AUTHENTICATE SCRAM-SHA-256").await;
    c.expect_line("AUTHENTICATE +").await;
    let (client, first) = ScramClient::first(user, scram::NONCE);
    c.send(&format!("AUTHENTICATE {}", BASE64.encode(first)))
        .await;
    let line = c.next_line().await;
    let server_first = line.strip_prefix("AUTHENTICATE ").expect("server-first");
    let server_first = String::from_utf8(BASE64.decode(server_first).unwrap()).unwrap();
    let (last, server_final) = client.last(&server_first, password);
    let lines = c
        .exchange(&format!("AUTHENTICATE {}", BASE64.encode(last)))
        .await;
    if lines == [format!("AUTHENTICATE {}", BASE64.encode(server_final))] {
        return c.exchange("AUTHENTICATE +").await;
    }
    lines
}

#[tokio::test]
async fn scram_sha_256_logs_in_without_sending_the_password() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    create_account(&server, "frank", "franks password").await;
    let mut c = server.client("frank").await;
    assert_eq!(
        scram_login(&mut c, "frank", "franks password").await,
        [
            numeric(
                "900",
                "frank",
                "frank!~frank@127.0.0.1 frank :You are now logged in as frank"
            ),
            numeric("903", "frank", ":SASL authentication successful"),
        ]
    );
}

#[tokio::test]
async fn scram_with_a_wrong_password_or_unknown_name_fails_alike() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    create_account(&server, "grace", "graces password").await;
    let mut c = server.client("grace").await;
    let fail = vec![numeric("904", "grace", ":SASL authentication failed")];
    assert_eq!(scram_login(&mut c, "grace", "wrong").await, fail);
    assert_eq!(scram_login(&mut c, "nobody", "wrong").await, fail);
}

#[tokio::test]
async fn a_registration_that_ends_during_an_exchange_aborts_it() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut c = negotiating(&server, "heidi").await;
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    c.send("CAP END").await;
    c.expect_line(&numeric("906", "heidi", ":SASL authentication aborted"))
        .await;
    c.expect_numeric("001").await;
}

/// One timed PLAIN login on `c` with `payload`; a success is undone, so
/// that every try does the same work.
async fn timed_login(c: &mut Client, payload: &str) -> std::time::Duration {
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    let started = std::time::Instant::now();
    c.exchange(&format!("AUTHENTICATE {payload}")).await;
    let took = started.elapsed();
    c.exchange("NICKSERV LOGOUT").await;
    took
}

/// Logging in with a wrong password, or as nobody, takes as long as with
/// the right one (one Argon2 check each, default cost), so timing tells an
/// attacker nothing. The three kinds take turns, so that whatever else the
/// machine does at the time weighs on all of them alike; five rounds stay
/// within the failures one connection is allowed.
#[tokio::test]
async fn wrong_and_right_passwords_take_about_as_long() {
    let server = TestServer::start().await;
    create_account(&server, "ivan", "ivans password").await;
    let kinds = [
        plain("", "ivan", "ivans password"),
        plain("", "ivan", "a wrong password"),
        plain("", "nobody", "a wrong one"),
    ];
    let mut clients = [
        server.client("t1").await,
        server.client("t2").await,
        server.client("t3").await,
    ];
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..5 {
        for (kind, (client, payload)) in clients.iter_mut().zip(&kinds).enumerate() {
            samples[kind].push(timed_login(client, payload).await);
        }
    }
    let median = |times: &mut Vec<std::time::Duration>| {
        times.sort();
        times[2]
    };
    let right = median(&mut samples[0]);
    for (what, times) in [
        ("wrong", &mut samples[1].clone()),
        ("unknown", &mut samples[2].clone()),
    ] {
        let other = median(times);
        let ratio = other.as_secs_f64() / right.as_secs_f64();
        assert!(
            (0.5..2.0).contains(&ratio),
            "{what} {other:?} vs right {right:?}"
        );
    }
}
