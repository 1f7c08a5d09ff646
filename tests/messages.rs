//! PRIVMSG and NOTICE: to channels, to nicks, to several targets and to
//! one status level of a channel (STATUSMSG), with every error PRIVMSG can
//! give and the silence NOTICE must keep instead.

mod common;
use common::*;

// ------------------------------------------------------------ delivery

#[tokio::test]
async fn privmsg_to_a_channel_reaches_the_others_but_not_the_sender() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice, &mut bob, &mut carol]).await;
    assert!(alice
        .exchange("PRIVMSG #c :Hello, channel!")
        .await
        .is_empty());
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG #c :Hello, channel!"]
    );
    assert_eq!(
        carol.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG #c :Hello, channel!"]
    );
    dave.expect_nothing().await;
}

#[tokio::test]
async fn notice_to_a_channel_reaches_the_others_but_not_the_sender() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    assert!(alice.exchange("NOTICE #c :Heads up").await.is_empty());
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 NOTICE #c :Heads up"]
    );
}

#[tokio::test]
async fn privmsg_and_notice_to_a_nick() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    assert!(alice.exchange("PRIVMSG bob :Hi Bob").await.is_empty());
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG bob :Hi Bob"]
    );
    assert!(alice.exchange("NOTICE bob :A notice").await.is_empty());
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 NOTICE bob :A notice"]
    );
    // A one-word text needs no colon; the relayed text always has one.
    alice.exchange("PRIVMSG bob word").await;
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG bob :word"]
    );
    // A text that itself starts with a colon keeps it.
    alice.exchange("PRIVMSG bob ::-)").await;
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG bob ::-)"]
    );
    carol.expect_nothing().await;
}

#[tokio::test]
async fn several_targets_in_one_message() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#chan", &mut [&mut alice, &mut carol]).await;
    assert!(alice.exchange("PRIVMSG bob,#chan :hi").await.is_empty());
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG bob :hi"]
    );
    assert_eq!(
        carol.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG #chan :hi"]
    );
    // A bad target among good ones fails alone.
    assert_eq!(
        alice.exchange("PRIVMSG nobody,bob :again").await,
        [numeric("401", "alice", "nobody :No such nick/channel")]
    );
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG bob :again"]
    );
}

#[tokio::test]
async fn a_message_to_yourself_comes_back() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("PRIVMSG alice :note to self").await,
        [":alice!~alice@127.0.0.1 PRIVMSG alice :note to self"]
    );
    assert_eq!(
        alice.exchange("NOTICE alice :noted").await,
        [":alice!~alice@127.0.0.1 NOTICE alice :noted"]
    );
}

#[tokio::test]
async fn ctcp_and_dcc_payloads_arrive_byte_exact() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    alice.exchange("PRIVMSG bob :\x01ACTION waves\x01").await;
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG bob :\x01ACTION waves\x01"]
    );
    alice
        .exchange("PRIVMSG #c :\x01ACTION waves at everyone\x01")
        .await;
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG #c :\x01ACTION waves at everyone\x01"]
    );
    alice
        .exchange("PRIVMSG bob :\x01DCC SEND file.txt 2130706433 5000 1234\x01")
        .await;
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG bob :\x01DCC SEND file.txt 2130706433 5000 1234\x01"]
    );
    // CTCP replies travel as NOTICE.
    bob.exchange("NOTICE alice :\x01VERSION Parlor test client 1.0\x01")
        .await;
    assert_eq!(
        alice.sync().await,
        [":bob!~bob@127.0.0.1 NOTICE alice :\x01VERSION Parlor test client 1.0\x01"]
    );
    // Formatting codes pass untouched too.
    alice
        .exchange("PRIVMSG bob :\x02bold\x02 \x0304red\x03 \x1ditalic\x1d")
        .await;
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG bob :\x02bold\x02 \x0304red\x03 \x1ditalic\x1d"]
    );
}

// -------------------------------------------------------------- errors

#[tokio::test]
async fn privmsg_without_recipient_or_text() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    assert_eq!(
        alice.exchange("PRIVMSG").await,
        [numeric("411", "alice", ":No recipient given (PRIVMSG)")]
    );
    assert_eq!(
        alice.exchange("PRIVMSG :").await,
        [numeric("411", "alice", ":No recipient given (PRIVMSG)")]
    );
    assert_eq!(
        alice.exchange("PRIVMSG bob").await,
        [numeric("412", "alice", ":No text to send")]
    );
    assert_eq!(
        alice.exchange("PRIVMSG bob :").await,
        [numeric("412", "alice", ":No text to send")]
    );
    bob.expect_nothing().await;
}

#[tokio::test]
async fn privmsg_to_unknown_nick_or_channel() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("PRIVMSG nobody :hello?").await,
        [numeric("401", "alice", "nobody :No such nick/channel")]
    );
    // Modern lists only 401 for PRIVMSG; for a channel that does not exist
    // Parlor answers the more precise 403 (ERR_NOSUCHCHANNEL: "no channel
    // can be found for the supplied channel name").
    assert_eq!(
        alice.exchange("PRIVMSG #nowhere :hello?").await,
        [numeric("403", "alice", "#nowhere :No such channel")]
    );
}

#[tokio::test]
async fn unregistered_connections_cannot_be_messaged() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut pending = server.connect().await;
    pending.send("NICK pending").await;
    pending.sync().await;
    assert_eq!(
        alice.exchange("PRIVMSG pending :hello?").await,
        [numeric("401", "alice", "pending :No such nick/channel")]
    );
    pending.expect_nothing().await;
}

#[tokio::test]
async fn no_external_messages_refuses_outsiders() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice]).await;
    // New channels are +n.
    assert_eq!(
        dave.exchange("PRIVMSG #c :let me in").await,
        [numeric("404", "dave", "#c :Cannot send to channel")]
    );
    alice.expect_nothing().await;
    // Without +n outsiders may speak.
    alice.exchange("MODE #c -n").await;
    assert!(dave.exchange("PRIVMSG #c :from outside").await.is_empty());
    assert_eq!(
        alice.sync().await,
        [":dave!~dave@127.0.0.1 PRIVMSG #c :from outside"]
    );
}

#[tokio::test]
async fn moderated_channel_needs_voice() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#c", &mut [&mut alice, &mut bob, &mut carol]).await;
    alice.exchange("MODE #c +m").await;
    bob.sync().await;
    carol.sync().await;
    assert_eq!(
        bob.exchange("PRIVMSG #c :can I talk?").await,
        [numeric("404", "bob", "#c :Cannot send to channel")]
    );
    alice.expect_nothing().await;
    carol.expect_nothing().await;

    alice.exchange("MODE #c +v bob").await;
    bob.sync().await;
    carol.sync().await;
    assert!(bob.exchange("PRIVMSG #c :now I can").await.is_empty());
    assert_eq!(
        alice.sync().await,
        [":bob!~bob@127.0.0.1 PRIVMSG #c :now I can"]
    );
    assert_eq!(
        carol.sync().await,
        [":bob!~bob@127.0.0.1 PRIVMSG #c :now I can"]
    );
    // Ops speak in +m without voice.
    assert!(alice.exchange("PRIVMSG #c :ops too").await.is_empty());
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG #c :ops too"]
    );
}

#[tokio::test]
async fn banned_members_cannot_speak_unless_excepted() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    alice.exchange("MODE #c +b bob!*@*").await;
    bob.sync().await;
    assert_eq!(
        bob.exchange("PRIVMSG #c :still here").await,
        [numeric("404", "bob", "#c :Cannot send to channel")]
    );
    alice.expect_nothing().await;
    // A ban exception restores the voice.
    alice.exchange("MODE #c +e *!~bob@*").await;
    bob.sync().await;
    assert!(bob.exchange("PRIVMSG #c :thanks").await.is_empty());
    assert_eq!(
        alice.sync().await,
        [":bob!~bob@127.0.0.1 PRIVMSG #c :thanks"]
    );
}

#[tokio::test]
async fn banned_outsiders_cannot_speak_without_plus_n() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("MODE #c -n+b dave").await;
    assert_eq!(
        dave.exchange("PRIVMSG #c :hi").await,
        [numeric("404", "dave", "#c :Cannot send to channel")]
    );
    alice.expect_nothing().await;
}

#[tokio::test]
async fn too_many_targets_gives_407_for_the_rest() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut others = Vec::new();
    for nick in ["b1", "b2", "b3", "b4", "b5"] {
        others.push(server.client(nick).await);
    }
    // MAXTARGETS=4: the first four get it, the fifth is refused.
    assert_eq!(
        alice.exchange("PRIVMSG b1,b2,b3,b4,b5 :hello all").await,
        [numeric("407", "alice", "b5 :Too many targets")]
    );
    for other in &mut others[..4] {
        let line = format!(":alice!~alice@127.0.0.1 PRIVMSG {} :hello all", other.nick);
        assert_eq!(other.sync().await, [line]);
    }
    others[4].expect_nothing().await;
}

/// More members than the server looks up at once before queueing (it
/// works through a channel's members in chunks): each gets the message
/// once, and a status prefix still picks exactly the members it names.
#[tokio::test]
async fn a_message_to_a_big_channel_reaches_each_member_once() {
    const MEMBERS: usize = 70;
    let server = TestServer::start().await;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        members.push(server.client(&format!("m{i}")).await);
    }
    setup_channel("#big", &mut members.iter_mut().collect::<Vec<_>>()).await;
    let voiced: Vec<usize> = (1..MEMBERS).step_by(9).collect();
    for &i in &voiced {
        members[0].exchange(&format!("MODE #big +v m{i}")).await;
    }
    for member in &mut members {
        member.sync().await;
    }

    assert!(members[0].exchange("PRIVMSG #big :to all").await.is_empty());
    for member in &mut members[1..] {
        assert_eq!(
            member.sync().await,
            [":m0!~m0@127.0.0.1 PRIVMSG #big :to all"]
        );
    }

    let last = MEMBERS - 1;
    assert!(members[last]
        .exchange("PRIVMSG +#big :to the voiced")
        .await
        .is_empty());
    for (i, member) in members.iter_mut().enumerate().take(last) {
        let expected: &[&str] = if i == 0 || voiced.contains(&i) {
            &[":m69!~m69@127.0.0.1 PRIVMSG +#big :to the voiced"]
        } else {
            &[]
        };
        assert_eq!(member.sync().await, expected, "m{i}");
    }
}

// ----------------------------------------------------------- STATUSMSG

/// alice and bob are ops of #chan, carol is voiced, dave is a plain member.
async fn status_fixture(server: &TestServer) -> [Client; 4] {
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    let mut dave = server.client("dave").await;
    setup_channel("#chan", &mut [&mut alice, &mut bob, &mut carol, &mut dave]).await;
    alice.exchange("MODE #chan +ov bob carol").await;
    for c in [&mut alice, &mut bob, &mut carol, &mut dave] {
        c.sync().await;
    }
    [alice, bob, carol, dave]
}

#[tokio::test]
async fn statusmsg_to_ops_reaches_only_ops() {
    let server = TestServer::start().await;
    let [mut alice, mut bob, mut carol, mut dave] = status_fixture(&server).await;
    assert!(alice.exchange("PRIVMSG @#chan :ops only").await.is_empty());
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG @#chan :ops only"]
    );
    carol.expect_nothing().await;
    dave.expect_nothing().await;
    // A plain member may write to the ops.
    assert!(dave.exchange("NOTICE @#chan :help please").await.is_empty());
    assert_eq!(
        alice.sync().await,
        [":dave!~dave@127.0.0.1 NOTICE @#chan :help please"]
    );
    assert_eq!(
        bob.sync().await,
        [":dave!~dave@127.0.0.1 NOTICE @#chan :help please"]
    );
    carol.expect_nothing().await;
}

#[tokio::test]
async fn statusmsg_to_voiced_reaches_voiced_and_ops() {
    let server = TestServer::start().await;
    let [mut alice, mut bob, mut carol, mut dave] = status_fixture(&server).await;
    assert!(alice
        .exchange("PRIVMSG +#chan :voiced and up")
        .await
        .is_empty());
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG +#chan :voiced and up"]
    );
    assert_eq!(
        carol.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG +#chan :voiced and up"]
    );
    dave.expect_nothing().await;
    alice.expect_nothing().await;
}

#[tokio::test]
async fn statusmsg_with_several_prefixes_uses_the_lowest() {
    // Modern, PRIVMSG: the channel "may be prefixed with one or more channel
    // membership prefix character (@, +, etc)", and `@%#bunny` is
    // "functionally identical" to `%#bunny`. So `@+#chan` reaches voiced
    // members and ops.
    let server = TestServer::start().await;
    let [mut alice, mut bob, mut carol, mut dave] = status_fixture(&server).await;
    assert_eq!(
        alice.exchange("PRIVMSG @+#chan :both prefixes").await,
        Vec::<String>::new()
    );
    for c in [&mut bob, &mut carol] {
        let lines = c.sync().await;
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(":alice!~alice@127.0.0.1 PRIVMSG ")
                && lines[0].ends_with("#chan :both prefixes"),
            "{lines:?}"
        );
    }
    dave.expect_nothing().await;
}

#[tokio::test]
async fn statusmsg_errors() {
    let server = TestServer::start().await;
    let [mut alice, _bob, _carol, _dave] = status_fixture(&server).await;
    let mut erin = server.client("erin").await;
    assert_eq!(
        erin.exchange("PRIVMSG @#chan :from outside").await,
        [numeric("404", "erin", "#chan :Cannot send to channel")]
    );
    assert_eq!(
        erin.exchange("PRIVMSG @#nowhere :hi").await,
        [numeric("403", "erin", "#nowhere :No such channel")]
    );
    alice.expect_nothing().await;
}

// -------------------------------------------------------------- NOTICE

#[tokio::test]
async fn notice_never_gets_an_error_reply() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut dave = server.client("dave").await;
    let mut others = Vec::new();
    for nick in ["b1", "b2", "b3", "b4", "b5"] {
        others.push(server.client(nick).await);
    }
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    setup_channel("#banned", &mut [&mut alice, &mut dave]).await;
    alice.exchange("MODE #banned +b dave").await;
    dave.sync().await;

    // 411 and 412 for PRIVMSG.
    dave.send("NOTICE").await;
    dave.expect_nothing().await;
    dave.send("NOTICE bob").await;
    dave.expect_nothing().await;
    dave.send("NOTICE bob :").await;
    dave.expect_nothing().await;
    // 401 and 403.
    dave.send("NOTICE nobody :hi").await;
    dave.expect_nothing().await;
    dave.send("NOTICE #nowhere :hi").await;
    dave.expect_nothing().await;
    // 404 for +n from outside, +m without voice, and a ban.
    dave.send("NOTICE #c :outside").await;
    dave.expect_nothing().await;
    alice.exchange("MODE #c -n+m").await;
    bob.sync().await;
    dave.send("NOTICE #c :moderated").await;
    dave.expect_nothing().await;
    dave.send("NOTICE #banned :banned").await;
    dave.expect_nothing().await;
    // 407: the first four get it, the fifth nothing, and no error.
    dave.send("NOTICE b1,b2,b3,b4,b5 :many").await;
    dave.expect_nothing().await;
    for other in &mut others[..4] {
        let line = format!(":dave!~dave@127.0.0.1 NOTICE {} :many", other.nick);
        assert_eq!(other.sync().await, [line]);
    }
    others[4].expect_nothing().await;
    // None of the refused notices reached anyone.
    alice.expect_nothing().await;
    bob.expect_nothing().await;
}

// ---------------------------------------------------------------- AWAY

#[tokio::test]
async fn privmsg_to_an_away_user_gets_301_but_notice_does_not() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    bob.exchange("AWAY :Gone fishing").await;
    assert_eq!(
        alice.exchange("PRIVMSG bob :are you there?").await,
        [numeric("301", "alice", "bob :Gone fishing")]
    );
    // The message is delivered all the same.
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG bob :are you there?"]
    );
    assert!(alice.exchange("NOTICE bob :fyi").await.is_empty());
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 NOTICE bob :fyi"]
    );
    // Back again: no more 301.
    bob.exchange("AWAY").await;
    assert!(alice.exchange("PRIVMSG bob :welcome back").await.is_empty());
}

#[tokio::test]
async fn away_members_give_no_301_for_channel_messages() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    bob.exchange("AWAY :Gone fishing").await;
    assert!(alice.exchange("PRIVMSG #c :anyone?").await.is_empty());
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG #c :anyone?"]
    );
}

// ------------------------------------------- replies echoing client text

#[tokio::test]
async fn a_target_that_is_not_a_middle_parameter_gets_a_wellformed_401() {
    // The 401 repeats the target; `:x` cannot be sent as a middle parameter.
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    assert_wellformed(
        &alice.exchange("PRIVMSG bob,:x :hi").await,
        "401",
        "alice",
        1,
        "No such nick/channel",
    );
    assert_eq!(
        bob.sync().await,
        [":alice!~alice@127.0.0.1 PRIVMSG bob :hi"]
    );
}

#[tokio::test]
async fn relayed_messages_are_cut_to_512_bytes() {
    let server = TestServer::start().await;
    let long_nick = "n".repeat(30);
    let mut sender = server.client(&long_nick).await;
    let mut receiver = server.client("bob").await;
    // The longest text the sender may send: its own line is 512 bytes.
    let prefix = "PRIVMSG bob :";
    let text = "x".repeat(512 - 2 - prefix.len());
    sender.send(&format!("{prefix}{text}")).await;
    let line = receiver.next_line().await;
    assert!(line.starts_with(&format!(":{long_nick}!~")), "{line}");
    let (_, relayed) = line.split_once(" PRIVMSG bob :").expect("a PRIVMSG");
    assert_eq!(
        line.len() + 2,
        512,
        "the relayed line fills 512 bytes exactly"
    );
    assert!(relayed.len() < text.len() && text.starts_with(relayed));
}
