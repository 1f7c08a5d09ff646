//! History: join replay, CHATHISTORY on msgid references, access to a
//! secret channel's history, and history surviving a restart.

mod common;
use common::*;

/// The lines of a `chathistory` batch, checked to be well-formed: the
/// start names `target`, every line carries the batch's reference, the
/// end closes it. Returned without their tags but with their msgids.
fn batch_lines(lines: &[String], target: &str) -> Vec<(String, String)> {
    let start = lines.first().expect("a batch");
    let prefix = format!(":{SERVER} BATCH +");
    let rest = start
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{lines:?}"));
    let (reference, kind) = rest.split_once(' ').unwrap();
    assert_eq!(kind, format!("chathistory {target}"));
    assert_eq!(
        lines.last().unwrap(),
        &format!(":{SERVER} BATCH -{reference}")
    );
    lines[1..lines.len() - 1]
        .iter()
        .map(|line| {
            assert_eq!(tag(line, "batch"), Some(reference), "{line}");
            let msgid = tag(line, "msgid").unwrap_or_default().to_owned();
            (untagged(line).to_owned(), msgid)
        })
        .collect()
}

const HISTORY_CAPS: &str = "batch draft/chathistory message-tags server-time";

#[tokio::test]
async fn joining_replays_recent_lines_as_ordinary_messages() {
    let server = TestServer::start_with("[history]\njoin_replay_lines = 2\n").await;
    let mut bob = server.client("bob").await;
    join(&mut bob, "#c").await;
    for text in ["one", "two", "three"] {
        bob.send(&format!("PRIVMSG #c :{text}")).await;
    }
    bob.send("TOPIC #c :a topic").await;
    bob.sync().await;

    // A plain client: the last two messages (not the TOPIC), after NAMES.
    let mut plain = server.client("plain").await;
    let lines = plain.exchange("JOIN #c").await;
    let mask = bob.mask();
    assert_eq!(
        lines[lines.len() - 2..],
        [
            format!(":{mask} PRIVMSG #c :two"),
            format!(":{mask} PRIVMSG #c :three")
        ]
    );
    assert!(lines[lines.len() - 3].contains(" 366 "), "{lines:?}");

    // With batch and server-time: in a chathistory batch, at their own time.
    let mut timed = server.client_with_caps("timed", "batch server-time").await;
    let lines = timed.exchange("JOIN #c").await;
    let at = lines
        .iter()
        .position(|l| l.contains(" BATCH +"))
        .expect("a batch");
    let replayed = &lines[at..];
    assert_eq!(replayed.len(), 4, "{replayed:?}");
    assert_eq!(untagged(&replayed[1]), format!(":{mask} PRIVMSG #c :two"));
    assert!(tag(&replayed[1], "time").is_some() && tag(&replayed[1], "batch").is_some());
    assert_eq!(
        tag(&replayed[1], "msgid"),
        None,
        "no message-tags, no msgid"
    );

    // A chathistory client fetches history itself: no replay.
    let mut modern = server.client_with_caps("modern", HISTORY_CAPS).await;
    let lines = modern.exchange("JOIN #c").await;
    assert!(lines.last().unwrap().contains(" 366 "), "{lines:?}");
}

#[tokio::test]
async fn chathistory_reads_around_msgids() {
    let server = TestServer::start().await;
    let mut alice = server
        .client_with_caps("alice", &format!("echo-message {HISTORY_CAPS}"))
        .await;
    alice.exchange("JOIN #c").await;
    let mut ids = Vec::new();
    for n in 1..=6 {
        let echo = alice.exchange(&format!("PRIVMSG #c :m{n}")).await;
        ids.push(tag(&echo[0], "msgid").expect("echo has a msgid").to_owned());
    }
    let texts = |lines: &[String]| -> Vec<String> {
        batch_lines(lines, "#c")
            .into_iter()
            .map(|(line, _)| line.rsplit(':').next().unwrap().to_owned())
            .collect()
    };
    let ask = |query: String| query;
    let cases = [
        (ask("LATEST #c * 3".into()), vec!["m4", "m5", "m6"]),
        (
            ask(format!("LATEST #c msgid={} 10", ids[3])),
            vec!["m5", "m6"],
        ),
        (
            ask(format!("BEFORE #c msgid={} 2", ids[3])),
            vec!["m2", "m3"],
        ),
        (
            ask(format!("AFTER #c msgid={} 2", ids[1])),
            vec!["m3", "m4"],
        ),
        (
            ask(format!("AROUND #c msgid={} 3", ids[2])),
            vec!["m2", "m3", "m4"],
        ),
        (
            ask(format!("BETWEEN #c msgid={} msgid={} 10", ids[0], ids[4])),
            vec!["m2", "m3", "m4"],
        ),
        // Backwards: counted from the first reference, still oldest first.
        (
            ask(format!("BETWEEN #c msgid={} msgid={} 2", ids[5], ids[0])),
            vec!["m4", "m5"],
        ),
        // A msgid that is not in this history: nothing.
        (ask("BEFORE #c msgid=0000000000000001 10".into()), vec![]),
        // Limits past the maximum are clamped, not refused.
        (
            ask("LATEST #c * 100000".into()),
            vec!["m1", "m2", "m3", "m4", "m5", "m6"],
        ),
    ];
    for (query, expected) in cases {
        let lines = alice.exchange(&format!("CHATHISTORY {query}")).await;
        assert_eq!(texts(&lines), expected, "CHATHISTORY {query}");
    }
    // The stored line is the line as sent: same msgid, same text.
    let lines = alice.exchange("CHATHISTORY LATEST #c * 1").await;
    assert_eq!(batch_lines(&lines, "#c")[0].1, ids[5]);
    // Empty history is an empty batch.
    alice.exchange("JOIN #empty").await;
    let lines = alice.exchange("CHATHISTORY LATEST #empty * 10").await;
    assert!(batch_lines(&lines, "#empty").is_empty());
}

#[tokio::test]
async fn a_secret_channels_history_is_for_its_members() {
    let server = TestServer::start().await;
    let mut owner = server.client("owner").await;
    join(&mut owner, "#hidden").await;
    owner.exchange("MODE #hidden +s").await;
    owner.exchange("PRIVMSG #hidden :secret").await;
    let mut outsider = server.client_with_caps("outsider", HISTORY_CAPS).await;
    assert_eq!(
        outsider.exchange("CHATHISTORY LATEST #hidden * 10").await,
        [format!(
            ":{SERVER} FAIL CHATHISTORY INVALID_TARGET LATEST #hidden :Messages could not be retrieved"
        )]
    );
    // A public channel's history can be read from outside.
    join(&mut owner, "#open").await;
    owner.exchange("PRIVMSG #open :public").await;
    let lines = outsider.exchange("CHATHISTORY LATEST #open * 10").await;
    assert_eq!(batch_lines(&lines, "#open").len(), 1);
}

#[tokio::test]
async fn history_survives_a_restart() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut bob = server.client("bob").await;
    bob.exchange("REGISTER * * hunter22").await;
    join(&mut bob, "#c").await;
    let lines = bob.exchange("PRIVMSG ChanServ :REGISTER #c").await;
    assert!(lines.iter().any(|l| l.contains("registered")), "{lines:?}");
    bob.exchange("PRIVMSG #c :before the restart").await;
    join(&mut bob, "#loose").await;
    bob.exchange("PRIVMSG #loose :in an unregistered channel")
        .await;
    let bob_mask = bob.mask();
    let server = server.restart().await;

    // A registered channel is the same channel after a restart: replayed
    // to a plain client joining it.
    let mut plain = server.client("plain").await;
    let lines = plain.exchange("JOIN #c").await;
    assert_eq!(
        lines.last().unwrap(),
        &format!(":{bob_mask} PRIVMSG #c :before the restart")
    );
    // And in CHATHISTORY, with the events. (A stopping server tells nobody
    // of anybody's QUIT, and stores none.)
    let mut alice = server
        .client_with_caps("alice", &format!("draft/event-playback {HISTORY_CAPS}"))
        .await;
    alice.exchange("JOIN #c").await;
    let lines = alice.exchange("CHATHISTORY LATEST #c * 10").await;
    let replayed: Vec<String> = batch_lines(&lines, "#c")
        .into_iter()
        .map(|(l, _)| l)
        .filter(|l| l.contains(" JOIN ") || l.contains(" PRIVMSG "))
        .collect();
    assert_eq!(
        replayed,
        [
            format!(":{bob_mask} JOIN #c"),
            format!(":{bob_mask} PRIVMSG #c :before the restart"),
            format!(":{} JOIN #c", plain.mask()),
            format!(":{} JOIN #c", alice.mask()),
        ]
    );
    // New ids go on after the stored ones.
    let (_, last_id) = batch_lines(&lines, "#c").pop().unwrap();
    alice.send("PRIVMSG #c :after").await;
    let lines = alice
        .exchange(&format!("CHATHISTORY AFTER #c msgid={last_id} 10"))
        .await;
    assert_eq!(batch_lines(&lines, "#c").len(), 1);

    // An unregistered channel alive when the server stopped is the same
    // channel after the restart, its history included (tests/restart.rs
    // has the rest of it).
    alice.exchange("JOIN #loose").await;
    let lines = alice.exchange("CHATHISTORY LATEST #loose * 10").await;
    let replayed: Vec<String> = batch_lines(&lines, "#loose")
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    assert_eq!(
        replayed,
        [
            format!(":{bob_mask} JOIN #loose"),
            format!(":{bob_mask} PRIVMSG #loose :in an unregistered channel"),
            format!(":{} JOIN #loose", alice.mask()),
        ]
    );
}

#[tokio::test]
async fn a_channel_created_again_does_not_show_the_old_ones_history() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    join(&mut alice, "#gone").await;
    alice.exchange("PRIVMSG #gone :secret plans").await;
    alice.exchange("PART #gone").await;
    // TARGETS tells times in milliseconds: the new channel starts in a
    // later one.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut eve = server.client_with_caps("eve", HISTORY_CAPS).await;
    let lines = eve.exchange("JOIN #gone").await;
    assert!(!lines.iter().any(|l| l.contains("secret")), "{lines:?}");
    let lines = eve.exchange("CHATHISTORY LATEST #gone * 10").await;
    assert!(batch_lines(&lines, "#gone").is_empty(), "{lines:?}");
    let lines = eve.exchange("PRIVMSG *playback :PLAY #gone 0").await;
    assert!(lines.is_empty(), "{lines:?}");
    let lines = eve
        .exchange(
            "CHATHISTORY TARGETS timestamp=2020-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10",
        )
        .await;
    assert_eq!(lines.len(), 2, "no target, not even #gone: {lines:?}");
}

#[tokio::test]
async fn a_keyed_or_banning_channel_keeps_its_history_from_outsiders() {
    let server = TestServer::start().await;
    let mut owner = server.client("owner").await;
    join(&mut owner, "#keyed").await;
    owner.exchange("MODE #keyed +k hunter2").await;
    owner.exchange("PRIVMSG #keyed :behind the key").await;
    join(&mut owner, "#banning").await;
    owner.exchange("MODE #banning +b outsider!*@*").await;
    owner.exchange("PRIVMSG #banning :not for outsider").await;
    let mut outsider = server.client_with_caps("outsider", HISTORY_CAPS).await;
    for channel in ["#keyed", "#banning"] {
        assert_eq!(
            outsider.exchange(&format!("CHATHISTORY LATEST {channel} * 10")).await,
            [format!(
                ":{SERVER} FAIL CHATHISTORY INVALID_TARGET LATEST {channel} :Messages could not be retrieved"
            )]
        );
    }
}

#[tokio::test]
async fn a_name_registered_again_does_not_inherit_direct_messages() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut alice = server.client_with_caps("alice", HISTORY_CAPS).await;
    alice.exchange("REGISTER * * hunter22").await;
    let mut bob = server.client_with_caps("bob", HISTORY_CAPS).await;
    bob.exchange("REGISTER * * hunter22").await;
    alice.exchange("PRIVMSG bob :for the real bob").await;
    bob.sync().await;
    let lines = bob.exchange("PRIVMSG NickServ :DROP hunter22").await;
    assert!(lines.iter().any(|l| l.contains("dropped")), "{lines:?}");
    bob.send("QUIT").await;
    bob.read_to_end().await;

    let mut mallory = server.client_with_caps("bob", HISTORY_CAPS).await;
    mallory.exchange("REGISTER * * mallory1").await;
    let lines = mallory.exchange("CHATHISTORY LATEST alice * 10").await;
    assert!(batch_lines(&lines, "alice").is_empty(), "{lines:?}");
    let lines = alice.exchange("CHATHISTORY LATEST bob * 10").await;
    assert!(batch_lines(&lines, "bob").is_empty(), "{lines:?}");
}

#[tokio::test]
async fn a_labeled_chathistory_nests_its_batch_in_the_labeled_one() {
    let server = TestServer::start().await;
    let mut alice = server
        .client_with_caps("alice", &format!("labeled-response {HISTORY_CAPS}"))
        .await;
    alice.exchange("JOIN #c").await;
    alice.exchange("PRIVMSG #c :one").await;
    let lines = alice.exchange("@label=h CHATHISTORY LATEST #c * 10").await;
    assert_eq!(lines.len(), 5, "{lines:?}");
    let outer = lines[0]
        .strip_prefix(&format!("@label=h :{SERVER} BATCH +"))
        .and_then(|rest| rest.strip_suffix(" labeled-response"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    let inner_start = &lines[1];
    assert!(
        inner_start.starts_with(&format!("@batch={outer} :{SERVER} BATCH +"))
            && inner_start.ends_with(" chathistory #c"),
        "{lines:?}"
    );
    let inner = inner_start
        .split(' ')
        .nth(3)
        .unwrap()
        .trim_start_matches('+');
    assert_eq!(tag(&lines[2], "batch"), Some(inner));
    assert_eq!(lines[3], format!("@batch={outer} :{SERVER} BATCH -{inner}"));
    assert_eq!(lines[4], format!(":{SERVER} BATCH -{outer}"));
}

#[tokio::test]
async fn direct_messages_are_read_back_by_their_logged_in_participants_only() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut logged_in = Vec::new();
    for nick in ["alice", "bob", "dave"] {
        let mut client = server.client_with_caps(nick, HISTORY_CAPS).await;
        client.exchange("REGISTER * * hunter22").await;
        logged_in.push(client);
    }
    let [mut alice, mut bob, mut dave] = <[Client; 3]>::try_from(logged_in).ok().unwrap();
    let mut carol = server.client("carol").await;
    alice.exchange("PRIVMSG bob :hi bob").await;
    bob.exchange("PRIVMSG alice :hi alice").await;
    carol.exchange("PRIVMSG alice :from carol").await;
    alice.sync().await;
    bob.sync().await;

    let texts = |lines: &[String], target: &str| -> Vec<String> {
        batch_lines(lines, target)
            .into_iter()
            .map(|(line, _)| line)
            .collect()
    };
    let conversation = [
        format!(":{} PRIVMSG bob :hi bob", alice.mask()),
        format!(":{} PRIVMSG alice :hi alice", bob.mask()),
    ];
    let lines = alice.exchange("CHATHISTORY LATEST bob * 10").await;
    assert_eq!(texts(&lines, "bob"), conversation);
    let lines = bob.exchange("CHATHISTORY LATEST alice * 10").await;
    assert_eq!(texts(&lines, "alice"), conversation);
    // Someone else's query with alice is their own (empty) conversation.
    let lines = dave.exchange("CHATHISTORY LATEST alice * 10").await;
    assert!(texts(&lines, "alice").is_empty());
    // Not logged in: nothing to read.
    assert_eq!(
        carol.exchange("CHATHISTORY LATEST alice * 10").await,
        [format!(
            ":{SERVER} FAIL CHATHISTORY INVALID_TARGET LATEST alice :Messages could not be retrieved"
        )]
    );
    // The logged-in side of a conversation with a guest keeps it.
    let lines = alice.exchange("CHATHISTORY LATEST carol * 10").await;
    assert_eq!(
        texts(&lines, "carol"),
        [format!(":{} PRIVMSG alice :from carol", carol.mask())]
    );
    let lines = alice
        .exchange("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10")
        .await;
    let listed: Vec<&str> = lines
        .iter()
        .filter_map(|line| untagged(line).strip_prefix(&format!(":{SERVER} CHATHISTORY TARGETS ")))
        .map(|rest| rest.split(' ').next().unwrap())
        .collect();
    assert_eq!(listed, ["bob", "carol"]);
    // With bob gone, the conversation is found by his account's name.
    bob.send("QUIT").await;
    bob.read_to_end().await;
    let lines = alice.exchange("CHATHISTORY LATEST bob * 10").await;
    assert_eq!(texts(&lines, "bob"), conversation);
}

/// `CHATHISTORY TARGETS` between two timestamps, both exclusive: the
/// targets (channel or conversation) whose latest message is inside, each
/// with that message's time, oldest first.
#[tokio::test]
async fn targets_are_those_whose_latest_message_is_strictly_inside_the_window() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let caps = format!("{HISTORY_CAPS} echo-message");
    let mut alice = server.client_with_caps("alice", &caps).await;
    alice.exchange("REGISTER * * hunter22").await;
    let _bob = server.client("bob").await;
    alice.exchange("JOIN #c,#d").await;
    // Each message in a millisecond of its own, its time read off the echo.
    let mut times = Vec::new();
    for (target, text) in [
        ("#c", "one"),
        ("bob", "dm one"),
        ("#d", "two"),
        ("#c", "three"),
        ("bob", "dm two"),
    ] {
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let echo = alice.exchange(&format!("PRIVMSG {target} :{text}")).await;
        assert_eq!(
            untagged(&echo[0]),
            format!(":{} PRIVMSG {target} :{text}", alice.mask())
        );
        times.push(tag(&echo[0], "time").unwrap().to_owned());
    }
    let listed = |lines: Vec<String>| -> Vec<String> {
        assert!(
            lines[0].ends_with(" draft/chathistory-targets"),
            "{lines:?}"
        );
        lines[1..lines.len() - 1]
            .iter()
            .map(|line| {
                untagged(line)
                    .strip_prefix(&format!(":{SERVER} CHATHISTORY TARGETS "))
                    .unwrap_or_else(|| panic!("{line}"))
                    .to_owned()
            })
            .collect()
    };
    let (early, late) = ("2000-01-01T00:00:00.000Z", "2100-01-01T00:00:00.000Z");
    let mut targets = async |from: &str, to: &str| {
        let lines = alice
            .exchange(&format!(
                "CHATHISTORY TARGETS timestamp={from} timestamp={to} 10"
            ))
            .await;
        listed(lines)
    };
    let (d, c, dm) = (
        &*format!("#d {}", times[2]),
        &*format!("#c {}", times[3]),
        &*format!("bob {}", times[4]),
    );
    assert_eq!(targets(early, late).await, [d, c, dm]);
    // #c and the conversation went on after the window: not listed, though
    // each had a message inside it. A message at a bound is outside.
    assert_eq!(targets(early, &times[3]).await, [d]);
    assert_eq!(targets(&times[0], &times[3]).await, [d]);
    assert_eq!(targets(&times[2], late).await, [c, dm]);
    assert_eq!(targets(&times[2], &times[4]).await, [c]);
    // The bounds may come in either order.
    assert_eq!(targets(&times[4], &times[2]).await, [c]);
    assert!(targets(&times[4], late).await.is_empty());
}

#[tokio::test]
async fn znc_playback_plays_channels_and_conversations_since_a_time() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut alice = server
        .client_with_caps("alice", "znc.in/playback server-time")
        .await;
    alice.exchange("REGISTER * * hunter22").await;
    let mut bob = server.client("bob").await;
    bob.exchange("REGISTER * * hunter22").await;
    alice.exchange("JOIN #c").await;
    bob.exchange("JOIN #c").await;
    bob.exchange("PRIVMSG #c :to the channel").await;
    bob.exchange("PRIVMSG alice :to alice").await;
    alice.exchange("PRIVMSG bob :to bob").await;
    alice.sync().await;
    bob.sync().await;

    let bodies = |lines: Vec<String>| -> Vec<String> {
        lines.iter().map(|line| untagged(line).to_owned()).collect()
    };
    // Everything since 2000, without alice's own message (no self-message).
    let lines = alice.exchange("PRIVMSG *playback :PLAY * 946684800").await;
    assert!(
        lines.iter().all(|line| tag(line, "time").is_some()),
        "{lines:?}"
    );
    let mut played = bodies(lines);
    played.sort();
    assert_eq!(
        played,
        [
            format!(":{} PRIVMSG #c :to the channel", bob.mask()),
            format!(":{} PRIVMSG alice :to alice", bob.mask()),
        ]
    );
    // Nothing after 2100; one channel only; a future window is empty.
    assert!(alice
        .exchange("PRIVMSG *playback :PLAY * 4102444800")
        .await
        .is_empty());
    assert_eq!(
        bodies(alice.exchange("PRIVMSG *playback :PLAY #c 0").await),
        [format!(":{} PRIVMSG #c :to the channel", bob.mask())]
    );
    assert!(alice
        .exchange("PRIVMSG *playback :PLAY #c 0 946684800")
        .await
        .is_empty());
    // With self-message, one's own messages come back too.
    alice.exchange("CAP REQ :znc.in/self-message").await;
    assert_eq!(
        bodies(alice.exchange("PRIVMSG *playback :PLAY bob 0").await),
        [
            format!(":{} PRIVMSG alice :to alice", bob.mask()),
            format!(":{} PRIVMSG bob :to bob", alice.mask()),
        ]
    );
    assert_eq!(
        alice.exchange("PRIVMSG *playback :PLAY").await,
        [":*playback!znc@znc.in NOTICE alice :Usage: PLAY <#channel|nick|*> <since> [<until>] (Unix times)"]
    );
}

#[tokio::test]
async fn a_returning_account_is_replayed_only_what_it_missed() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut alice = server.client("alice").await;
    alice.exchange("REGISTER * * hunter22").await;
    join(&mut alice, "#c").await;
    let mut bob = server.client("bob").await;
    join(&mut bob, "#c").await;
    bob.exchange("PRIVMSG #c :seen by alice").await;
    alice.send("QUIT").await;
    alice.read_to_end().await;
    wait_for_last_seen(&server, "alice").await;
    bob.exchange("PRIVMSG #c :missed by alice").await;

    let mut alice = server.client("alice").await;
    let lines = alice.exchange("PRIVMSG NickServ :IDENTIFY hunter22").await;
    assert!(lines.iter().any(|line| line.contains(" 900 ")), "{lines:?}");
    let lines = alice.exchange("JOIN #c").await;
    assert_eq!(
        lines.last().unwrap(),
        &format!(":{} PRIVMSG #c :missed by alice", bob.mask())
    );
    assert!(
        !lines.iter().any(|line| line.contains("seen by alice")),
        "{lines:?}"
    );
    // Someone without an account gets the usual replay.
    let mut carol = server.client("carol").await;
    let lines = carol.exchange("JOIN #c").await;
    assert!(
        lines.iter().any(|line| line.contains("seen by alice")),
        "{lines:?}"
    );
}
