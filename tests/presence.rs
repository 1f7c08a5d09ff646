//! Who is online: AWAY and MONITOR.

mod common;
use common::*;

/// Every RPL_ISUPPORT token, as VERSION lists them.
async fn isupport_tokens(c: &mut Client) -> Vec<String> {
    let nick = c.nick.clone();
    let prefix = numeric("005", &nick, "");
    c.exchange("VERSION")
        .await
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .flat_map(|rest| {
            let (tokens, _) = rest.split_once(" :").expect("005 ends with text");
            tokens.split(' ').map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

// ---------------------------------------------------------------- AWAY

#[tokio::test]
async fn away_is_set_and_unset() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("AWAY :Gone fishing").await,
        [numeric(
            "306",
            "alice",
            ":You have been marked as being away"
        )]
    );
    // Setting it again replaces the message.
    assert_eq!(
        alice.exchange("AWAY :Back at five").await,
        [numeric(
            "306",
            "alice",
            ":You have been marked as being away"
        )]
    );
    assert_eq!(
        alice.exchange("AWAY").await,
        [numeric(
            "305",
            "alice",
            ":You are no longer marked as being away"
        )]
    );
    // An empty message also means back; so does AWAY when not away.
    alice.exchange("AWAY :x").await;
    assert_eq!(
        alice.exchange("AWAY :").await,
        [numeric(
            "305",
            "alice",
            ":You are no longer marked as being away"
        )]
    );
    assert_eq!(
        alice.exchange("AWAY").await,
        [numeric(
            "305",
            "alice",
            ":You are no longer marked as being away"
        )]
    );
}

#[tokio::test]
async fn private_messages_to_an_away_user_get_301() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    alice.exchange("AWAY :Gone fishing").await;

    assert_eq!(
        bob.exchange("PRIVMSG alice :are you there?").await,
        [numeric("301", "bob", "alice :Gone fishing")]
    );
    assert_eq!(
        alice.sync().await,
        [":bob!~bob@127.0.0.1 PRIVMSG alice :are you there?"]
    );
    // NOTICE never triggers an automatic reply.
    assert!(bob.exchange("NOTICE alice :fyi").await.is_empty());
    assert_eq!(
        alice.sync().await,
        [":bob!~bob@127.0.0.1 NOTICE alice :fyi"]
    );
    // Nor does a message to a channel the away user is in.
    let join = |c: &Client| format!(":{} JOIN #chan", c.mask());
    assert_eq!(alice.exchange("JOIN #chan").await[0], join(&alice));
    assert_eq!(bob.exchange("JOIN #chan").await[0], join(&bob));
    assert!(bob.exchange("PRIVMSG #chan :hello all").await.is_empty());

    // Once back, no more 301.
    alice.exchange("AWAY").await;
    assert!(bob.exchange("PRIVMSG alice :now?").await.is_empty());
}

#[tokio::test]
async fn whois_and_who_show_the_away_state() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    alice.exchange("AWAY :Gone fishing").await;

    let lines = bob.exchange("WHOIS alice").await;
    assert!(
        lines.contains(&numeric("301", "bob", "alice :Gone fishing")),
        "{lines:?}"
    );
    assert_eq!(
        bob.exchange("WHO alice").await[0],
        numeric(
            "352",
            "bob",
            &format!("* ~alice 127.0.0.1 {SERVER} alice G :0 Real alice")
        )
    );

    alice.exchange("AWAY").await;
    let lines = bob.exchange("WHOIS alice").await;
    assert!(!lines.iter().any(|l| l.contains(" 301 ")), "{lines:?}");
    assert_eq!(
        bob.exchange("WHO alice").await[0],
        numeric(
            "352",
            "bob",
            &format!("* ~alice 127.0.0.1 {SERVER} alice H :0 Real alice")
        )
    );
}

#[tokio::test]
async fn away_messages_are_cut_to_awaylen() {
    let server = TestServer::start_with("[limits]\naway_length = 10\n").await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    assert!(isupport_tokens(&mut bob)
        .await
        .contains(&"AWAYLEN=10".to_owned()));

    assert_eq!(
        alice.exchange("AWAY :0123456789abcdef").await,
        [numeric(
            "306",
            "alice",
            ":You have been marked as being away"
        )]
    );
    assert_eq!(
        bob.exchange("PRIVMSG alice :hi").await,
        [numeric("301", "bob", "alice :0123456789")]
    );
    let lines = bob.exchange("WHOIS alice").await;
    assert!(
        lines.contains(&numeric("301", "bob", "alice :0123456789")),
        "{lines:?}"
    );
    // Exactly AWAYLEN is kept whole.
    alice.exchange("AWAY :abcdefghij").await;
    assert_eq!(
        bob.exchange("PRIVMSG alice :hi").await,
        [numeric("301", "bob", "alice :abcdefghij")]
    );
}

// ---------------------------------------------------------------- MONITOR

fn online(viewer: &str, masks: &str) -> String {
    numeric("730", viewer, &format!(":{masks}"))
}

fn offline(viewer: &str, nicks: &str) -> String {
    numeric("731", viewer, &format!(":{nicks}"))
}

#[tokio::test]
async fn monitor_is_advertised() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert!(isupport_tokens(&mut alice)
        .await
        .contains(&"MONITOR=100".to_owned()));
}

#[tokio::test]
async fn monitor_add_reports_who_is_online_and_offline_at_once() {
    let server = TestServer::start().await;
    let _alice = server.client("alice").await;
    let _dave = server.client("dave").await;
    let mut bob = server.client("bob").await;
    assert_eq!(
        bob.exchange("MONITOR + alice,carol,Dave,erin").await,
        [
            online("bob", "alice!~alice@127.0.0.1,dave!~dave@127.0.0.1"),
            offline("bob", "carol,erin"),
        ]
    );
    // Only offline, or only online: just that numeric.
    assert_eq!(
        bob.exchange("MONITOR + frank").await,
        [offline("bob", "frank")]
    );
    assert_eq!(
        bob.exchange("MONITOR + ALICE").await,
        [online("bob", "alice!~alice@127.0.0.1")]
    );
    // Targets must be nicks; anything else is skipped.
    assert_eq!(
        bob.exchange("MONITOR + #chan,gina").await,
        [offline("bob", "gina")]
    );
    assert_eq!(
        bob.exchange("MONITOR").await,
        [numeric("461", "bob", "MONITOR :Not enough parameters")]
    );
}

#[tokio::test]
async fn monitor_notifies_connect_quit_and_nick_change() {
    let server = TestServer::start().await;
    let mut bob = server.client("bob").await;
    assert_eq!(
        bob.exchange("MONITOR + Carol,alicia").await,
        [offline("bob", "Carol,alicia")]
    );

    // carol registers: 730 with her full mask.
    let mut carol = server.client("carol").await;
    assert_eq!(bob.sync().await, [online("bob", "carol!~carol@127.0.0.1")]);

    // A nick change: 731 for the old nick (watched) and 730 for the new.
    assert_eq!(
        carol.exchange("NICK alicia").await,
        [":carol!~carol@127.0.0.1 NICK alicia"]
    );
    assert_eq!(
        bob.sync().await,
        [
            offline("bob", "carol"),
            online("bob", "alicia!~carol@127.0.0.1"),
        ]
    );
    // To an unwatched nick: only the 731.
    carol.exchange("NICK zed").await;
    assert_eq!(bob.sync().await, [offline("bob", "alicia")]);
    // Back to a watched one: only the 730.
    carol.exchange("NICK carol").await;
    assert_eq!(bob.sync().await, [online("bob", "carol!~carol@127.0.0.1")]);

    // She quits: 731.
    carol.send("QUIT :bye").await;
    carol.read_to_end().await;
    assert_eq!(bob.sync().await, [offline("bob", "carol")]);
}

#[tokio::test]
async fn monitor_remove_stops_notifications() {
    let server = TestServer::start().await;
    let mut bob = server.client("bob").await;
    bob.exchange("MONITOR + carol,dave").await;
    // No output for `-`, even for a nick that was not in the list.
    assert!(bob.exchange("MONITOR - CAROL,nobody").await.is_empty());
    let _carol = server.client("carol").await;
    bob.expect_nothing().await;
    let _dave = server.client("dave").await;
    assert_eq!(bob.sync().await, [online("bob", "dave!~dave@127.0.0.1")]);
}

#[tokio::test]
async fn monitor_list_clear_and_status() {
    let server = TestServer::start().await;
    let _alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let end_of_list = numeric("733", "bob", ":End of MONITOR list");

    assert_eq!(bob.exchange("MONITOR L").await, [end_of_list.as_str()]);
    bob.exchange("MONITOR + carol,alice").await;
    // Listed sorted; the spec only asks for "the list of targets".
    assert_eq!(
        bob.exchange("MONITOR L").await,
        [numeric("732", "bob", ":alice,carol"), end_of_list.clone()]
    );
    assert_eq!(
        bob.exchange("MONITOR S").await,
        [
            online("bob", "alice!~alice@127.0.0.1"),
            offline("bob", "carol"),
        ]
    );
    // Lower case works too.
    assert_eq!(
        bob.exchange("MONITOR l").await,
        [numeric("732", "bob", ":alice,carol"), end_of_list.clone()]
    );

    assert!(bob.exchange("MONITOR C").await.is_empty());
    assert_eq!(bob.exchange("MONITOR L").await, [end_of_list.as_str()]);
    assert!(bob.exchange("MONITOR S").await.is_empty());
    // Cleared means no more notifications.
    let _carol = server.client("carol").await;
    bob.expect_nothing().await;
}

#[tokio::test]
async fn monitor_l_lists_nicks_as_they_were_added() {
    let server = TestServer::start().await;
    let _alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    assert_eq!(
        bob.exchange("MONITOR + Carol,ALICE,dAvE").await,
        [
            online("bob", "alice!~alice@127.0.0.1"),
            offline("bob", "Carol,dAvE"),
        ]
    );
    // Added again in another case, a nick keeps the form it was added in.
    assert_eq!(
        bob.exchange("MONITOR + carol").await,
        [offline("bob", "carol")]
    );
    let end_of_list = numeric("733", "bob", ":End of MONITOR list");
    assert_eq!(
        bob.exchange("MONITOR L").await,
        [
            numeric("732", "bob", ":ALICE,Carol,dAvE"),
            end_of_list.clone()
        ]
    );
    assert_eq!(
        bob.exchange("MONITOR S").await,
        [
            online("bob", "alice!~alice@127.0.0.1"),
            offline("bob", "Carol,dAvE"),
        ]
    );
    // Removal goes by the casefolded nick, whatever the case it names.
    bob.exchange("MONITOR - CAROL").await;
    assert_eq!(
        bob.exchange("MONITOR L").await,
        [numeric("732", "bob", ":ALICE,dAvE"), end_of_list]
    );
    // Watching still goes by the nick in any case.
    let _dave = server.client("dave").await;
    assert_eq!(bob.sync().await, [online("bob", "dave!~dave@127.0.0.1")]);
}

#[tokio::test]
async fn monitor_list_full_gives_734() {
    let server = TestServer::start_with("[limits]\nmonitor_entries = 2\n").await;
    let mut bob = server.client("bob").await;
    assert!(isupport_tokens(&mut bob)
        .await
        .contains(&"MONITOR=2".to_owned()));

    // The targets that fit are added (and reported); the rest are named in
    // 734 as sent. The spec does not say whether the others are added; the
    // server adds them.
    assert_eq!(
        bob.exchange("MONITOR + a1,a2,A3,a4").await,
        [
            numeric("734", "bob", "2 A3,a4 :Monitor list is full."),
            offline("bob", "a1,a2"),
        ]
    );
    assert_eq!(
        bob.exchange("MONITOR L").await,
        [
            numeric("732", "bob", ":a1,a2"),
            numeric("733", "bob", ":End of MONITOR list"),
        ]
    );
    // A target already in the list takes no room.
    assert_eq!(bob.exchange("MONITOR + A1").await, [offline("bob", "A1")]);
    assert_eq!(
        bob.exchange("MONITOR + b").await,
        [numeric("734", "bob", "2 b :Monitor list is full.")]
    );
    // Removing one makes room.
    bob.exchange("MONITOR - a2").await;
    assert_eq!(bob.exchange("MONITOR + b").await, [offline("bob", "b")]);
}

#[tokio::test]
async fn monitor_unknown_subcommand_is_an_error() {
    let server = TestServer::start().await;
    let mut bob = server.client("bob").await;
    assert_eq!(
        bob.exchange("MONITOR X alice").await,
        [numeric(
            "400",
            "bob",
            "MONITOR X :Unknown MONITOR subcommand: use +, -, C, L or S"
        )]
    );
}
