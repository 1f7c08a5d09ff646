//! Direct messages to an account that is offline: kept for it, and shown
//! to it, as ordinary lines, when it logs in again.

mod common;
use common::*;

/// Registers the account `nick` (password `hunter22`) and disconnects.
async fn register_and_leave(server: &TestServer, nick: &str) {
    let mut client = server.client(nick).await;
    let lines = client.exchange("REGISTER * * hunter22").await;
    assert!(
        lines.iter().any(|l| l.contains(" REGISTER SUCCESS ")),
        "{lines:?}"
    );
    client.send("QUIT").await;
    client.read_to_end().await;
    wait_for_last_seen(server, &nick.to_lowercase()).await;
}

/// `lines` read so far, and then more, until one is `last`.
async fn read_through(client: &mut Client, mut lines: Vec<String>, last: &str) -> Vec<String> {
    for _ in 0..100 {
        if lines.iter().any(|line| line == last) {
            return lines;
        }
        lines.push(client.next_line().await);
    }
    panic!("{last:?} never came: {lines:?}");
}

#[tokio::test]
async fn a_message_to_an_offline_account_waits_for_its_return() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    register_and_leave(&server, "alice").await;

    let mut bob = server.client("bob").await;
    assert_eq!(
        bob.exchange("PRIVMSG alice :are you there?").await,
        [numeric(
            "301",
            "bob",
            "alice :Offline; your message will be delivered when they return"
        )]
    );
    // NOTICE is kept too, and answered with nothing.
    assert_eq!(
        bob.exchange("NOTICE Alice :ping").await,
        Vec::<String>::new()
    );
    // A nick no account owns is still no one, and the answers keep the
    // order of the targets.
    let mut carol = server.client("carol").await;
    assert_eq!(
        bob.exchange("PRIVMSG nobody,alice,carol,#none :hello")
            .await,
        [
            numeric("401", "bob", "nobody :No such nick/channel"),
            numeric(
                "301",
                "bob",
                "alice :Offline; your message will be delivered when they return"
            ),
            numeric("403", "bob", "#none :No such channel"),
        ]
    );
    carol
        .expect_line(&format!(":{} PRIVMSG carol :hello", bob.mask()))
        .await;

    let mut alice = server.client("alice").await;
    let lines = alice.exchange("PRIVMSG NickServ :IDENTIFY hunter22").await;
    let last = format!(":{} PRIVMSG alice :hello", bob.mask());
    let lines = read_through(&mut alice, lines, &last).await;
    let replayed: Vec<&String> = lines
        .iter()
        .skip_while(|line| !line.contains(" 900 "))
        .filter(|line| line.contains(&bob.mask()))
        .collect();
    assert_eq!(
        replayed,
        [
            &format!(":{} PRIVMSG alice :are you there?", bob.mask()),
            &format!(":{} NOTICE Alice :ping", bob.mask()),
            &last
        ]
    );
    // Seen once: the next login has nothing to show.
    alice.send("QUIT").await;
    alice.read_to_end().await;
    let mut alice = server.client("alice").await;
    alice.exchange("PRIVMSG NickServ :IDENTIFY hunter22").await;
    bob.exchange("PRIVMSG alice :back?").await;
    alice
        .expect_line(&format!(":{} PRIVMSG alice :back?", bob.mask()))
        .await;
}

#[tokio::test]
async fn missed_messages_come_in_a_batch_with_their_time_after_the_motd() {
    let server = TestServer::start_with(&format!(
        "{FAST_ACCOUNTS}[history]\nmissed_direct_lines = 2\n"
    ))
    .await;
    register_and_leave(&server, "alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    for text in ["one", "two"] {
        bob.exchange(&format!("PRIVMSG alice :{text}")).await;
    }
    carol.exchange("PRIVMSG alice :three").await;

    // Logged in with SASL during registration.
    let mut alice = alice_logging_in_with_sasl(&server, "batch server-time").await;
    alice.skip_until(|l| l.contains(" 903 ")).await;
    alice.send("CAP END").await;
    alice.skip_until(|l| l.contains(" 376 ")).await;
    // The cap keeps the newest two: bob's second, then carol's.
    let mut lines = Vec::new();
    for _ in 0..6 {
        lines.push(alice.next_line().await);
    }
    let (bob_batch, carol_batch) = lines.split_at(3);
    for (batch, partner, line) in [
        (
            bob_batch,
            "bob",
            format!(":{} PRIVMSG alice :two", bob.mask()),
        ),
        (
            carol_batch,
            "carol",
            format!(":{} PRIVMSG alice :three", carol.mask()),
        ),
    ] {
        let start = untagged(&batch[0]);
        let reference = start
            .strip_prefix(&format!(":{SERVER} BATCH +"))
            .and_then(|rest| rest.strip_suffix(&format!(" chathistory {partner}")))
            .unwrap_or_else(|| panic!("{lines:?}"));
        assert_eq!(tag(&batch[1], "batch"), Some(reference), "{lines:?}");
        assert!(tag(&batch[1], "time").is_some(), "{lines:?}");
        assert_eq!(untagged(&batch[1]), line);
        assert_eq!(batch[2], format!(":{SERVER} BATCH -{reference}"));
    }
    alice.expect_nothing().await;
}

#[tokio::test]
async fn an_owner_online_under_another_nick_gets_the_message_at_once() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    register_and_leave(&server, "alice").await;
    let mut away_nick = server.client("alice_away").await;
    away_nick
        .exchange("PRIVMSG NickServ :IDENTIFY alice hunter22")
        .await;
    let mut bob = server.client("bob").await;
    assert_eq!(
        bob.exchange("PRIVMSG alice :hi").await,
        Vec::<String>::new()
    );
    away_nick
        .expect_line(&format!(":{} PRIVMSG alice :hi", bob.mask()))
        .await;
}

#[tokio::test]
async fn with_offline_messages_off_an_absent_nick_is_no_one() {
    let server = TestServer::start_with(&format!(
        "{FAST_ACCOUNTS}[history]\noffline_messages = false\n"
    ))
    .await;
    register_and_leave(&server, "alice").await;
    let mut bob = server.client("bob").await;
    assert_eq!(
        bob.exchange("PRIVMSG alice :hi").await,
        [numeric("401", "bob", "alice :No such nick/channel")]
    );
}

#[tokio::test]
async fn a_chathistory_client_finds_missed_messages_itself() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    register_and_leave(&server, "alice").await;
    let mut bob = server.client("bob").await;
    bob.exchange("PRIVMSG alice :while you were out").await;

    let mut alice = server
        .client_with_caps("alice", "batch draft/chathistory message-tags server-time")
        .await;
    alice.exchange("PRIVMSG NickServ :IDENTIFY hunter22").await;
    // Nothing is pushed at it; TARGETS names the conversation.
    alice.expect_nothing().await;
    let lines = alice
        .exchange("CHATHISTORY TARGETS timestamp=2020-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10")
        .await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        untagged(&lines[1]).starts_with(&format!(":{SERVER} CHATHISTORY TARGETS bob ")),
        "{lines:?}"
    );
}

/// A run of messages to an offline account (sent in one write, see
/// `message_runs.rs`) waits for the account's owner once, yet each line is
/// answered, kept and shown as if sent alone, and the lines after the run
/// wait for it, flood control included.
#[tokio::test]
async fn a_run_of_messages_to_an_offline_account_is_kept_whole_and_in_order() {
    let server = TestServer::start_with(&format!(
        "{FAST_ACCOUNTS}[limits]\nflood_burst = 4\nflood_lines_per_sec = 20\n"
    ))
    .await;
    register_and_leave(&server, "alice").await;
    let mut bob = server.client("bob").await;
    // Let the burst allowance refill after registration.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let lines = [
        "PRIVMSG alice :one",
        "PRIVMSG alice :two",
        // Ends the run: no text.
        "PRIVMSG alice :",
        // Past the burst of 4: flood control holds these back.
        "PRIVMSG alice :three",
        "PRIVMSG alice :four",
        "PRIVMSG alice :five",
    ];
    let write: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    bob.send_raw(write.as_bytes()).await;
    let offline = numeric(
        "301",
        "bob",
        "alice :Offline; your message will be delivered when they return",
    );
    let no_text = numeric("412", "bob", ":No text to send");
    assert_eq!(
        bob.sync().await,
        [
            offline.clone(),
            offline.clone(),
            no_text,
            offline.clone(),
            offline.clone(),
            offline
        ]
    );

    let mut alice = server.client("alice").await;
    let lines = alice.exchange("PRIVMSG NickServ :IDENTIFY hunter22").await;
    let last = format!(":{} PRIVMSG alice :five", bob.mask());
    let lines = read_through(&mut alice, lines, &last).await;
    let replayed: Vec<String> = lines
        .iter()
        .filter(|line| line.starts_with(&format!(":{}", bob.mask())))
        .cloned()
        .collect();
    let expected: Vec<String> = ["one", "two", "three", "four", "five"]
        .iter()
        .map(|text| format!(":{} PRIVMSG alice :{text}", bob.mask()))
        .collect();
    assert_eq!(replayed, expected);
}
