//! Long passwords: accounts take passwords of up to 1024 bytes (made with
//! `parlor account`, as a password manager's would be), SASL PLAIN and
//! SCRAM-SHA-256 log in with them through `AUTHENTICATE` in 400-byte
//! pieces, and refusals name the limit.

mod common;
use common::scram::ScramClient;
use common::*;

use std::io::Write;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

const BIN: &str = env!("CARGO_BIN_EXE_parlor");

/// `parlor --data-dir <the server's> account <args>`, with `stdin` as its
/// input: the exit code, standard output and standard error.
fn account(server: &TestServer, args: &[&str], stdin: &str) -> (i32, String, String) {
    let dir = server.data_dir.path().display().to_string();
    let mut child = Command::new(BIN)
        .args(["--data-dir", &dir, "account"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run parlor");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A password of `length` bytes, as a password manager makes them.
fn password(length: usize) -> String {
    const CHARS: &[u8] = b"Kq7#xW2 vL9%pN4!zR6&tY8*bM3-cF5_";
    (0..length)
        .map(|i| char::from(CHARS[(i * 7 + i / 3) % CHARS.len()]))
        .collect()
}

/// Makes account `name` with `password` through `parlor account create`.
fn create(server: &TestServer, name: &str, password: &str) {
    let (code, stdout, stderr) = account(server, &["create", name], &format!("{password}\n"));
    assert_eq!(
        (code, stdout.as_str()),
        (0, format!("account {name} created\n").as_str()),
        "{stderr}"
    );
}

/// Sends `payload` as AUTHENTICATE pieces of 400 bytes, ending with
/// `AUTHENTICATE +` when the last piece is full: the lines it took.
async fn send_authenticate(c: &mut Client, payload: &str) -> Vec<String> {
    let mut lines: Vec<String> = payload
        .as_bytes()
        .chunks(400)
        .map(|piece| format!("AUTHENTICATE {}", std::str::from_utf8(piece).unwrap()))
        .collect();
    if payload.len() % 400 == 0 {
        lines.push("AUTHENTICATE +".to_owned());
    }
    for line in &lines {
        c.send(line).await;
    }
    lines
}

/// Reads one message the server sends in AUTHENTICATE pieces, checking
/// each full piece is followed by more (or `+`); returns it decoded.
async fn read_authenticate(c: &mut Client) -> (String, usize) {
    let mut encoded = String::new();
    let mut pieces = 0;
    loop {
        let line = c.next_line().await;
        let piece = line
            .strip_prefix("AUTHENTICATE ")
            .unwrap_or_else(|| panic!("an AUTHENTICATE piece, got {line:?}"));
        pieces += 1;
        assert!(piece.len() <= 400, "{line}");
        if piece != "+" {
            encoded.push_str(piece);
        }
        if piece.len() < 400 {
            break;
        }
    }
    let decoded = BASE64.decode(&encoded).expect("base64");
    (String::from_utf8(decoded).expect("UTF-8"), pieces)
}

fn logged_in(nick: &str, account: &str) -> [String; 2] {
    [
        numeric(
            "900",
            nick,
            &format!("{nick}!~{nick}@127.0.0.1 {account} :You are now logged in as {account}"),
        ),
        numeric("903", nick, ":SASL authentication successful"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_logs_in_with_a_600_byte_password_sent_in_400_byte_pieces() {
    let server = TestServer::start().await;
    let long = password(600);
    create(&server, "lena", &long);
    let mut c = server.client("c1").await;
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    // 607 bytes, 812 in base64: two full pieces and one of 12.
    let payload = BASE64.encode(format!("\0lena\0{long}"));
    assert_eq!(send_authenticate(&mut c, &payload).await.len(), 3);
    assert_eq!(c.sync().await, logged_in("c1", "lena"));

    // A payload of exactly three pieces: nothing happens until the `+`.
    let exact = password(900 - "\0mona\0".len());
    create(&server, "mona", &exact);
    let payload = BASE64.encode(format!("\0mona\0{exact}"));
    assert_eq!(payload.len(), 1200);
    let mut c = server.client("c2").await;
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    for piece in payload.as_bytes().chunks(400) {
        c.send(&format!(
            "AUTHENTICATE {}",
            std::str::from_utf8(piece).unwrap()
        ))
        .await;
    }
    c.expect_nothing().await;
    c.send("AUTHENTICATE +").await;
    assert_eq!(c.sync().await, logged_in("c2", "mona"));

    // The longest password there is, 1024 bytes.
    let longest = password(1024);
    create(&server, "nell", &longest);
    let mut c = server.client("c3").await;
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    send_authenticate(&mut c, &BASE64.encode(format!("nell\0nell\0{longest}"))).await;
    assert_eq!(c.sync().await, logged_in("c3", "nell"));
}

#[tokio::test(flavor = "multi_thread")]
async fn scram_logs_in_with_a_600_byte_password_in_400_byte_pieces_both_ways() {
    let server = TestServer::start().await;
    let long = password(600);
    create(&server, "nina", &long);
    let mut c = server.client("c1").await;
    c.send("AUTHENTICATE SCRAM-SHA-256").await;
    c.expect_line("AUTHENTICATE +").await;
    // A long nonce makes the client-first exactly 300 bytes, one full
    // piece and `+`, and the messages after it longer than one piece.
    let nonce: String = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        .chars()
        .cycle()
        .take(300 - "n,,n=nina,r=".len())
        .collect();
    let (client, first) = ScramClient::first("nina", &nonce);
    assert_eq!(
        send_authenticate(&mut c, &BASE64.encode(&first))
            .await
            .len(),
        2
    );
    let (server_first, pieces) = read_authenticate(&mut c).await;
    assert_eq!(pieces, 2, "{server_first}");
    let (last, server_final) = client.last(&server_first, &long);
    assert_eq!(
        send_authenticate(&mut c, &BASE64.encode(&last)).await.len(),
        2
    );
    assert_eq!(read_authenticate(&mut c).await.0, server_final);
    c.send("AUTHENTICATE +").await;
    assert_eq!(c.sync().await, logged_in("c1", "nina"));

    // The wrong password, as long, fails.
    let mut c = server.client("c2").await;
    c.send("AUTHENTICATE SCRAM-SHA-256").await;
    c.expect_line("AUTHENTICATE +").await;
    let (client, first) = ScramClient::first("nina", &nonce);
    send_authenticate(&mut c, &BASE64.encode(&first)).await;
    let (server_first, _) = read_authenticate(&mut c).await;
    let (last, _) = client.last(&server_first, &password(601));
    send_authenticate(&mut c, &BASE64.encode(&last)).await;
    assert_eq!(
        c.sync().await,
        [numeric("904", "c2", ":SASL authentication failed")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_over_the_limit_is_refused_with_the_limit_named() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let too_long = password(1025);
    let (code, _, stderr) = account(&server, &["create", "oz"], &format!("{too_long}\n"));
    assert_eq!(
        (code, stderr.as_str()),
        (
            1,
            "parlor account: cannot create oz: Passwords are at most 1024 bytes long\n"
        )
    );
    create(&server, "pia", &password(600));
    let (code, _, stderr) = account(&server, &["passwd", "pia"], &format!("{too_long}\n"));
    assert_eq!(
        (code, stderr.as_str()),
        (
            1,
            "parlor account: cannot change the password of pia: Passwords are at most 1024 bytes long\n"
        )
    );

    // SASL PLAIN with it: refused unchecked, the limit named. As often as
    // a connection may fail to log in (5), to show none of it counts.
    let mut c = server.client("c1").await;
    for _ in 0..5 {
        c.send("AUTHENTICATE PLAIN").await;
        c.expect_line("AUTHENTICATE +").await;
        send_authenticate(&mut c, &BASE64.encode(format!("\0pia\0{too_long}"))).await;
        assert_eq!(
            c.sync().await,
            [numeric(
                "904",
                "c1",
                ":SASL authentication failed: passwords are at most 1024 bytes long"
            )]
        );
    }
    // More base64 than any message needs ends the exchange, named too.
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    for _ in 0..4 {
        c.send(&format!("AUTHENTICATE {}", "A".repeat(400))).await;
    }
    c.expect_nothing().await;
    assert_eq!(
        c.exchange(&format!("AUTHENTICATE {}", "A".repeat(400)))
            .await,
        [numeric(
            "905",
            "c1",
            ":SASL message too long: at most 1600 bytes of base64 in all"
        )]
    );
    // None of that counted as a guess: the right password still works.
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_line("AUTHENTICATE +").await;
    send_authenticate(&mut c, &BASE64.encode(format!("\0pia\0{}", password(600)))).await;
    assert_eq!(c.sync().await, logged_in("c1", "pia"));

    // REGISTER takes as long a password as a line holds (496 bytes).
    let mut quinn = server.client("quinn").await;
    let line_long = password(512 - 2 - "REGISTER * * :".len());
    let lines = quinn.exchange(&format!("REGISTER * * :{line_long}")).await;
    assert!(
        lines.contains(&format!(
            ":{SERVER} REGISTER SUCCESS quinn :Account successfully registered"
        )),
        "{lines:?}"
    );
}
