//! Many messages in one write. The server relays a client's consecutive
//! PRIVMSGs (or NOTICEs) to one channel together; what every member, the
//! sender and the history see must be exactly what sending them one at a
//! time gives, whatever else is mixed in.

mod common;
use common::*;

/// `lines` as others receive them from `mask`.
fn sent_by(mask: &str, lines: &[&str]) -> Vec<String> {
    lines.iter().map(|line| format!(":{mask} {line}")).collect()
}

/// `lines` as one write, each ended by CRLF.
fn one_write(lines: &[&str]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect()
}

#[tokio::test]
async fn lines_sent_in_one_write_reach_every_member_in_the_order_sent() {
    let server = TestServer::start().await;
    let mut alice = server.client_with_caps("alice", "echo-message").await;
    let mut bob = server.client("bob").await;
    let mut tagged = server
        .client_with_caps("tagged", "message-tags server-time")
        .await;
    setup_channel("#c", &mut [&mut alice, &mut bob, &mut tagged]).await;
    join(&mut bob, "#d").await;
    alice.exchange("JOIN #d").await;
    bob.sync().await;

    let relayed_lines = [
        "PRIVMSG #c :one",
        "PRIVMSG #c :two",
        "PRIVMSG #c :three",
        "NOTICE #c :four",
        "NOTICE #c :five",
        "PRIVMSG bob :six",
        "PRIVMSG #d :seven",
        "PRIVMSG #c :eight",
        "PRIVMSG #c :nine",
    ];
    // One line without text breaks the first run, answered in its place.
    let mut sent = relayed_lines.to_vec();
    sent.insert(2, "PRIVMSG #c :");
    alice.send_raw(&one_write(&sent)).await;
    let relayed = sent_by(&alice.mask(), &relayed_lines);
    let mut echoed = relayed.clone();
    echoed.insert(2, numeric("412", "alice", ":No text to send"));
    assert_eq!(alice.sync().await, echoed);
    assert_eq!(bob.sync().await, relayed);
    // A member that takes tags gets each line with its own time and msgid.
    let lines = tagged.sync().await;
    let untagged_lines: Vec<&str> = lines.iter().map(|l| untagged(l)).collect();
    let in_c: Vec<&String> = relayed.iter().filter(|l| l.contains(" #c :")).collect();
    assert_eq!(untagged_lines, in_c);
    let msgids: std::collections::HashSet<&str> = lines
        .iter()
        .map(|l| tag(l, "msgid").expect("a msgid on every line"))
        .collect();
    assert!(lines.iter().all(|l| tag(l, "time").is_some()), "{lines:?}");
    assert_eq!(msgids.len(), 7, "one msgid per line: {lines:?}");
}

#[tokio::test]
async fn lines_from_two_senders_reach_every_member_in_one_order() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice, &mut bob, &mut carol, &mut dave]).await;
    let lines: Vec<String> = (0..15).map(|n| format!("PRIVMSG #c :{n}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let write = one_write(&lines);
    let (from_alice, from_bob) = tokio::join!(alice.send_raw(&write), bob.send_raw(&write));
    let ((), ()) = (from_alice, from_bob);
    alice.sync().await;
    bob.sync().await;
    let seen_by_carol = carol.sync().await;
    assert_eq!(seen_by_carol.len(), 30, "{seen_by_carol:?}");
    assert_eq!(dave.sync().await, seen_by_carol);
    for sender in ["alice", "bob"] {
        let texts: Vec<&str> = seen_by_carol
            .iter()
            .filter(|l| l.starts_with(&format!(":{sender}!")))
            .map(|l| l.rsplit(':').next().unwrap())
            .collect();
        let expected: Vec<String> = (0..15).map(|n| n.to_string()).collect();
        assert_eq!(texts, expected, "{sender}'s lines in the order sent");
    }
}

#[tokio::test]
async fn each_line_of_a_refused_run_gets_its_own_error() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    alice.exchange("MODE #c +m").await;
    bob.sync().await;
    bob.send_raw(&one_write(&[
        "PRIVMSG #c :one",
        "PRIVMSG #c :two",
        "PRIVMSG #c :three",
        "NOTICE #c :silent",
        "PRIVMSG #nowhere :four",
        "PRIVMSG #nowhere :five",
        // A colon starts the text: no target, only text.
        "PRIVMSG :six :seven",
        "PRIVMSG :six :eight",
    ]))
    .await;
    let refused = numeric("404", "bob", "#c :Cannot send to channel");
    let nowhere = numeric("403", "bob", "#nowhere :No such channel");
    let no_text = numeric("412", "bob", ":No text to send");
    assert_eq!(
        bob.sync().await,
        [
            refused.clone(),
            refused.clone(),
            refused,
            nowhere.clone(),
            nowhere,
            no_text.clone(),
            no_text
        ]
    );
    alice.expect_nothing().await;
}

#[tokio::test]
async fn a_run_cut_by_flood_control_arrives_whole_and_in_order() {
    let server =
        TestServer::start_with("[limits]\nflood_burst = 3\nflood_lines_per_sec = 50\n").await;
    let mut alice = server.client_with_caps("alice", "echo-message").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    // Let the burst allowance refill after the set-up.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let lines: Vec<String> = (0..12).map(|n| format!("PRIVMSG #c :{n}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    alice.send_raw(&one_write(&lines)).await;
    let expected: Vec<String> = (0..12)
        .map(|n| format!(":{} PRIVMSG #c :{n}", alice.mask()))
        .collect();
    assert_eq!(alice.sync().await, expected);
    assert_eq!(bob.sync().await, expected);
}

#[tokio::test]
async fn every_line_of_a_run_is_kept_in_the_history() {
    let server = TestServer::start().await;
    let caps = "batch draft/chathistory echo-message message-tags server-time";
    let mut alice = server.client_with_caps("alice", caps).await;
    alice.exchange("JOIN #c").await;
    alice
        .send_raw(&one_write(&[
            "PRIVMSG #c :one",
            "PRIVMSG #c :two",
            "PRIVMSG #c :three",
        ]))
        .await;
    let echoes = alice.sync().await;
    let echoed_ids: Vec<&str> = echoes.iter().map(|l| tag(l, "msgid").unwrap()).collect();
    let lines = alice.exchange("CHATHISTORY LATEST #c * 10").await;
    let kept: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| untagged(l).contains(" PRIVMSG #c :"))
        .map(|l| (tag(l, "msgid").unwrap(), l.rsplit(':').next().unwrap()))
        .collect();
    assert_eq!(
        kept,
        [
            (echoed_ids[0], "one"),
            (echoed_ids[1], "two"),
            (echoed_ids[2], "three")
        ]
    );
}

#[tokio::test]
async fn a_run_of_private_messages_arrives_in_order_with_an_away_reply_each() {
    let server = TestServer::start().await;
    let mut alice = server.client_with_caps("alice", "echo-message").await;
    let mut bob = server
        .client_with_caps("bob", "message-tags server-time")
        .await;
    bob.exchange("AWAY :lunch").await;
    alice
        .send_raw(&one_write(&[
            "PRIVMSG bob :one",
            "PRIVMSG bob :two",
            "NOTICE bob :three",
            "NOTICE bob :four",
            "PRIVMSG alice :to myself",
            "PRIVMSG alice :again",
        ]))
        .await;
    let m = alice.mask();
    let away = numeric("301", "alice", "bob :lunch");
    assert_eq!(
        alice.sync().await,
        [
            format!(":{m} PRIVMSG bob :one"),
            away.clone(),
            format!(":{m} PRIVMSG bob :two"),
            away,
            format!(":{m} NOTICE bob :three"),
            format!(":{m} NOTICE bob :four"),
            format!(":{m} PRIVMSG alice :to myself"),
            format!(":{m} PRIVMSG alice :to myself"),
            format!(":{m} PRIVMSG alice :again"),
            format!(":{m} PRIVMSG alice :again"),
        ]
    );
    let lines = bob.sync().await;
    let untagged_lines: Vec<&str> = lines.iter().map(|l| untagged(l)).collect();
    assert_eq!(
        untagged_lines,
        sent_by(
            &m,
            &[
                "PRIVMSG bob :one",
                "PRIVMSG bob :two",
                "NOTICE bob :three",
                "NOTICE bob :four",
            ]
        )
    );
    assert!(lines.iter().all(|l| tag(l, "msgid").is_some()), "{lines:?}");
}

/// Lines queued as one piece must not pass a sendq limit that the same
/// lines, queued one by one and each written as the queue fills, would
/// not: a member that reads keeps its connection.
#[tokio::test]
async fn a_run_near_a_small_sendq_limit_still_reaches_a_reading_member() {
    let server = TestServer::start_with("[limits]\nsendq_bytes = 4096\n").await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    let long = format!("PRIVMSG #c :{}", "x".repeat(430));
    let mut sent = vec![long.as_str(); 2];
    sent.push("NOTICE #c :a");
    sent.extend([long.as_str(); 7]);
    alice.send_raw(&one_write(&sent)).await;
    alice.sync().await;
    assert_eq!(bob.sync().await, sent_by(&alice.mask(), &sent));
}
