//! WHOWAS: nicks given up by a nick change or a quit, newest first, at
//! most 100 per reply, 406 for a nick never seen, 369 last.

mod common;
use common::*;

use std::time::UNIX_EPOCH;

fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[tokio::test]
async fn whowas_remembers_nick_changes_and_quits() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;

    let before = unix_now();
    assert_eq!(
        bob.exchange("NICK robert").await,
        [":bob!~bob@127.0.0.1 NICK robert"]
    );
    let after = unix_now();
    let lines = alice.exchange("WHOWAS bob").await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[0],
        numeric("314", "alice", "bob ~bob 127.0.0.1 * :Real bob")
    );
    let dates: Vec<String> = (before..=after)
        .map(|t| numeric("312", "alice", &format!("bob {SERVER} :{}", http_date(t))))
        .collect();
    assert!(dates.contains(&lines[1]), "{} not in {dates:?}", lines[1]);
    assert_eq!(lines[2], numeric("369", "alice", "bob :End of WHOWAS"));

    let before = unix_now();
    carol.send("QUIT :bye").await;
    carol.read_to_end().await;
    let after = unix_now();
    let lines = alice.exchange("WHOWAS CAROL").await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[0],
        numeric("314", "alice", "carol ~carol 127.0.0.1 * :Real carol")
    );
    let dates: Vec<String> = (before..=after)
        .map(|t| numeric("312", "alice", &format!("carol {SERVER} :{}", http_date(t))))
        .collect();
    assert!(dates.contains(&lines[1]), "{} not in {dates:?}", lines[1]);
    assert_eq!(lines[2], numeric("369", "alice", "CAROL :End of WHOWAS"));

    // Someone online now under a nick never given up has no history.
    assert_eq!(
        alice.exchange("WHOWAS robert").await,
        [
            numeric("406", "alice", "robert :There was no such nickname"),
            numeric("369", "alice", "robert :End of WHOWAS"),
        ]
    );
}

#[tokio::test]
async fn whowas_lists_newest_first_up_to_the_count() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    for realname in ["First", "Second", "Third"] {
        let mut dave = server.connect().await;
        dave.send("NICK dave").await;
        dave.send(&format!("USER dave 0 * :{realname}")).await;
        dave.expect_numeric("001").await;
        dave.send("QUIT").await;
        dave.read_to_end().await;
    }
    let users = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains(" 314 "))
            .cloned()
            .collect()
    };
    let entry = |realname: &str| {
        numeric(
            "314",
            "alice",
            &format!("dave ~dave 127.0.0.1 * :{realname}"),
        )
    };

    let lines = alice.exchange("WHOWAS dave").await;
    assert_eq!(
        users(&lines),
        [entry("Third"), entry("Second"), entry("First")]
    );
    assert_eq!(lines.len(), 7, "314 and 312 each, then 369: {lines:?}");
    assert_eq!(lines[6], numeric("369", "alice", "dave :End of WHOWAS"));

    let lines = alice.exchange("WHOWAS dave 2").await;
    assert_eq!(users(&lines), [entry("Third"), entry("Second")]);
    assert_eq!(lines.len(), 5, "{lines:?}");
    let lines = alice.exchange("WHOWAS dave 1").await;
    assert_eq!(users(&lines), [entry("Third")]);
    assert_eq!(lines.len(), 3, "{lines:?}");
    // "If given, <count> SHOULD be a positive number. Otherwise, a full
    // search is done."
    for count in ["0", "-1"] {
        let lines = alice.exchange(&format!("WHOWAS dave {count}")).await;
        assert_eq!(users(&lines).len(), 3, "count {count}: {lines:?}");
    }
}

#[tokio::test]
async fn whowas_keeps_only_the_configured_number_of_entries() {
    let server = TestServer::start_with("[limits]\nwhowas_entries = 2\n").await;
    let mut alice = server.client("alice").await;
    for nick in ["old1", "old2", "old3"] {
        let mut c = server.client(nick).await;
        c.send("QUIT").await;
        c.read_to_end().await;
    }
    // The oldest entry is forgotten.
    assert_eq!(
        alice.exchange("WHOWAS old1").await,
        [
            numeric("406", "alice", "old1 :There was no such nickname"),
            numeric("369", "alice", "old1 :End of WHOWAS"),
        ]
    );
    for nick in ["old2", "old3"] {
        let lines = alice.exchange(&format!("WHOWAS {nick}")).await;
        assert_eq!(
            lines[0],
            numeric(
                "314",
                "alice",
                &format!("{nick} ~{nick} 127.0.0.1 * :Real {nick}")
            )
        );
    }
}

#[tokio::test]
async fn whowas_for_a_nick_never_seen_gives_406_then_369() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("WHOWAS ghost").await,
        [
            numeric("406", "alice", "ghost :There was no such nickname"),
            numeric("369", "alice", "ghost :End of WHOWAS"),
        ]
    );
    assert_eq!(
        alice.exchange("WHOWAS").await,
        [numeric("461", "alice", "WHOWAS :Not enough parameters")]
    );
}

/// One nick can fill the whole list; a reply holds its 100 newest
/// entries, whatever count is asked for, or none.
#[tokio::test]
async fn whowas_answers_with_at_most_the_100_newest_entries() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut dave = server.client("dave").await;
    // Each change away from dave leaves an entry, 120 in all; the realname
    // tells them apart.
    for round in 0..120 {
        dave.send(&format!("SETNAME :round {round}")).await;
        dave.send("NICK other").await;
        dave.send("NICK dave").await;
    }
    dave.sync().await;
    let entry = |round: usize| {
        numeric(
            "314",
            "alice",
            &format!("dave ~dave 127.0.0.1 * :round {round}"),
        )
    };
    let end = numeric("369", "alice", "dave :End of WHOWAS");
    for ask in [
        "WHOWAS dave",
        "WHOWAS dave 0",
        "WHOWAS dave 101",
        "WHOWAS dave 5000",
    ] {
        let lines = alice.exchange(ask).await;
        assert_eq!(lines.len(), 201, "{ask}: 100 entries of two lines, 369");
        assert_eq!(lines[0], entry(119), "{ask}: the newest first");
        assert_eq!(lines[198], entry(20), "{ask}: the 100th newest last");
        assert_eq!(lines[200], end, "{ask}");
    }
    let lines = alice.exchange("WHOWAS dave 3").await;
    let users: Vec<&String> = lines.iter().filter(|l| l.contains(" 314 ")).collect();
    assert_eq!(users, [&entry(119), &entry(118), &entry(117)]);
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(lines[6], end);
}
