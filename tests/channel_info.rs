//! What a channel tells about itself: TOPIC, NAMES and LIST, with every
//! refusal they can give.
//!
//! The server keeps channel members and channels in unordered maps, so where
//! several members (353) or several channels (322) appear in one reply the
//! tests compare them as sets; everything else is compared line for line.

mod common;
use common::*;

// --------------------------------------------------------------- TOPIC

#[tokio::test]
async fn topic_query_set_and_shown_on_join() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    assert_eq!(
        alice.exchange("TOPIC #c").await,
        [numeric("331", "alice", "#c :No topic is set")]
    );

    let change = ":alice!~alice@127.0.0.1 TOPIC #c :Welcome to the parlor";
    assert_eq!(
        alice.exchange("TOPIC #c :Welcome to the parlor").await,
        [change]
    );
    assert_eq!(bob.sync().await, [change]);

    let lines = bob.exchange("TOPIC #c").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], numeric("332", "bob", "#c :Welcome to the parlor"));
    // 333 names the setter by full mask; Modern writes `<nick>` but servers
    // commonly send the mask, and Parlor does.
    assert_timestamped(
        &lines[1],
        &numeric("333", "bob", "#c alice!~alice@127.0.0.1 "),
    );

    let lines = carol.exchange("JOIN #c").await;
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[0], ":carol!~carol@127.0.0.1 JOIN #c");
    assert_eq!(
        lines[1],
        numeric("332", "carol", "#c :Welcome to the parlor")
    );
    assert_timestamped(
        &lines[2],
        &numeric("333", "carol", "#c alice!~alice@127.0.0.1 "),
    );
    assert_names(&lines[3], "carol", "=", "#c", &["@alice", "bob", "carol"]);
    assert_eq!(lines[4], end_of_names("carol", "#c"));
}

#[tokio::test]
async fn protected_topic_needs_op_and_minus_t_lets_anyone_set_it() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    // New channels are +t.
    assert_eq!(
        bob.exchange("TOPIC #c :bob was here").await,
        [numeric("482", "bob", "#c :You're not channel operator")]
    );
    alice.expect_nothing().await;
    alice.exchange("MODE #c -t").await;
    bob.sync().await;
    let change = ":bob!~bob@127.0.0.1 TOPIC #c :bob was here";
    assert_eq!(bob.exchange("TOPIC #c :bob was here").await, [change]);
    assert_eq!(alice.sync().await, [change]);
}

#[tokio::test]
async fn empty_topic_clears_it() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    alice.exchange("TOPIC #c :something").await;
    bob.sync().await;
    assert_eq!(
        alice.exchange("TOPIC #c :").await,
        [":alice!~alice@127.0.0.1 TOPIC #c :"]
    );
    assert_eq!(bob.sync().await, [":alice!~alice@127.0.0.1 TOPIC #c :"]);
    assert_eq!(
        bob.exchange("TOPIC #c").await,
        [numeric("331", "bob", "#c :No topic is set")]
    );
}

#[tokio::test]
async fn long_topics_are_truncated_to_topiclen() {
    let server = TestServer::start_with("[limits]\ntopic_length = 10\n").await;
    let mut alice = server.client("alice").await;
    setup_channel("#c", &mut [&mut alice]).await;
    assert_eq!(
        alice.exchange("TOPIC #c :0123456789abcdef").await,
        [":alice!~alice@127.0.0.1 TOPIC #c :0123456789"]
    );
    assert_eq!(
        alice.exchange("TOPIC #c").await[0],
        numeric("332", "alice", "#c :0123456789")
    );
}

#[tokio::test]
async fn topic_errors() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("MODE #c -t").await;
    assert_eq!(
        dave.exchange("TOPIC #c :outsider topic").await,
        [numeric("442", "dave", "#c :You're not on that channel")]
    );
    assert_eq!(
        dave.exchange("TOPIC #nowhere").await,
        [numeric("403", "dave", "#nowhere :No such channel")]
    );
    assert_eq!(
        dave.exchange("TOPIC").await,
        [numeric("461", "dave", "TOPIC :Not enough parameters")]
    );
    // An outsider may read the topic of a public channel (Modern leaves 442
    // here optional), but not of a secret one.
    assert_eq!(
        dave.exchange("TOPIC #c").await,
        [numeric("331", "dave", "#c :No topic is set")]
    );
    alice.exchange("MODE #c +s").await;
    assert_eq!(
        dave.exchange("TOPIC #c").await,
        [numeric("442", "dave", "#c :You're not on that channel")]
    );
    alice.expect_nothing().await;
}

// --------------------------------------------------------------- NAMES

#[tokio::test]
async fn names_lists_members_with_prefixes() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice, &mut bob, &mut carol]).await;
    alice.exchange("MODE #c +v bob").await;
    let lines = dave.exchange("NAMES #c").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_names(&lines[0], "dave", "=", "#c", &["@alice", "+bob", "carol"]);
    assert_eq!(lines[1], end_of_names("dave", "#c"));
    // Unknown channels and no parameter give only the end.
    assert_eq!(
        dave.exchange("NAMES #nowhere").await,
        [end_of_names("dave", "#nowhere")]
    );
    assert_eq!(dave.exchange("NAMES").await, [end_of_names("dave", "*")]);
}

#[tokio::test]
async fn names_of_a_secret_channel_is_empty_for_outsiders() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut dave = server.client("dave").await;
    setup_channel("#hidden", &mut [&mut alice]).await;
    alice.exchange("MODE #hidden +s").await;
    assert_eq!(
        dave.exchange("NAMES #hidden").await,
        [end_of_names("dave", "#hidden")]
    );
    // Members see it, marked secret with `@`.
    assert_eq!(
        alice.exchange("NAMES #hidden").await,
        [
            numeric("353", "alice", "@ #hidden :@alice"),
            end_of_names("alice", "#hidden")
        ]
    );
}

#[tokio::test]
async fn names_of_a_private_channel_is_marked_with_a_star() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut dave = server.client("dave").await;
    setup_channel("#p", &mut [&mut alice]).await;
    alice.exchange("MODE #p +p").await;
    assert_eq!(
        alice.exchange("NAMES #p").await,
        [
            numeric("353", "alice", "* #p :@alice"),
            end_of_names("alice", "#p")
        ]
    );
    assert_eq!(
        dave.exchange("NAMES #p").await,
        [end_of_names("dave", "#p")]
    );
}

#[tokio::test]
async fn invisible_users_are_hidden_from_outsiders_only() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    bob.exchange("MODE bob +i").await;
    assert_eq!(
        dave.exchange("NAMES #c").await,
        [
            numeric("353", "dave", "= #c :@alice"),
            end_of_names("dave", "#c")
        ]
    );
    let lines = alice.exchange("NAMES #c").await;
    assert_names(&lines[0], "alice", "=", "#c", &["@alice", "bob"]);
}

#[tokio::test]
async fn multi_prefix_and_userhost_in_names_change_353() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    alice.exchange("MODE #c +v alice").await;
    bob.sync().await;
    let lines = bob.exchange("NAMES #c").await;
    assert_names(&lines[0], "bob", "=", "#c", &["@alice", "bob"]);

    assert_eq!(
        bob.exchange("CAP REQ :multi-prefix").await,
        [format!(":{SERVER} CAP bob ACK :multi-prefix")]
    );
    let lines = bob.exchange("NAMES #c").await;
    assert_names(&lines[0], "bob", "=", "#c", &["@+alice", "bob"]);

    assert_eq!(
        bob.exchange("CAP REQ :userhost-in-names").await,
        [format!(":{SERVER} CAP bob ACK :userhost-in-names")]
    );
    let lines = bob.exchange("NAMES #c").await;
    assert_names(
        &lines[0],
        "bob",
        "=",
        "#c",
        &["@+alice!~alice@127.0.0.1", "bob!~bob@127.0.0.1"],
    );

    bob.exchange("CAP REQ :-multi-prefix").await;
    let lines = bob.exchange("NAMES #c").await;
    assert_names(
        &lines[0],
        "bob",
        "=",
        "#c",
        &["@alice!~alice@127.0.0.1", "bob!~bob@127.0.0.1"],
    );
    // Alice, without the capabilities, still sees plain nicks.
    let lines = alice.exchange("NAMES #c").await;
    assert_names(&lines[0], "alice", "=", "#c", &["@alice", "bob"]);
}

#[tokio::test]
async fn long_names_replies_are_split() {
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for i in 0..40 {
        let mut c = server.client(&format!("member{i:02}_with_long_nick")).await;
        c.exchange("JOIN #big").await;
        clients.push(c);
    }
    let mut dave = server.client("dave").await;
    let lines = dave.exchange("NAMES #big").await;
    assert!(
        lines.len() > 2,
        "40 long nicks need more than one 353: {lines:?}"
    );
    let mut seen = Vec::new();
    for line in &lines[..lines.len() - 1] {
        assert!(line.len() + 2 <= 512, "line too long: {line}");
        let rest = line
            .strip_prefix(&numeric("353", "dave", "= #big :"))
            .expect("353");
        seen.extend(
            rest.split(' ')
                .map(|n| n.trim_start_matches('@').to_owned()),
        );
    }
    assert_eq!(lines[lines.len() - 1], end_of_names("dave", "#big"));
    seen.sort();
    let want: Vec<String> = (0..40)
        .map(|i| format!("member{i:02}_with_long_nick"))
        .collect();
    assert_eq!(seen, want);
}

// ---------------------------------------------------------------- LIST

/// #apple (2 users, with a topic), #avocado, #banana, and a secret
/// #hidden; dave is on none of them.
async fn list_fixture(server: &TestServer) -> (Client, Client, Client) {
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let dave = server.client("dave").await;
    setup_channel("#apple", &mut [&mut alice, &mut bob]).await;
    alice.exchange("TOPIC #apple :Fruit talk").await;
    setup_channel("#avocado", &mut [&mut alice]).await;
    setup_channel("#banana", &mut [&mut bob]).await;
    setup_channel("#hidden", &mut [&mut alice]).await;
    alice.exchange("MODE #hidden +s").await;
    bob.sync().await;
    (alice, bob, dave)
}

#[tokio::test]
async fn list_shows_visible_channels_with_topics() {
    let server = TestServer::start().await;
    let (mut alice, _bob, mut dave) = list_fixture(&server).await;
    assert_eq!(
        list_entries(&dave.exchange("LIST").await, "dave"),
        [
            numeric("322", "dave", "#apple 2 :Fruit talk"),
            numeric("322", "dave", "#avocado 1 :"),
            numeric("322", "dave", "#banana 1 :"),
        ]
    );
    // A member sees the secret channel too.
    assert_eq!(
        list_entries(&alice.exchange("LIST").await, "alice"),
        [
            numeric("322", "alice", "#apple 2 :Fruit talk"),
            numeric("322", "alice", "#avocado 1 :"),
            numeric("322", "alice", "#banana 1 :"),
            numeric("322", "alice", "#hidden 1 :"),
        ]
    );
}

#[tokio::test]
async fn list_filters_by_mask_and_user_count() {
    let server = TestServer::start().await;
    let (_alice, _bob, mut dave) = list_fixture(&server).await;
    assert_eq!(
        list_entries(&dave.exchange("LIST #a*").await, "dave"),
        [
            numeric("322", "dave", "#apple 2 :Fruit talk"),
            numeric("322", "dave", "#avocado 1 :")
        ]
    );
    assert_eq!(
        list_entries(&dave.exchange("LIST #banana").await, "dave"),
        [numeric("322", "dave", "#banana 1 :")]
    );
    assert_eq!(
        list_entries(&dave.exchange("LIST >1").await, "dave"),
        [numeric("322", "dave", "#apple 2 :Fruit talk")]
    );
    assert_eq!(
        list_entries(&dave.exchange("LIST <2").await, "dave"),
        [
            numeric("322", "dave", "#avocado 1 :"),
            numeric("322", "dave", "#banana 1 :")
        ]
    );
    assert_eq!(
        list_entries(&dave.exchange("LIST !#a*").await, "dave"),
        [numeric("322", "dave", "#banana 1 :")]
    );
    // A secret channel stays hidden even when named.
    assert!(list_entries(&dave.exchange("LIST #hidden").await, "dave").is_empty());
}

#[tokio::test]
async fn list_takes_conditions_as_a_second_parameter() {
    // Modern, LIST: "Parameters: [<channel>{,<channel>}]
    // [<elistcond>{,<elistcond>}]" — "The second possible parameter to this
    // command is a list of conditions as defined in the ELIST RPL_ISUPPORT
    // parameter", and "the server filters the returned list of channels
    // with the given conditions".
    let server = TestServer::start().await;
    let (_alice, _bob, mut dave) = list_fixture(&server).await;
    assert_eq!(
        list_entries(&dave.exchange("LIST #a* >1").await, "dave"),
        [numeric("322", "dave", "#apple 2 :Fruit talk")]
    );
    assert_eq!(
        list_entries(&dave.exchange("LIST #apple,#banana <2").await, "dave"),
        [numeric("322", "dave", "#banana 1 :")]
    );
}

#[tokio::test]
async fn topic_with_a_name_that_is_not_a_middle_parameter() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_wellformed(
        &alice.exchange("TOPIC :#a b").await,
        "403",
        "alice",
        1,
        "No such channel",
    );
}

#[tokio::test]
async fn names_with_a_name_that_is_not_a_middle_parameter() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_wellformed(
        &alice.exchange("NAMES :#a b").await,
        "366",
        "alice",
        1,
        "End of /NAMES list",
    );
}

#[tokio::test]
async fn an_unreadable_list_condition_is_left_out_not_the_others() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    setup_channel("#apple", &mut [&mut alice]).await;
    setup_channel("#pear", &mut [&mut alice]).await;
    let lines = alice.exchange("LIST >abc,#a*").await;
    assert_eq!(
        lines,
        [
            numeric("321", "alice", "Channel :Users  Name"),
            numeric("322", "alice", "#apple 1 :"),
            numeric("323", "alice", ":End of /LIST"),
        ]
    );
}
