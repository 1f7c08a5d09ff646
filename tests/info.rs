//! Server information: VERSION, TIME, ADMIN, INFO, LUSERS and MOTD.

mod common;
use common::*;

use std::time::SystemTime;

fn no_such_server(nick: &str, target: &str) -> String {
    numeric("402", nick, &format!("{target} :No such server"))
}

/// The welcome burst's lines with this numeric, from the client's log.
fn from_welcome(c: &Client, code: &str) -> Vec<String> {
    let prefix = numeric(code, &c.nick, "");
    c.log
        .iter()
        .filter(|l| l.starts_with(&prefix))
        .cloned()
        .collect()
}

fn default_motd(nick: &str) -> Vec<String> {
    vec![
        numeric("375", nick, &format!(":- {SERVER} Message of the day - ")),
        numeric("372", nick, ":- Welcome to Parlor."),
        numeric(
            "372",
            nick,
            ":- Be kind; the channel operators are volunteers.",
        ),
        numeric("376", nick, ":End of /MOTD command."),
    ]
}

// ---------------------------------------------------------------- VERSION

#[tokio::test]
async fn version_gives_351_and_the_isupport_lines() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let welcome = from_welcome(&alice, "005");
    let lines = alice.exchange("VERSION").await;
    assert_eq!(
        lines[0],
        numeric(
            "351",
            "alice",
            &format!("parlor-0.1.0 {SERVER} :Parlor community chat server")
        )
    );
    // The same 005 lines as at registration, each with at most 13 tokens.
    let isupport = &lines[1..];
    assert_eq!(isupport, welcome);
    assert!(!isupport.is_empty());
    for line in isupport {
        let rest = line
            .strip_prefix(&numeric("005", "alice", ""))
            .unwrap_or_else(|| panic!("only 005 lines follow 351: {line}"));
        let (tokens, text) = rest.split_once(" :").expect("005 has a text");
        assert_eq!(text, "are supported by this server");
        let count = tokens.split(' ').count();
        assert!((1..=13).contains(&count), "{count} tokens: {line}");
    }
    let tokens: Vec<&str> = isupport
        .iter()
        .flat_map(|l| l.split(' ').skip(3).take_while(|t| !t.starts_with(':')))
        .collect();
    for expected in ["MONITOR=100", "WHOX", "NETWORK=Parlor", "AWAYLEN=390"] {
        assert!(tokens.contains(&expected), "{expected} in {tokens:?}");
    }
}

#[tokio::test]
async fn version_for_this_server_by_name_mask_or_nick() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let _bob = server.client("bob").await;
    let plain = alice.exchange("VERSION").await;
    // This server's name (in any case), a mask matching it, or the nick of
    // someone on it.
    for target in [
        "irc.test", "IRC.Test", "*.test", "irc.*", "*", "bob", "alice",
    ] {
        assert_eq!(
            alice.exchange(&format!("VERSION {target}")).await,
            plain,
            "VERSION {target}"
        );
    }
    for target in ["other.server", "*.example", "nobody"] {
        assert_eq!(
            alice.exchange(&format!("VERSION {target}")).await,
            [no_such_server("alice", target)]
        );
    }
}

// ---------------------------------------------------------------- TIME

#[tokio::test]
async fn time_gives_391_with_the_server_time() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let before = SystemTime::now();
    let lines = alice.exchange("TIME").await;
    let after = SystemTime::now();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let prefix = numeric("391", "alice", &format!("{SERVER} :"));
    let text = lines[0]
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{}", lines[0]));
    let time = httpdate::parse_http_date(text).expect("an HTTP date");
    let second = std::time::Duration::from_secs(1);
    assert!(time + second >= before && time <= after, "{text}");

    let lines = alice.exchange(&format!("TIME {SERVER}")).await;
    assert!(lines[0].starts_with(&prefix), "{lines:?}");
    assert_eq!(
        alice.exchange("TIME other.server").await,
        [no_such_server("alice", "other.server")]
    );
}

// ---------------------------------------------------------------- ADMIN

#[tokio::test]
async fn admin_gives_the_configured_details() {
    let server = TestServer::start_with(
        r#"
[server]
description = "The test server"
[admin]
location = "Somewhere, Earth"
contact = "ops@example.org"
"#,
    )
    .await;
    let mut alice = server.client("alice").await;
    let expected = [
        numeric("256", "alice", &format!("{SERVER} :Administrative info")),
        numeric("257", "alice", ":Somewhere, Earth"),
        numeric("258", "alice", ":The test server"),
        numeric("259", "alice", ":ops@example.org"),
    ];
    assert_eq!(alice.exchange("ADMIN").await, expected);
    assert_eq!(alice.exchange(&format!("ADMIN {SERVER}")).await, expected);
    assert_eq!(alice.exchange("ADMIN alice").await, expected);
    assert_eq!(
        alice.exchange("ADMIN other.server").await,
        [no_such_server("alice", "other.server")]
    );
}

#[tokio::test]
async fn admin_defaults() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("ADMIN").await,
        [
            numeric("256", "alice", &format!("{SERVER} :Administrative info")),
            numeric("257", "alice", ":Parlor server"),
            numeric("258", "alice", ":Parlor community chat"),
            numeric("259", "alice", ":admin@parlor.local"),
        ]
    );
}

// ---------------------------------------------------------------- INFO

#[tokio::test]
async fn info_lists_371_lines_then_374() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    // The start time INFO reports is the one 003 gave at registration.
    let created = from_welcome(&alice, "003");
    let created = created[0]
        .strip_prefix(&numeric("003", "alice", ":This server was created "))
        .expect("003 text")
        .to_owned();
    let expected = [
        numeric(
            "371",
            "alice",
            ":parlor-0.1.0 — an IRC-compatible community chat server.",
        ),
        numeric(
            "371",
            "alice",
            ":Written in Rust with tokio. https://modern.ircdocs.horse is the protocol it follows.",
        ),
        numeric("371", "alice", &format!(":Running since {created}.")),
        numeric("374", "alice", ":End of INFO list"),
    ];
    assert_eq!(alice.exchange("INFO").await, expected);
    assert_eq!(alice.exchange(&format!("INFO {SERVER}")).await, expected);
    assert_eq!(
        alice.exchange("INFO other.server").await,
        [no_such_server("alice", "other.server")]
    );
}

// ---------------------------------------------------------------- LUSERS

#[tokio::test]
async fn lusers_on_a_quiet_server_leaves_out_the_zero_counts() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    // 252, 253 and 254 carry "a positive integer": with none, they are
    // left out.
    assert_eq!(
        alice.exchange("LUSERS").await,
        [
            numeric(
                "251",
                "alice",
                ":There are 1 users and 0 invisible on 1 servers"
            ),
            numeric("255", "alice", ":I have 1 clients and 0 servers"),
            numeric("265", "alice", "1 1 :Current local users 1, max 1"),
            numeric("266", "alice", "1 1 :Current global users 1, max 1"),
        ]
    );
    // The welcome burst had the same lines.
    let welcome: Vec<String> = alice
        .log
        .iter()
        .filter(|l| {
            [" 251 ", " 255 ", " 265 ", " 266 "]
                .iter()
                .any(|c| l.contains(c))
        })
        .take(4)
        .cloned()
        .collect();
    assert_eq!(welcome, alice.exchange("LUSERS").await);
}

#[tokio::test]
async fn lusers_counts_users_invisible_opers_unknown_and_channels() {
    let server = TestServer::start_with(OPER_CONFIG).await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut oscar = server.client("oscar").await;
    let mut dave = server.client("dave").await;
    bob.exchange("MODE bob +i").await;
    make_oper(&mut oscar).await;
    alice.exchange("JOIN #one").await;
    alice.exchange("JOIN #two").await;
    bob.exchange("JOIN #two").await;
    alice.sync().await;
    // Two connections that have not registered; PING works before
    // registration, so a reply means the server has them.
    let mut unknown1 = server.connect().await;
    unknown1.sync().await;
    let mut unknown2 = server.connect().await;
    unknown2.send("NICK halfway").await;
    unknown2.sync().await;

    // <u> in 251 counts the users who are not invisible, as solanum,
    // InspIRCd and Ergo do (Modern IRC's prose calls it "total users", but
    // its own text reads "<u> users and <i> invisible"); the 255 and
    // 265/266 counts include everyone.
    let expected = |users: usize, visible: usize, max: usize, unknown: usize, channels: usize| {
        let mut lines = vec![
            numeric(
                "251",
                "alice",
                &format!(":There are {visible} users and 1 invisible on 1 servers"),
            ),
            numeric("252", "alice", "1 :operator(s) online"),
        ];
        if unknown > 0 {
            lines.push(numeric(
                "253",
                "alice",
                &format!("{unknown} :unknown connection(s)"),
            ));
        }
        if channels > 0 {
            lines.push(numeric(
                "254",
                "alice",
                &format!("{channels} :channels formed"),
            ));
        }
        lines.extend([
            numeric(
                "255",
                "alice",
                &format!(":I have {users} clients and 0 servers"),
            ),
            numeric(
                "265",
                "alice",
                &format!("{users} {max} :Current local users {users}, max {max}"),
            ),
            numeric(
                "266",
                "alice",
                &format!("{users} {max} :Current global users {users}, max {max}"),
            ),
        ]);
        lines
    };
    assert_eq!(alice.exchange("LUSERS").await, expected(4, 3, 4, 2, 2));

    // Someone leaves: the count drops, the maximum stays.
    dave.send("QUIT").await;
    dave.read_to_end().await;
    assert_eq!(alice.exchange("LUSERS").await, expected(3, 2, 4, 2, 2));

    // An unknown connection registers: one user more, one unknown less.
    unknown2.send("USER halfway 0 * :Half Way").await;
    unknown2.expect_numeric("376").await;
    assert_eq!(alice.exchange("LUSERS").await, expected(4, 3, 4, 1, 2));

    // The other goes away, and #one empties.
    drop(unknown1);
    alice.exchange("PART #one").await;
    let mut lines = alice.exchange("LUSERS").await;
    while lines.iter().any(|l| l.contains(" 253 ")) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        lines = alice.exchange("LUSERS").await;
    }
    assert_eq!(lines, expected(4, 3, 4, 0, 1));
}

// ---------------------------------------------------------------- MOTD

#[tokio::test]
async fn motd_command_repeats_the_message_of_the_day() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(alice.exchange("MOTD").await, default_motd("alice"));
    // This server by name or mask, or a user on it.
    for target in [SERVER, "*.test", "alice"] {
        assert_eq!(
            alice.exchange(&format!("MOTD {target}")).await,
            default_motd("alice"),
            "MOTD {target}"
        );
    }
    assert_eq!(
        alice.exchange("MOTD other.server").await,
        [no_such_server("alice", "other.server")]
    );
}

#[tokio::test]
async fn motd_from_inline_text() {
    let server = TestServer::start_with("[server]\nmotd = \"Line one\\n\\nLine three\"\n").await;
    let mut alice = server.client("alice").await;
    let welcome = alice.log.clone();
    let expected = [
        numeric(
            "375",
            "alice",
            &format!(":- {SERVER} Message of the day - "),
        ),
        numeric("372", "alice", ":- Line one"),
        numeric("372", "alice", ":- "),
        numeric("372", "alice", ":- Line three"),
        numeric("376", "alice", ":End of /MOTD command."),
    ];
    assert_eq!(alice.exchange("MOTD").await, expected);
    // The welcome burst ended with the same MOTD.
    assert_eq!(welcome[welcome.len() - 5..], expected);
}

#[tokio::test]
async fn empty_motd_gives_422() {
    let server = TestServer::start_with("[server]\nmotd = \"\"\n").await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("MOTD").await,
        [numeric("422", "alice", ":MOTD File is missing")]
    );
}

#[tokio::test]
async fn motd_file_is_read_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("motd.txt");
    std::fs::write(&path, "From the file.\r\nSecond line.\n").unwrap();
    let server = TestServer::start_with(&format!(
        "[server]\nmotd = \"inline, not used\"\nmotd_file = {:?}\n",
        path.display().to_string()
    ))
    .await;
    // Changing the file later changes nothing: it was read at start.
    std::fs::write(&path, "Changed.\n").unwrap();
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("MOTD").await,
        [
            numeric(
                "375",
                "alice",
                &format!(":- {SERVER} Message of the day - ")
            ),
            numeric("372", "alice", ":- From the file."),
            numeric("372", "alice", ":- Second line."),
            numeric("376", "alice", ":End of /MOTD command."),
        ]
    );
}

#[tokio::test]
async fn a_missing_motd_file_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let config = parlor::Config::from_toml_str(
        &format!(
            "[server]\nname = \"irc.test\"\nlisten = [\"127.0.0.1:0\"]\ndata_dir = {:?}\nmotd_file = {:?}\n",
            dir.path().display().to_string(),
            dir.path().join("missing.txt").display().to_string()
        ),
        "test",
    )
    .expect("valid configuration");
    let error = match parlor::spawn(config).await {
        Ok(_) => panic!("the server started without its MOTD file"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("server.motd_file"), "{error}");
}
