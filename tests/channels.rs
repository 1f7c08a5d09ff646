//! Channel membership: JOIN, INVITE, PART and KICK, with every refusal
//! they can give (TOPIC, NAMES and LIST are in `channel_info.rs`).
//!
//! The server keeps channel members and channels in unordered maps, so where
//! several members (353) or several channels (322) appear in one reply the
//! tests compare them as sets; everything else is compared line for line.

mod common;
use common::*;

// ---------------------------------------------------------------- JOIN

#[tokio::test]
async fn join_creates_channel_with_creator_as_op() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("JOIN #parlor").await,
        [
            ":alice!~alice@127.0.0.1 JOIN #parlor".to_owned(),
            numeric("353", "alice", "= #parlor :@alice"),
            end_of_names("alice", "#parlor"),
        ]
    );
}

#[tokio::test]
async fn second_joiner_sees_both_and_members_see_the_join() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    alice.exchange("JOIN #parlor").await;
    let lines = bob.exchange("JOIN #parlor").await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], ":bob!~bob@127.0.0.1 JOIN #parlor");
    assert_names(&lines[1], "bob", "=", "#parlor", &["@alice", "bob"]);
    assert_eq!(lines[2], end_of_names("bob", "#parlor"));
    assert_eq!(alice.sync().await, [":bob!~bob@127.0.0.1 JOIN #parlor"]);
}

#[tokio::test]
async fn join_several_channels_with_keys() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#a", &mut [&mut alice]).await;
    alice.exchange("MODE #a +k key1").await;
    // The first key goes with the first channel; #b needs none.
    let lines = bob.exchange("JOIN #a,#b key1").await;
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(lines[0], ":bob!~bob@127.0.0.1 JOIN #a");
    assert_names(&lines[1], "bob", "=", "#a", &["@alice", "bob"]);
    assert_eq!(lines[2], end_of_names("bob", "#a"));
    assert_eq!(lines[3], ":bob!~bob@127.0.0.1 JOIN #b");
    assert_eq!(lines[4], numeric("353", "bob", "= #b :@bob"));
    assert_eq!(lines[5], end_of_names("bob", "#b"));
    assert_eq!(alice.sync().await, [":bob!~bob@127.0.0.1 JOIN #a"]);
}

#[tokio::test]
async fn join_zero_parts_every_channel() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#a", &mut [&mut alice, &mut bob]).await;
    setup_channel("#b", &mut [&mut alice]).await;
    let mut lines = alice.exchange("JOIN 0").await;
    lines.sort();
    assert_eq!(
        lines,
        [
            ":alice!~alice@127.0.0.1 PART #a",
            ":alice!~alice@127.0.0.1 PART #b"
        ]
    );
    assert_eq!(bob.sync().await, [":alice!~alice@127.0.0.1 PART #a"]);
    // Nothing left to part.
    alice.send("JOIN 0").await;
    alice.expect_nothing().await;
    let lines = alice.exchange("NAMES #a").await;
    // Bob stays, without becoming op.
    assert_eq!(
        lines,
        [
            numeric("353", "alice", "= #a :bob"),
            end_of_names("alice", "#a")
        ]
    );
}

#[tokio::test]
async fn invalid_channel_names_get_403() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("JOIN parlor").await,
        [numeric("403", "alice", "parlor :No such channel")]
    );
    assert_eq!(
        alice.exchange("JOIN #").await,
        [numeric("403", "alice", "# :No such channel")]
    );
    assert_eq!(
        alice.exchange("JOIN #a\x07b").await,
        [numeric("403", "alice", "#a\x07b :No such channel")]
    );
    let long = format!("#{}", "x".repeat(64));
    assert_eq!(
        alice.exchange(&format!("JOIN {long}")).await,
        [numeric("403", "alice", &format!("{long} :No such channel"))]
    );
    // A 64-byte name (CHANNELLEN=64) is fine.
    let longest = format!("#{}", "x".repeat(63));
    let lines = alice.exchange(&format!("JOIN {longest}")).await;
    assert_eq!(lines[0], format!(":alice!~alice@127.0.0.1 JOIN {longest}"));
    // Valid and invalid names in one JOIN are handled one by one.
    assert_eq!(
        alice.exchange("JOIN bad,&local").await,
        [
            numeric("403", "alice", "bad :No such channel"),
            ":alice!~alice@127.0.0.1 JOIN &local".to_owned(),
            numeric("353", "alice", "= &local :@alice"),
            end_of_names("alice", "&local"),
        ]
    );
}

#[tokio::test]
async fn joining_a_channel_again_is_silent() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#parlor", &mut [&mut alice, &mut bob]).await;
    bob.send("JOIN #parlor").await;
    bob.expect_nothing().await;
    // Casemapping: #PARLOR is the same channel.
    bob.send("JOIN #PARLOR").await;
    bob.expect_nothing().await;
    alice.expect_nothing().await;
}

#[tokio::test]
async fn channel_names_are_case_insensitive_and_keep_their_first_spelling() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#Parlor", &mut [&mut alice]).await;
    let lines = bob.exchange("JOIN #PARLOR").await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], ":bob!~bob@127.0.0.1 JOIN #Parlor");
    assert_names(&lines[1], "bob", "=", "#Parlor", &["@alice", "bob"]);
    assert_eq!(lines[2], end_of_names("bob", "#Parlor"));
    assert_eq!(alice.sync().await, [":bob!~bob@127.0.0.1 JOIN #Parlor"]);
}

#[tokio::test]
async fn channels_per_client_limit_gives_405() {
    let server = TestServer::start_with("[limits]\nchannels_per_client = 2\n").await;
    let mut alice = server.client("alice").await;
    setup_channel("#a", &mut [&mut alice]).await;
    setup_channel("#b", &mut [&mut alice]).await;
    assert_eq!(
        alice.exchange("JOIN #c").await,
        [numeric(
            "405",
            "alice",
            "#c :You have joined too many channels"
        )]
    );
    // Parting frees a slot.
    alice.exchange("PART #a").await;
    assert_eq!(
        alice.exchange("JOIN #c").await[0],
        ":alice!~alice@127.0.0.1 JOIN #c"
    );
}

// ------------------------------------------------------- JOIN refusals

#[tokio::test]
async fn join_refused_when_full() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("MODE #c +l 1").await;
    assert_eq!(
        bob.exchange("JOIN #c").await,
        [numeric("471", "bob", "#c :Cannot join channel (+l)")]
    );
    alice.expect_nothing().await;
}

#[tokio::test]
async fn join_refused_when_invite_only() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("MODE #c +i").await;
    assert_eq!(
        bob.exchange("JOIN #c").await,
        [numeric("473", "bob", "#c :Cannot join channel (+i)")]
    );
    alice.expect_nothing().await;
}

#[tokio::test]
async fn join_refused_when_banned() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("MODE #c +b bob!*@*").await;
    assert_eq!(
        bob.exchange("JOIN #c").await,
        [numeric("474", "bob", "#c :Cannot join channel (+b)")]
    );
    alice.expect_nothing().await;
    // Masks match case-insensitively.
    alice.exchange("MODE #c -b+b bob!*@* BOB!*@*").await;
    assert_eq!(
        bob.exchange("JOIN #c").await,
        [numeric("474", "bob", "#c :Cannot join channel (+b)")]
    );
}

#[tokio::test]
async fn join_refused_with_wrong_or_missing_key() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("MODE #c +k sesame").await;
    assert_eq!(
        bob.exchange("JOIN #c").await,
        [numeric("475", "bob", "#c :Cannot join channel (+k)")]
    );
    assert_eq!(
        bob.exchange("JOIN #c wrong").await,
        [numeric("475", "bob", "#c :Cannot join channel (+k)")]
    );
    assert_eq!(
        bob.exchange("JOIN #c sesame").await[0],
        ":bob!~bob@127.0.0.1 JOIN #c"
    );
}

// -------------------------------------------------------------- INVITE

#[tokio::test]
async fn invite_lets_the_target_into_an_invite_only_channel() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("MODE #c +i").await;
    assert_eq!(
        alice.exchange("INVITE bob #c").await,
        [numeric("341", "alice", "bob #c")]
    );
    assert_eq!(bob.sync().await, [":alice!~alice@127.0.0.1 INVITE bob #c"]);
    let lines = bob.exchange("JOIN #c").await;
    assert_eq!(lines[0], ":bob!~bob@127.0.0.1 JOIN #c");
    assert_eq!(alice.sync().await, [":bob!~bob@127.0.0.1 JOIN #c"]);
}

#[tokio::test]
async fn an_invitation_is_used_up_by_joining() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("MODE #c +i").await;
    alice.exchange("INVITE bob #c").await;
    bob.exchange("JOIN #c").await;
    bob.exchange("PART #c").await;
    assert_eq!(
        bob.exchange("JOIN #c").await,
        [numeric("473", "bob", "#c :Cannot join channel (+i)")]
    );
}

#[tokio::test]
async fn invite_is_not_announced_to_the_channel() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#c", &mut [&mut alice, &mut carol]).await;
    // Without +i any member may invite.
    assert_eq!(
        carol.exchange("INVITE bob #c").await,
        [numeric("341", "carol", "bob #c")]
    );
    assert_eq!(bob.sync().await, [":carol!~carol@127.0.0.1 INVITE bob #c"]);
    alice.expect_nothing().await;
}

#[tokio::test]
async fn invite_errors() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    assert_eq!(
        alice.exchange("INVITE bob #c").await,
        [numeric("443", "alice", "bob #c :is already on channel")]
    );
    assert_eq!(
        dave.exchange("INVITE carol #c").await,
        [numeric("442", "dave", "#c :You're not on that channel")]
    );
    assert_eq!(
        alice.exchange("INVITE nobody #c").await,
        [numeric("401", "alice", "nobody :No such nick/channel")]
    );
    assert_eq!(
        alice.exchange("INVITE carol #nowhere").await,
        [numeric("403", "alice", "#nowhere :No such channel")]
    );
    alice.exchange("MODE #c +i").await;
    bob.sync().await;
    assert_eq!(
        bob.exchange("INVITE carol #c").await,
        [numeric("482", "bob", "#c :You're not channel operator")]
    );
    assert_eq!(
        alice.exchange("INVITE carol").await,
        [numeric("461", "alice", "INVITE :Not enough parameters")]
    );
    // INVITE alone lists one's own pending invitations: alice has none.
    assert_eq!(
        alice.exchange("INVITE").await,
        [numeric("337", "alice", ":End of /INVITE list")]
    );
    // None of those reached carol.
    carol.expect_nothing().await;
}

#[tokio::test]
async fn invite_to_an_away_user_says_so() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice]).await;
    bob.exchange("AWAY :out to lunch").await;
    assert_eq!(
        alice.exchange("INVITE bob #c").await,
        [
            numeric("341", "alice", "bob #c"),
            numeric("301", "alice", "bob :out to lunch")
        ]
    );
    assert_eq!(bob.sync().await, [":alice!~alice@127.0.0.1 INVITE bob #c"]);
}

// ---------------------------------------------------------------- PART

#[tokio::test]
async fn part_with_and_without_reason_is_seen_by_members() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#c", &mut [&mut alice, &mut bob, &mut carol]).await;
    assert_eq!(
        bob.exchange("PART #c").await,
        [":bob!~bob@127.0.0.1 PART #c"]
    );
    assert_eq!(alice.sync().await, [":bob!~bob@127.0.0.1 PART #c"]);
    assert_eq!(carol.sync().await, [":bob!~bob@127.0.0.1 PART #c"]);
    assert_eq!(
        carol.exchange("PART #c :see you all").await,
        [":carol!~carol@127.0.0.1 PART #c :see you all"]
    );
    assert_eq!(
        alice.sync().await,
        [":carol!~carol@127.0.0.1 PART #c :see you all"]
    );
    // Bob has left: he hears nothing more.
    bob.expect_nothing().await;
}

#[tokio::test]
async fn part_errors() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice]).await;
    assert_eq!(
        bob.exchange("PART #nowhere").await,
        [numeric("403", "bob", "#nowhere :No such channel")]
    );
    assert_eq!(
        bob.exchange("PART #c").await,
        [numeric("442", "bob", "#c :You're not on that channel")]
    );
    assert_eq!(
        bob.exchange("PART").await,
        [numeric("461", "bob", "PART :Not enough parameters")]
    );
    alice.expect_nothing().await;
}

#[tokio::test]
async fn part_several_channels_at_once() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    setup_channel("#a", &mut [&mut alice]).await;
    setup_channel("#b", &mut [&mut alice]).await;
    assert_eq!(
        alice.exchange("PART #a,#nowhere,#b :bye").await,
        [
            ":alice!~alice@127.0.0.1 PART #a :bye".to_owned(),
            numeric("403", "alice", "#nowhere :No such channel"),
            ":alice!~alice@127.0.0.1 PART #b :bye".to_owned(),
        ]
    );
}

#[tokio::test]
async fn channel_disappears_when_the_last_member_leaves() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("TOPIC #c :remember me").await;
    alice.exchange("PART #c").await;
    assert_eq!(bob.exchange("NAMES #c").await, [end_of_names("bob", "#c")]);
    assert!(list_entries(&bob.exchange("LIST").await, "bob").is_empty());
    // Joining again creates a new channel: bob is its op and the topic is gone.
    assert_eq!(
        bob.exchange("JOIN #c").await,
        [
            ":bob!~bob@127.0.0.1 JOIN #c".to_owned(),
            numeric("353", "bob", "= #c :@bob"),
            end_of_names("bob", "#c"),
        ]
    );
}

// ---------------------------------------------------------------- KICK

#[tokio::test]
async fn kick_with_default_reason_is_seen_by_all_including_the_kicked() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#c", &mut [&mut alice, &mut bob, &mut carol]).await;
    // The default reason is the kicker's nick.
    let kick = ":alice!~alice@127.0.0.1 KICK #c bob :alice";
    assert_eq!(alice.exchange("KICK #c bob").await, [kick]);
    assert_eq!(bob.sync().await, [kick]);
    assert_eq!(carol.sync().await, [kick]);
    let lines = alice.exchange("NAMES #c").await;
    assert_names(&lines[0], "alice", "=", "#c", &["@alice", "carol"]);
    // Bob is out: channel traffic no longer reaches him.
    alice.exchange("PRIVMSG #c :hello").await;
    bob.expect_nothing().await;
}

#[tokio::test]
async fn kick_with_custom_reason() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#c", &mut [&mut alice, &mut bob, &mut carol]).await;
    let kick = ":alice!~alice@127.0.0.1 KICK #c carol :Speaking English";
    assert_eq!(
        alice.exchange("KICK #c carol :Speaking English").await,
        [kick]
    );
    assert_eq!(bob.sync().await, [kick]);
    assert_eq!(carol.sync().await, [kick]);
}

#[tokio::test]
async fn long_kick_reasons_are_truncated_to_kicklen() {
    let server = TestServer::start_with("[limits]\nkick_length = 5\n").await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    let kick = ":alice!~alice@127.0.0.1 KICK #c bob :12345";
    assert_eq!(alice.exchange("KICK #c bob :1234567890").await, [kick]);
    assert_eq!(bob.sync().await, [kick]);
}

#[tokio::test]
async fn kick_several_users_sends_one_kick_each() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#c", &mut [&mut alice, &mut bob, &mut carol]).await;
    assert_eq!(
        alice.exchange("KICK #c bob,carol :out").await,
        [
            ":alice!~alice@127.0.0.1 KICK #c bob :out",
            ":alice!~alice@127.0.0.1 KICK #c carol :out"
        ]
    );
}

#[tokio::test]
async fn kick_errors() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    assert_eq!(
        bob.exchange("KICK #c alice").await,
        [numeric("482", "bob", "#c :You're not channel operator")]
    );
    assert_eq!(
        alice.exchange("KICK #c dave").await,
        [numeric(
            "441",
            "alice",
            "dave #c :They aren't on that channel"
        )]
    );
    assert_eq!(
        dave.exchange("KICK #c bob").await,
        [numeric("442", "dave", "#c :You're not on that channel")]
    );
    assert_eq!(
        alice.exchange("KICK #nowhere bob").await,
        [numeric("403", "alice", "#nowhere :No such channel")]
    );
    assert_eq!(
        alice.exchange("KICK #c").await,
        [numeric("461", "alice", "KICK :Not enough parameters")]
    );
    // Nobody was kicked.
    alice.expect_nothing().await;
    bob.expect_nothing().await;
}

// ------------------------------------------- replies echoing client text
//
// Error numerics repeat the name the client gave. A name that cannot be a
// middle parameter (sent as a trailing one: empty, with a space, or
// starting with a colon) must still give a well-formed reply, and the
// connection must go on answering.

#[tokio::test]
async fn join_with_a_name_that_is_not_a_middle_parameter() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_wellformed(
        &alice.exchange("JOIN :#a b").await,
        "403",
        "alice",
        1,
        "No such channel",
    );
    let lines = alice.exchange("JOIN #ok,:bad").await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], ":alice!~alice@127.0.0.1 JOIN #ok");
    assert_wellformed(&lines[3..], "403", "alice", 1, "No such channel");
}

#[tokio::test]
async fn part_with_a_name_that_is_not_a_middle_parameter() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_wellformed(
        &alice.exchange("PART :#a b").await,
        "403",
        "alice",
        1,
        "No such channel",
    );
}

#[tokio::test]
async fn invite_with_a_name_that_is_not_a_middle_parameter() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let _bob = server.client("bob").await;
    assert_wellformed(
        &alice.exchange("INVITE bob :#a b").await,
        "403",
        "alice",
        1,
        "No such channel",
    );
}

#[tokio::test]
async fn kick_with_a_nick_that_is_not_a_middle_parameter() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    setup_channel("#c", &mut [&mut alice]).await;
    assert_wellformed(
        &alice.exchange("KICK #c :a b").await,
        "441",
        "alice",
        2,
        "They aren't on that channel",
    );
}

#[tokio::test]
async fn an_invitation_from_a_plain_member_does_not_lift_a_ban() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut troll = server.client("troll").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    alice.exchange("MODE #c +b troll").await;
    bob.sync().await;
    // bob is no operator: troll is told of the invitation, but the ban
    // still holds.
    assert_eq!(
        bob.exchange("INVITE troll #c").await,
        [numeric("341", "bob", "troll #c")]
    );
    troll
        .expect_line(":bob!~bob@127.0.0.1 INVITE troll #c")
        .await;
    assert_eq!(
        troll.exchange("JOIN #c").await,
        [numeric("474", "troll", "#c :Cannot join channel (+b)")]
    );
    assert_eq!(
        troll.exchange("INVITE").await,
        [numeric("337", "troll", ":End of /INVITE list")]
    );
    // alice's invitation does open the door, once.
    alice.exchange("INVITE troll #c").await;
    troll
        .expect_line(":alice!~alice@127.0.0.1 INVITE troll #c")
        .await;
    assert_eq!(
        troll.exchange("INVITE").await,
        [
            numeric("336", "troll", "#c"),
            numeric("337", "troll", ":End of /INVITE list")
        ]
    );
    troll.send("JOIN #c").await;
    troll.expect_line(":troll!~troll@127.0.0.1 JOIN #c").await;
    troll.exchange("PART #c").await;
    assert_eq!(
        troll.exchange("JOIN #c").await,
        [numeric("474", "troll", "#c :Cannot join channel (+b)")]
    );
}

#[tokio::test]
async fn kick_names_at_most_maxtargets_users() {
    let server = TestServer::start_with("[limits]\ntargets_per_message = 2\n").await;
    let mut op = server.client("op").await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let mut c = server.client("c").await;
    setup_channel("#k", &mut [&mut op, &mut a, &mut b, &mut c]).await;
    let lines = op.exchange("KICK #k a,b,c :out").await;
    assert_eq!(
        lines,
        [
            ":op!~op@127.0.0.1 KICK #k a :out",
            ":op!~op@127.0.0.1 KICK #k b :out",
            // Told, not silently left out.
            ":irc.test 407 op c :Too many targets",
        ]
    );
    // c stays.
    c.skip_until(|l| l.ends_with("KICK #k b :out")).await;
    c.expect_nothing().await;
}

#[tokio::test]
async fn kick_pairs_channels_with_users_in_order() {
    let server = TestServer::start().await;
    let mut op = server.client("op").await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    setup_channel("#x", &mut [&mut op, &mut a, &mut b]).await;
    setup_channel("#y", &mut [&mut op, &mut a, &mut b]).await;
    // RFC 2812: "KICK #x,#y a,b" kicks a from #x and b from #y.
    assert_eq!(
        op.exchange("KICK #x,#y a,b :bye").await,
        [
            ":op!~op@127.0.0.1 KICK #x a :bye",
            ":op!~op@127.0.0.1 KICK #y b :bye",
        ]
    );
    assert_eq!(
        a.sync().await,
        [
            ":op!~op@127.0.0.1 KICK #x a :bye",
            ":op!~op@127.0.0.1 KICK #y b :bye",
        ]
    );
    let names = op.exchange("NAMES #x").await;
    assert_names(&names[0], "op", "=", "#x", &["@op", "b"]);
    let names = op.exchange("NAMES #y").await;
    assert_names(&names[0], "op", "=", "#y", &["@op", "a"]);
    // Lists that do not pair are refused whole.
    assert_eq!(
        op.exchange("KICK #x,#y a").await,
        [numeric("461", "op", "KICK :Not enough parameters")]
    );
}
