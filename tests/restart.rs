//! A restart is invisible to a channel's users: a channel alive when the
//! server stopped comes back with its topic, modes, lists, creation time
//! and history, and its operators and voiced members get their status
//! back when they rejoin. A channel that emptied while the server ran is
//! gone, as before.

mod common;
use common::*;

/// A client logged in to its account `nick` again after a restart.
async fn identified(server: &TestServer, nick: &str) -> Client {
    let mut c = server.client(nick).await;
    let lines = c
        .exchange(&format!("PRIVMSG NickServ :IDENTIFY {nick}-password"))
        .await;
    assert!(lines.iter().any(|l| l.contains(" 900 ")), "{lines:?}");
    c
}

/// The texts of the PRIVMSGs among `lines`.
fn texts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| untagged(l).split(' ').nth(1) == Some("PRIVMSG"))
        .map(|l| l.rsplit_once(" :").unwrap().1.to_owned())
        .collect()
}

/// The channel's state as its operator `viewer` sees it: modes, creation
/// time, topic and lists, exactly as sent.
async fn state_seen_by(viewer: &mut Client, channel: &str) -> Vec<String> {
    let mut lines = viewer.exchange(&format!("MODE {channel}")).await;
    lines.extend(viewer.exchange(&format!("TOPIC {channel}")).await);
    for list in ["b", "e", "I"] {
        lines.extend(viewer.exchange(&format!("MODE {channel} {list}")).await);
    }
    lines
}

/// The snapshot saved for `channel`, as JSON.
async fn saved_snapshot(server: &TestServer, channel: &str) -> serde_json::Value {
    let path = server.data_dir.path().join("parlor.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let json: String =
        sqlx::query_scalar("SELECT snapshot FROM channel_snapshots WHERE name_folded = ?")
            .bind(channel)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    serde_json::from_str(&json).unwrap()
}

/// anna (account, op), ben (no account, voiced) and carl (no account, no
/// status) in #room with a topic, a key, a limit, lists and 30 messages.
async fn busy_room(server: &TestServer) -> (Client, Client, Client) {
    let mut anna = server.account_holder("anna").await;
    let mut ben = server.client("ben").await;
    let mut carl = server.client("carl").await;
    setup_channel("#room", &mut [&mut anna, &mut ben, &mut carl]).await;
    for change in [
        "TOPIC #room :Nothing changes here",
        "MODE #room +v ben",
        "MODE #room +kl sesame 20",
        "MODE #room +b spam!*@*",
        "MODE #room +e friend!*@*",
        "MODE #room +I guest!*@*",
    ] {
        anna.exchange(change).await;
    }
    for n in 0..30 {
        let speaker = if n % 2 == 0 { &mut anna } else { &mut ben };
        speaker
            .exchange(&format!("PRIVMSG #room :message {n}"))
            .await;
    }
    for c in [&mut anna, &mut ben, &mut carl] {
        c.sync().await;
    }
    (anna, ben, carl)
}

#[tokio::test]
async fn a_restart_brings_a_channel_back_as_it_was() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let (mut anna, ben, carl) = busy_room(&server).await;
    let before = state_seen_by(&mut anna, "#room").await;
    assert!(before[0].ends_with(" #room +ntkl sesame 20"), "{before:?}");
    // Restarted with everyone still there, as an upgrade would.
    let server = server.restart().await;
    drop((anna, ben, carl));

    // Someone new comes first: the key still holds, and being first gives
    // no ops.
    let mut dave = server.client("dave").await;
    assert_eq!(
        dave.exchange("JOIN #room").await,
        [numeric("475", "dave", "#room :Cannot join channel (+k)")]
    );
    let lines = dave.exchange("JOIN #room sesame").await;
    assert_eq!(lines[0], ":dave!~dave@127.0.0.1 JOIN #room");
    assert!(!lines.iter().any(|l| l.contains(" MODE ")), "{lines:?}");
    let names = lines.iter().find(|l| l.contains(" 353 ")).unwrap();
    assert_names(names, "dave", "=", "#room", &["dave"]);

    // ben, voiced and without an account, comes back from the same address
    // with the same nick: no key needed, his voice back, the topic, and the
    // last lines replayed as a plain client sees them.
    let mut ben = server.client("ben").await;
    let lines = ben.exchange("JOIN #room").await;
    assert_eq!(lines[0], ":ben!~ben@127.0.0.1 JOIN #room");
    assert_eq!(lines[1], ":irc.test MODE #room +v ben");
    assert_eq!(
        lines[2],
        numeric("332", "ben", "#room :Nothing changes here")
    );
    assert!(lines[3].starts_with(&numeric("333", "ben", "#room anna!~anna@127.0.0.1 ")));
    let names = lines.iter().find(|l| l.contains(" 353 ")).unwrap();
    assert_names(names, "ben", "=", "#room", &["dave", "+ben"]);
    let replayed: Vec<String> = (15..30).map(|n| format!("message {n}")).collect();
    assert_eq!(texts(&lines), replayed, "{lines:?}");
    assert_eq!(
        dave.sync().await,
        [
            ":ben!~ben@127.0.0.1 JOIN #room",
            ":irc.test MODE #room +v ben"
        ]
    );

    // anna logs in to her account and gets her ops back; everything she
    // set is as it was, creation time included.
    let mut anna = identified(&server, "anna").await;
    let lines = anna.exchange("JOIN #room").await;
    assert_eq!(lines[1], ":irc.test MODE #room +o anna");
    assert_eq!(state_seen_by(&mut anna, "#room").await, before);

    // carl had no status: nothing to give back, but he is let in.
    let mut carl = server.client("carl").await;
    let lines = carl.exchange("JOIN #room sesame").await;
    assert!(!lines.iter().any(|l| l.contains(" MODE ")), "{lines:?}");
}

#[tokio::test]
async fn a_modern_client_reads_the_history_of_a_channel_brought_back() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let members = busy_room(&server).await;
    let server = server.restart().await;
    drop(members);

    let mut fay = server
        .client_with_caps("fay", "batch draft/chathistory message-tags server-time")
        .await;
    let lines = fay.exchange("JOIN #room sesame").await;
    // A chathistory client asks for what it wants: no replay.
    assert!(texts(&lines).is_empty(), "{lines:?}");
    let lines = fay.exchange("CHATHISTORY LATEST #room * 50").await;
    let all: Vec<String> = (0..30).map(|n| format!("message {n}")).collect();
    assert_eq!(texts(&lines), all, "{lines:?}");
    assert!(lines[0].starts_with(":irc.test BATCH +"), "{lines:?}");
    assert!(lines[0].ends_with(" chathistory #room"), "{lines:?}");
}

#[tokio::test]
async fn nobody_else_takes_a_returning_members_status() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let members = busy_room(&server).await;
    let server = server.restart().await;
    drop(members);

    // Someone using anna's nick without her account is not her, nor is
    // someone using ben's address under another nick.
    let mut fake_anna = server.client("anna").await;
    let lines = fake_anna.exchange("JOIN #room sesame").await;
    assert!(!lines.iter().any(|l| l.contains(" MODE ")), "{lines:?}");
    let mut bert = server.client("bert").await;
    let lines = bert.exchange("JOIN #room sesame").await;
    assert!(!lines.iter().any(|l| l.contains(" MODE ")), "{lines:?}");
    let names = lines.iter().find(|l| l.contains(" 353 ")).unwrap();
    assert_names(names, "bert", "=", "#room", &["anna", "bert"]);
    // Nor do they pass the key.
    let mut carl2 = server.client("carl2").await;
    assert_eq!(
        carl2.exchange("JOIN #room").await,
        [numeric("475", "carl2", "#room :Cannot join channel (+k)")]
    );

    // anna, once she identifies, gets her ops back even though she joined
    // first (a client that autojoins before it identifies).
    fake_anna.sync().await;
    let lines = fake_anna
        .exchange("PRIVMSG NickServ :IDENTIFY anna-password")
        .await;
    assert!(
        lines.contains(&":irc.test MODE #room +o anna".to_owned()),
        "{lines:?}"
    );
    assert_eq!(bert.sync().await, [":irc.test MODE #room +o anna"]);
}

#[tokio::test]
async fn members_of_an_invite_only_channel_come_back_without_an_invitation() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut anna = server.account_holder("anna").await;
    let mut ben = server.client("ben").await;
    setup_channel("#club", &mut [&mut anna, &mut ben]).await;
    anna.exchange("MODE #club +i").await;
    let server = server.restart().await;
    drop((anna, ben));

    let mut ben = server.client("ben").await;
    let lines = ben.exchange("JOIN #club").await;
    assert_eq!(lines[0], ":ben!~ben@127.0.0.1 JOIN #club");
    let mut carl = server.client("carl").await;
    assert_eq!(
        carl.exchange("JOIN #club").await,
        [numeric("473", "carl", "#club :Cannot join channel (+i)")]
    );
}

#[tokio::test]
async fn a_channel_that_emptied_before_the_restart_stays_gone() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut anna = server.client("anna").await;
    join(&mut anna, "#gone").await;
    anna.exchange("TOPIC #gone :old topic").await;
    anna.exchange("PRIVMSG #gone :said before").await;
    anna.exchange("PART #gone").await;
    drop(anna);
    let server = server.restart().await;

    let mut ben = server.client("ben").await;
    let lines = ben.exchange("JOIN #gone").await;
    assert_eq!(lines[0], ":ben!~ben@127.0.0.1 JOIN #gone");
    // A new channel: its creator is its op, and it has no topic and no
    // past.
    let names = lines.iter().find(|l| l.contains(" 353 ")).unwrap();
    assert_names(names, "ben", "=", "#gone", &["@ben"]);
    assert!(!lines.iter().any(|l| l.contains(" 332 ")), "{lines:?}");
    assert!(texts(&lines).is_empty(), "{lines:?}");
}

#[tokio::test]
async fn a_channel_nobody_comes_back_to_goes_when_the_wait_ends() {
    let config = format!("{FAST_ACCOUNTS}[channels]\nrestart_wait_secs = 3\n");
    let server = TestServer::start_with(&config).await;
    let mut anna = server.client("anna").await;
    join(&mut anna, "#quiet").await;
    anna.exchange("PRIVMSG #quiet :said before").await;
    let server = server.restart().await;
    drop(anna);

    let mut ben = server.client("ben").await;
    // Listed while it waits; gone once the wait is over (bounded poll).
    let listed = ben.exchange("LIST #quiet").await;
    assert!(listed[1].contains(" 322 ben #quiet 0 "), "{listed:?}");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let listed = ben.exchange("LIST #quiet").await;
        if !listed.iter().any(|l| l.contains(" 322 ")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still listed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Gone for good: the next start does not bring it back either, and
    // whoever creates it again gets a new channel with no past.
    let server = server.restart().await;
    drop(ben);
    let mut carl = server.client("carl").await;
    let lines = carl.exchange("JOIN #quiet").await;
    let names = lines.iter().find(|l| l.contains(" 353 ")).unwrap();
    assert_names(names, "carl", "=", "#quiet", &["@carl"]);
    assert!(texts(&lines).is_empty(), "{lines:?}");
}

#[tokio::test]
async fn channels_wait_through_a_second_restart_no_longer_than_the_first_said() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let members = busy_room(&server).await;
    let first_start = unix_now();
    let server = server.restart().await;
    let first_started = unix_now();
    drop(members);
    // Nobody came back before the server was restarted again: the wait
    // goes on, and still ends a day after the first restart.
    let server = server.restart().await;
    let saved = saved_snapshot(&server, "#room").await;
    let wait_until = saved["wait_until"]
        .as_u64()
        .expect("a saved end of the wait");
    assert!(
        (first_start + 86_400..=first_started + 86_400).contains(&wait_until),
        "{saved}"
    );

    let mut anna = identified(&server, "anna").await;
    let lines = anna.exchange("JOIN #room").await;
    assert_eq!(lines[1], ":irc.test MODE #room +o anna");
    let mut ben = server.client("ben").await;
    let lines = ben.exchange("JOIN #room").await;
    assert_eq!(lines[1], ":irc.test MODE #room +v ben");
}

#[tokio::test]
async fn with_the_wait_at_zero_channels_do_not_outlive_a_restart() {
    let config = format!("{FAST_ACCOUNTS}[channels]\nrestart_wait_secs = 0\n");
    let server = TestServer::start_with(&config).await;
    let members = busy_room(&server).await;
    let server = server.restart().await;
    drop(members);

    let mut ben = server.client("ben").await;
    let lines = ben.exchange("JOIN #room").await;
    let names = lines.iter().find(|l| l.contains(" 353 ")).unwrap();
    assert_names(names, "ben", "=", "#room", &["@ben"]);
    assert!(texts(&lines).is_empty(), "{lines:?}");
}

#[tokio::test]
async fn a_channel_waiting_for_its_members_cannot_be_taken_over() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let members = busy_room(&server).await;
    let server = server.restart().await;
    drop(members);

    // Someone joins the empty channel and leaves it: it stays, waiting, so
    // coming back does not make them its creator.
    let mut mallory = server.client("mallory").await;
    mallory.exchange("JOIN #room sesame").await;
    mallory.exchange("PART #room").await;
    let lines = mallory.exchange("JOIN #room sesame").await;
    let names = lines.iter().find(|l| l.contains(" 353 ")).unwrap();
    assert_names(names, "mallory", "=", "#room", &["mallory"]);
    assert!(lines.iter().any(|l| l.contains(" 332 ")), "{lines:?}");
    let mut anna = identified(&server, "anna").await;
    let lines = anna.exchange("JOIN #room").await;
    assert_eq!(lines[1], ":irc.test MODE #room +o anna");
}

#[tokio::test]
async fn a_ban_set_after_the_restart_keeps_a_returning_member_out() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let members = busy_room(&server).await;
    let server = server.restart().await;
    drop(members);

    let mut anna = identified(&server, "anna").await;
    anna.exchange("JOIN #room").await;
    anna.exchange("MODE #room +b ben!*@*").await;
    let mut ben = server.client("ben").await;
    assert_eq!(
        ben.exchange("JOIN #room").await,
        [numeric("474", "ben", "#room :Cannot join channel (+b)")]
    );
}

#[tokio::test]
async fn a_returning_member_passes_the_limit_but_not_from_another_address() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut anna = server.account_holder("anna").await;
    let mut ben = server.client("ben").await;
    setup_channel("#full", &mut [&mut anna, &mut ben]).await;
    anna.exchange("MODE #full +v ben").await;
    anna.exchange("MODE #full +l 1").await;
    let server = server.restart().await;
    drop((anna, ben));

    let mut carl = server.client("carl").await;
    carl.exchange("JOIN #full").await;
    // The channel is full, but ben is awaited: he comes in, voiced.
    let mut ben = server.client("ben").await;
    let lines = ben.exchange("JOIN #full").await;
    assert_eq!(lines[1], ":irc.test MODE #full +v ben");
    // The same nick from another address is someone else: refused (+l).
    ben.send("QUIT").await;
    ben.read_to_end().await;
    let mut other = Client::connect_from(server.addr, "127.0.0.2".parse().unwrap()).await;
    other.register("ben").await;
    let lines = other.exchange("JOIN #full").await;
    assert_eq!(
        lines,
        [numeric("471", "ben", "#full :Cannot join channel (+l)")]
    );
}

#[tokio::test]
async fn an_op_who_was_also_voiced_gets_both_back() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut anna = server.account_holder("anna").await;
    join(&mut anna, "#both").await;
    anna.exchange("MODE #both +v anna").await;
    let server = server.restart().await;
    drop(anna);

    let mut anna = identified(&server, "anna").await;
    let lines = anna.exchange("JOIN #both").await;
    assert_eq!(lines[1], ":irc.test MODE #both +ov anna anna");
}

#[tokio::test]
async fn an_account_dropped_and_made_again_is_not_the_one_awaited() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut anna = server.account_holder("anna").await;
    join(&mut anna, "#mine").await;
    let server = server.restart().await;
    drop(anna);

    let mut anna = identified(&server, "anna").await;
    let lines = anna.exchange("PRIVMSG NickServ :DROP anna-password").await;
    assert!(lines.iter().any(|l| l.contains(" 901 ")), "{lines:?}");
    let lines = anna.exchange("REGISTER * * another-password").await;
    assert!(lines.iter().any(|l| l.contains(" 900 ")), "{lines:?}");
    let lines = anna.exchange("JOIN #mine").await;
    assert!(!lines.iter().any(|l| l.contains(" MODE ")), "{lines:?}");
    let names = lines.iter().find(|l| l.contains(" 353 ")).unwrap();
    assert_names(names, "anna", "=", "#mine", &["anna"]);
}
