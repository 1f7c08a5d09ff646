//! MODE: channel modes (flags, key, limit, op/voice, the ban, exception and
//! invite-exception lists) and user modes, with every refusal, and what IRC
//! operators may do in channels they do not run.

mod common;
use common::*;

/// The 324 line `nick` gets for `MODE channel`, after checking the 329 after it.
async fn channel_modes(c: &mut Client, channel: &str) -> String {
    let lines = c.exchange(&format!("MODE {channel}")).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_timestamped(&lines[1], &numeric("329", &c.nick, &format!("{channel} ")));
    lines[0].clone()
}

// -------------------------------------------------------- channel query

#[tokio::test]
async fn new_channels_are_plus_nt_with_a_creation_time() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice]).await;
    let lines = alice.exchange("MODE #c").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], numeric("324", "alice", "#c +nt"));
    assert_timestamped(&lines[1], &numeric("329", "alice", "#c "));
    // Outsiders may look too.
    assert_eq!(
        channel_modes(&mut dave, "#c").await,
        numeric("324", "dave", "#c +nt")
    );
    assert_eq!(
        dave.exchange("MODE #nowhere").await,
        [numeric("403", "dave", "#nowhere :No such channel")]
    );
}

#[tokio::test]
async fn the_key_is_shown_to_members_and_hidden_from_outsiders() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    alice.exchange("MODE #c +kl sesame 5").await;
    bob.sync().await;
    assert_eq!(
        channel_modes(&mut bob, "#c").await,
        numeric("324", "bob", "#c +ntkl sesame 5")
    );
    assert_eq!(
        channel_modes(&mut dave, "#c").await,
        numeric("324", "dave", "#c +ntkl * 5")
    );
}

// ------------------------------------------------------- op and voice

#[tokio::test]
async fn op_and_voice_changes_are_echoed_to_every_member() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#c", &mut [&mut alice, &mut bob, &mut carol]).await;
    for (command, echo) in [
        ("MODE #c +o bob", ":alice!~alice@127.0.0.1 MODE #c +o bob"),
        ("MODE #c -o bob", ":alice!~alice@127.0.0.1 MODE #c -o bob"),
        (
            "MODE #c +v carol",
            ":alice!~alice@127.0.0.1 MODE #c +v carol",
        ),
        (
            "MODE #c -v carol",
            ":alice!~alice@127.0.0.1 MODE #c -v carol",
        ),
        (
            "MODE #c +ov bob carol",
            ":alice!~alice@127.0.0.1 MODE #c +ov bob carol",
        ),
        // Nick parameters are matched case-insensitively and echoed as the
        // nick is spelled.
        (
            "MODE #c -v CAROL",
            ":alice!~alice@127.0.0.1 MODE #c -v carol",
        ),
    ] {
        assert_eq!(alice.exchange(command).await, [echo], "{command}");
        assert_eq!(bob.sync().await, [echo], "{command}");
        assert_eq!(carol.sync().await, [echo], "{command}");
    }
    let lines = carol.exchange("NAMES #c").await;
    assert_names(&lines[0], "carol", "=", "#c", &["@alice", "@bob", "carol"]);
    // Bob, now an op, can op others.
    assert_eq!(
        bob.exchange("MODE #c +v carol").await,
        [":bob!~bob@127.0.0.1 MODE #c +v carol"]
    );
    // A change that changes nothing is not echoed.
    alice.sync().await;
    carol.sync().await;
    alice.send("MODE #c +o bob").await;
    alice.expect_nothing().await;
    bob.expect_nothing().await;
}

#[tokio::test]
async fn op_and_voice_errors() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let _dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    assert_eq!(
        alice.exchange("MODE #c +o dave").await,
        [numeric(
            "441",
            "alice",
            "dave #c :They aren't on that channel"
        )]
    );
    assert_eq!(
        alice.exchange("MODE #c +v nobody").await,
        [numeric("401", "alice", "nobody :No such nick/channel")]
    );
    assert_eq!(
        bob.exchange("MODE #c +o bob").await,
        [numeric("482", "bob", "#c :You're not channel operator")]
    );
    // Modern: "If a type B or C mode does not have a parameter when being
    // set, the server MUST ignore that mode"; Parlor ignores it and says why.
    assert_eq!(
        alice.exchange("MODE #c +o").await,
        [numeric("461", "alice", "MODE :Not enough parameters")]
    );
    // Nothing changed.
    bob.expect_nothing().await;
    let lines = alice.exchange("NAMES #c").await;
    assert_names(&lines[0], "alice", "=", "#c", &["@alice", "bob"]);
}

#[tokio::test]
async fn non_ops_cannot_change_channel_modes() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut dave = server.client("dave").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    for command in [
        "MODE #c +m",
        "MODE #c -t",
        "MODE #c +k key",
        "MODE #c +l 3",
        "MODE #c +b dave",
        "MODE #c +imnt",
    ] {
        assert_eq!(
            bob.exchange(command).await,
            [numeric("482", "bob", "#c :You're not channel operator")],
            "{command}"
        );
        assert_eq!(
            dave.exchange(command).await,
            [numeric("482", "dave", "#c :You're not channel operator")],
            "{command}"
        );
    }
    alice.expect_nothing().await;
    assert_eq!(
        channel_modes(&mut alice, "#c").await,
        numeric("324", "alice", "#c +nt")
    );
    // Reading a list needs no privileges.
    assert_eq!(
        bob.exchange("MODE #c +b").await,
        [numeric("368", "bob", "#c :End of channel ban list")]
    );
}

// ---------------------------------------------------------------- lists

#[tokio::test]
async fn bans_are_normalized_listed_and_removed() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    for (command, echo) in [
        (
            "MODE #c +b bob",
            ":alice!~alice@127.0.0.1 MODE #c +b bob!*@*",
        ),
        (
            "MODE #c +b *@evil.example",
            ":alice!~alice@127.0.0.1 MODE #c +b *!*@evil.example",
        ),
        (
            "MODE #c +b troll!~t",
            ":alice!~alice@127.0.0.1 MODE #c +b troll!~t@*",
        ),
    ] {
        assert_eq!(alice.exchange(command).await, [echo], "{command}");
        assert_eq!(bob.sync().await, [echo], "{command}");
    }
    // Listed in the order they were set, by anyone.
    let lines = bob.exchange("MODE #c +b").await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_timestamped(
        &lines[0],
        &numeric("367", "bob", "#c bob!*@* alice!~alice@127.0.0.1 "),
    );
    assert_timestamped(
        &lines[1],
        &numeric("367", "bob", "#c *!*@evil.example alice!~alice@127.0.0.1 "),
    );
    assert_timestamped(
        &lines[2],
        &numeric("367", "bob", "#c troll!~t@* alice!~alice@127.0.0.1 "),
    );
    assert_eq!(
        lines[3],
        numeric("368", "bob", "#c :End of channel ban list")
    );
    // Removing uses the same normalization; a ban that is not there is
    // silently ignored, and so is one set twice.
    assert_eq!(
        alice.exchange("MODE #c -b bob").await,
        [":alice!~alice@127.0.0.1 MODE #c -b bob!*@*"]
    );
    alice.send("MODE #c -b never!set@anywhere").await;
    alice.expect_nothing().await;
    alice.send("MODE #c +b *!*@evil.example").await;
    alice.expect_nothing().await;
    let lines = alice.exchange("MODE #c b").await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with(&numeric("367", "alice", "#c *!*@evil.example ")),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&numeric("367", "alice", "#c troll!~t@* ")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn exception_and_invite_exception_lists() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    assert_eq!(
        alice.exchange("MODE #c +e").await,
        [numeric("349", "alice", "#c :End of channel exception list")]
    );
    assert_eq!(
        alice.exchange("MODE #c +I").await,
        [numeric("347", "alice", "#c :End of channel invite list")]
    );

    assert_eq!(
        alice.exchange("MODE #c +e bob").await,
        [":alice!~alice@127.0.0.1 MODE #c +e bob!*@*"]
    );
    assert_eq!(
        alice.exchange("MODE #c +I *@127.0.0.1").await,
        [":alice!~alice@127.0.0.1 MODE #c +I *!*@127.0.0.1"]
    );
    let lines = bob.exchange("MODE #c +e").await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    // Bob first hears the two changes.
    assert_eq!(lines[0], ":alice!~alice@127.0.0.1 MODE #c +e bob!*@*");
    assert_eq!(lines[1], ":alice!~alice@127.0.0.1 MODE #c +I *!*@127.0.0.1");
    assert_timestamped(
        &lines[2],
        &numeric("348", "bob", "#c bob!*@* alice!~alice@127.0.0.1 "),
    );
    assert_eq!(
        lines[3],
        numeric("349", "bob", "#c :End of channel exception list")
    );
    let lines = bob.exchange("MODE #c +I").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_timestamped(
        &lines[0],
        &numeric("346", "bob", "#c *!*@127.0.0.1 alice!~alice@127.0.0.1 "),
    );
    assert_eq!(
        lines[1],
        numeric("347", "bob", "#c :End of channel invite list")
    );

    // Several changes in one command share one echo.
    assert_eq!(
        alice.exchange("MODE #c -eI bob *@127.0.0.1").await,
        [":alice!~alice@127.0.0.1 MODE #c -eI bob!*@* *!*@127.0.0.1"]
    );
}

#[tokio::test]
async fn a_ban_exception_lets_the_user_join() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#c", &mut [&mut alice]).await;
    // Everyone from 127.0.0.1 is banned, but bob is excepted.
    assert_eq!(
        alice.exchange("MODE #c +be *!*@127.0.0.1 bob").await,
        [":alice!~alice@127.0.0.1 MODE #c +be *!*@127.0.0.1 bob!*@*"]
    );
    assert_eq!(
        bob.exchange("JOIN #c").await[0],
        ":bob!~bob@127.0.0.1 JOIN #c"
    );
    assert_eq!(
        carol.exchange("JOIN #c").await,
        [numeric("474", "carol", "#c :Cannot join channel (+b)")]
    );
}

#[tokio::test]
async fn an_invite_exception_lets_the_user_past_invite_only() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#c", &mut [&mut alice]).await;
    assert_eq!(
        alice.exchange("MODE #c +iI bob").await,
        [":alice!~alice@127.0.0.1 MODE #c +iI bob!*@*"]
    );
    assert_eq!(
        bob.exchange("JOIN #c").await[0],
        ":bob!~bob@127.0.0.1 JOIN #c"
    );
    assert_eq!(
        carol.exchange("JOIN #c").await,
        [numeric("473", "carol", "#c :Cannot join channel (+i)")]
    );
}

#[tokio::test]
async fn full_lists_give_478() {
    let server = TestServer::start_with("[limits]\nlist_entries = 2\n").await;
    let mut alice = server.client("alice").await;
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("MODE #c +bb one two").await;
    assert_eq!(
        alice.exchange("MODE #c +b three").await,
        [numeric("478", "alice", "#c b :Channel list is full")]
    );
    assert_eq!(alice.exchange("MODE #c +b").await.len(), 3);
}

#[tokio::test]
async fn maxlist_limits_each_list_as_advertised() {
    // ISUPPORT advertises MAXLIST=b:N,e:N,I:N: each list has its own limit
    // (Modern, MAXLIST: "MAXLIST=b:25,eI:50" gives separate limits).
    let server = TestServer::start_with("[limits]\nlist_entries = 2\n").await;
    let mut alice = server.connect().await;
    alice.send("NICK alice").await;
    alice.send("USER alice 0 * :Real alice").await;
    let isupport = alice
        .skip_until(|l| l.contains(" 005 ") && l.contains("MAXLIST="))
        .await;
    assert!(isupport.contains(" MAXLIST=b:2,e:2,I:2 "), "{isupport}");
    alice.skip_until(|l| l.contains(" 376 ")).await;
    alice.nick = "alice".to_owned();
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("MODE #c +bb one two").await;
    assert_eq!(
        alice.exchange("MODE #c +b three").await,
        [numeric("478", "alice", "#c b :Channel list is full")]
    );
    // The other lists are not affected by a full ban list.
    assert_eq!(
        alice.exchange("MODE #c +eI one two").await,
        [":alice!~alice@127.0.0.1 MODE #c +eI one!*@* two!*@*"]
    );
}

#[tokio::test]
async fn at_most_modes_parameterised_changes_per_command() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    setup_channel("#c", &mut [&mut alice]).await;
    // MODES=6: the seventh mask is dropped.
    assert_eq!(
        alice.exchange("MODE #c +bbbbbbb a b c d e f g").await,
        [":alice!~alice@127.0.0.1 MODE #c +bbbbbb a!*@* b!*@* c!*@* d!*@* e!*@* f!*@*"]
    );
}

// ---------------------------------------------------------- key, limit

#[tokio::test]
async fn key_is_set_and_unset() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    setup_channel("#c", &mut [&mut alice, &mut carol]).await;
    assert_eq!(
        alice.exchange("MODE #c +k sesame").await,
        [":alice!~alice@127.0.0.1 MODE #c +k sesame"]
    );
    assert_eq!(
        carol.sync().await,
        [":alice!~alice@127.0.0.1 MODE #c +k sesame"]
    );
    assert_eq!(
        bob.exchange("JOIN #c").await,
        [numeric("475", "bob", "#c :Cannot join channel (+k)")]
    );
    // Removing it echoes `*` for the key, with or without the old key given.
    assert_eq!(
        alice.exchange("MODE #c -k").await,
        [":alice!~alice@127.0.0.1 MODE #c -k *"]
    );
    assert_eq!(carol.sync().await, [":alice!~alice@127.0.0.1 MODE #c -k *"]);
    assert_eq!(
        bob.exchange("JOIN #c").await[0],
        ":bob!~bob@127.0.0.1 JOIN #c"
    );
    alice.sync().await;
    alice.exchange("MODE #c +k other").await;
    assert_eq!(
        alice.exchange("MODE #c -k other").await,
        [":alice!~alice@127.0.0.1 MODE #c -k *"]
    );
}

#[tokio::test]
async fn invalid_keys_give_696() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    setup_channel("#c", &mut [&mut alice]).await;
    assert_eq!(
        alice.exchange("MODE #c +k a,b").await,
        [numeric(
            "696",
            "alice",
            "#c k a,b :Invalid key: up to 23 characters, no spaces or commas"
        )]
    );
    let long = "k".repeat(24);
    assert_eq!(
        alice.exchange(&format!("MODE #c +k {long}")).await,
        [numeric(
            "696",
            "alice",
            &format!("#c k {long} :Invalid key: up to 23 characters, no spaces or commas")
        )]
    );
    assert_eq!(
        channel_modes(&mut alice, "#c").await,
        numeric("324", "alice", "#c +nt")
    );
}

#[tokio::test]
async fn limit_is_set_and_unset_and_bad_values_give_696() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    assert_eq!(
        alice.exchange("MODE #c +l 2").await,
        [":alice!~alice@127.0.0.1 MODE #c +l 2"]
    );
    assert_eq!(bob.sync().await, [":alice!~alice@127.0.0.1 MODE #c +l 2"]);
    for bad in ["abc", "0", "-3"] {
        assert_eq!(
            alice.exchange(&format!("MODE #c +l {bad}")).await,
            [numeric(
                "696",
                "alice",
                &format!("#c l {bad} :Invalid limit: give a positive number")
            )],
            "+l {bad}"
        );
    }
    assert_eq!(
        channel_modes(&mut alice, "#c").await,
        numeric("324", "alice", "#c +ntl 2")
    );
    // `-l` takes no parameter.
    assert_eq!(
        alice.exchange("MODE #c -l").await,
        [":alice!~alice@127.0.0.1 MODE #c -l"]
    );
    assert_eq!(bob.sync().await, [":alice!~alice@127.0.0.1 MODE #c -l"]);
}

// ---------------------------------------------------------------- flags

#[tokio::test]
async fn flag_modes_toggle_and_are_echoed() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    assert_eq!(
        alice.exchange("MODE #c -nt").await,
        [":alice!~alice@127.0.0.1 MODE #c -nt"]
    );
    assert_eq!(bob.sync().await, [":alice!~alice@127.0.0.1 MODE #c -nt"]);
    assert_eq!(
        channel_modes(&mut alice, "#c").await,
        numeric("324", "alice", "#c +")
    );
    for letter in ["i", "m", "n", "t", "s", "p"] {
        let on = format!(":alice!~alice@127.0.0.1 MODE #c +{letter}");
        let off = format!(":alice!~alice@127.0.0.1 MODE #c -{letter}");
        assert_eq!(
            alice.exchange(&format!("MODE #c +{letter}")).await,
            [on.as_str()]
        );
        assert_eq!(bob.sync().await, [on.as_str()]);
        assert_eq!(
            channel_modes(&mut alice, "#c").await,
            numeric("324", "alice", &format!("#c +{letter}"))
        );
        assert_eq!(
            alice.exchange(&format!("MODE #c -{letter}")).await,
            [off.as_str()]
        );
        assert_eq!(bob.sync().await, [off.as_str()]);
    }
    // Several flags at once: one echo line.
    assert_eq!(
        alice.exchange("MODE #c +imnt").await,
        [":alice!~alice@127.0.0.1 MODE #c +imnt"]
    );
    assert_eq!(bob.sync().await, [":alice!~alice@127.0.0.1 MODE #c +imnt"]);
    assert_eq!(
        channel_modes(&mut alice, "#c").await,
        numeric("324", "alice", "#c +imnt")
    );
    // Mixed signs; +i is already set and drops out of the echo.
    assert_eq!(
        alice.exchange("MODE #c +i-m+s").await,
        [":alice!~alice@127.0.0.1 MODE #c -m+s"]
    );
    assert_eq!(bob.sync().await, [":alice!~alice@127.0.0.1 MODE #c -m+s"]);
    // Mixed flags and parameters.
    assert_eq!(
        alice.exchange("MODE #c -s+lk 10 sesame").await,
        [":alice!~alice@127.0.0.1 MODE #c -s+lk 10 sesame"]
    );
    assert_eq!(
        channel_modes(&mut alice, "#c").await,
        numeric("324", "alice", "#c +intkl sesame 10")
    );
}

#[tokio::test]
async fn unknown_channel_modes_give_472() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    assert_eq!(
        alice.exchange("MODE #c +z").await,
        [numeric("472", "alice", "z :is unknown mode char to me")]
    );
    bob.expect_nothing().await;
    // The known modes around it still apply.
    assert_eq!(
        alice.exchange("MODE #c +mZ").await,
        [
            numeric("472", "alice", "Z :is unknown mode char to me"),
            ":alice!~alice@127.0.0.1 MODE #c +m".to_owned()
        ]
    );
    assert_eq!(bob.sync().await, [":alice!~alice@127.0.0.1 MODE #c +m"]);
}

// ----------------------------------------------------------- user modes

#[tokio::test]
async fn user_modes_query_set_and_echo() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("MODE alice").await,
        [numeric("221", "alice", "+")]
    );
    assert_eq!(
        alice.exchange("MODE alice +i").await,
        [":alice MODE alice +i"]
    );
    assert_eq!(
        alice.exchange("MODE alice +w").await,
        [":alice MODE alice +w"]
    );
    assert_eq!(
        alice.exchange("MODE alice").await,
        [numeric("221", "alice", "+iw")]
    );
    assert_eq!(
        alice.exchange("MODE alice -iw").await,
        [":alice MODE alice -iw"]
    );
    assert_eq!(
        alice.exchange("MODE ALICE +iw").await,
        [":alice MODE alice +iw"]
    );
    // Setting what is set changes nothing and says nothing.
    alice.send("MODE alice +i").await;
    alice.expect_nothing().await;
}

#[tokio::test]
async fn user_mode_errors() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    assert_eq!(
        alice.exchange("MODE alice +x").await,
        [numeric("501", "alice", ":Unknown MODE flag")]
    );
    // Known flags beside an unknown one still apply.
    assert_eq!(
        alice.exchange("MODE alice +xi").await,
        [
            numeric("501", "alice", ":Unknown MODE flag"),
            ":alice MODE alice +i".to_owned()
        ]
    );
    assert_eq!(
        alice.exchange("MODE bob").await,
        [numeric("502", "alice", ":Can't view mode for other users")]
    );
    assert_eq!(
        alice.exchange("MODE bob +i").await,
        [numeric(
            "502",
            "alice",
            ":Can't change mode for other users"
        )]
    );
    assert_eq!(
        alice.exchange("MODE nobody").await,
        [numeric("401", "alice", "nobody :No such nick/channel")]
    );
    assert_eq!(bob.exchange("MODE bob").await, [numeric("221", "bob", "+")]);
}

#[tokio::test]
async fn plus_o_cannot_be_self_set() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    alice.send("MODE alice +o").await;
    alice.expect_nothing().await;
    assert_eq!(
        alice.exchange("MODE alice").await,
        [numeric("221", "alice", "+")]
    );
    // Alongside another flag, only that one applies.
    assert_eq!(
        alice.exchange("MODE alice +oi").await,
        [":alice MODE alice +i"]
    );
    assert_eq!(
        alice.exchange("MODE alice").await,
        [numeric("221", "alice", "+i")]
    );
}

// ---------------------------------------------------------------- opers

#[tokio::test]
async fn opers_can_set_modes_and_kick_without_channel_op() {
    let server = TestServer::start_with(OPER_CONFIG).await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut oscar = server.client("oscar").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    assert_eq!(
        oscar.exchange("OPER oper wrong").await,
        [numeric("464", "oscar", ":Password incorrect")]
    );
    assert_eq!(
        oscar.exchange("OPER oper password").await,
        [
            numeric("381", "oscar", ":You are now an IRC operator"),
            ":oscar MODE oscar +o".to_owned()
        ]
    );
    assert_eq!(
        oscar.exchange("MODE oscar").await,
        [numeric("221", "oscar", "+o")]
    );

    // From outside the channel.
    oscar.exchange("MODE #c +m").await;
    assert_eq!(alice.sync().await, [":oscar!~oscar@127.0.0.1 MODE #c +m"]);
    assert_eq!(bob.sync().await, [":oscar!~oscar@127.0.0.1 MODE #c +m"]);
    oscar.exchange("KICK #c bob :oper says so").await;
    assert_eq!(
        alice.sync().await,
        [":oscar!~oscar@127.0.0.1 KICK #c bob :oper says so"]
    );
    assert_eq!(
        bob.sync().await,
        [":oscar!~oscar@127.0.0.1 KICK #c bob :oper says so"]
    );
    // Opers see the key from outside.
    alice.exchange("MODE #c +k sesame").await;
    assert_eq!(
        channel_modes(&mut oscar, "#c").await,
        numeric("324", "oscar", "#c +mntk sesame")
    );

    // Opers join past +i, +k, +l and +b.
    alice.exchange("MODE #c +ilb 1 oscar").await;
    let lines = oscar.exchange("JOIN #c").await;
    assert_eq!(lines[0], ":oscar!~oscar@127.0.0.1 JOIN #c");
    alice.sync().await;

    // As a member without channel op: op others, and kick.
    assert_eq!(
        oscar.exchange("MODE #c +v oscar").await,
        [":oscar!~oscar@127.0.0.1 MODE #c +v oscar"]
    );
    assert_eq!(
        alice.sync().await,
        [":oscar!~oscar@127.0.0.1 MODE #c +v oscar"]
    );
    assert_eq!(
        oscar.exchange("KICK #c alice").await,
        [":oscar!~oscar@127.0.0.1 KICK #c alice :oscar"]
    );
    assert_eq!(
        alice.sync().await,
        [":oscar!~oscar@127.0.0.1 KICK #c alice :oscar"]
    );

    // Dropping +o drops the powers.
    assert_eq!(
        oscar.exchange("MODE oscar -o").await,
        [":oscar MODE oscar -o"]
    );
    assert_eq!(
        oscar.exchange("MODE #c -m").await,
        [numeric("482", "oscar", "#c :You're not channel operator")]
    );
}

#[tokio::test]
async fn opers_outside_a_channel_see_their_own_changes_acknowledged() {
    // Modern, channel operations: "If a 'request' is granted, it will be
    // acknowledged by the server sending a message containing the same
    // information back to the client."
    let server = TestServer::start_with(OPER_CONFIG).await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut oscar = server.client("oscar").await;
    setup_channel("#c", &mut [&mut alice, &mut bob]).await;
    make_oper(&mut oscar).await;
    assert_eq!(
        oscar.exchange("MODE #c +m").await,
        [":oscar!~oscar@127.0.0.1 MODE #c +m"]
    );
    assert_eq!(
        oscar.exchange("KICK #c bob :oper says so").await,
        [":oscar!~oscar@127.0.0.1 KICK #c bob :oper says so"]
    );
    assert_eq!(
        oscar.exchange("TOPIC #c :set by an oper").await,
        [":oscar!~oscar@127.0.0.1 TOPIC #c :set by an oper"]
    );
}

// ------------------------------------------- replies echoing client text
//
// Error numerics repeat what the client gave. Text that cannot be a middle
// parameter (sent as a trailing one: empty, with a space, or starting with
// a colon) must still give a well-formed reply, and the connection must go
// on answering.

#[tokio::test]
async fn mode_on_a_target_that_is_not_a_middle_parameter() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_wellformed(
        &alice.exchange("MODE :#a b").await,
        "403",
        "alice",
        1,
        "No such channel",
    );
    assert_wellformed(
        &alice.exchange("MODE :a b").await,
        "401",
        "alice",
        1,
        "No such nick/channel",
    );
}

#[tokio::test]
async fn op_for_a_nick_that_is_not_a_middle_parameter() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    setup_channel("#c", &mut [&mut alice]).await;
    assert_wellformed(
        &alice.exchange("MODE #c +o :a b").await,
        "401",
        "alice",
        1,
        "No such nick/channel",
    );
    assert_wellformed(
        &alice.exchange("MODE #c +v :").await,
        "401",
        "alice",
        1,
        "No such nick/channel",
    );
}

#[tokio::test]
async fn unknown_mode_chars_that_are_not_middle_parameters() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    setup_channel("#c", &mut [&mut alice]).await;
    // The modestring arrives as one trailing parameter with a space in it.
    let lines = alice.exchange("MODE #c :+m z").await;
    assert!(
        lines.contains(&":alice!~alice@127.0.0.1 MODE #c +m".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&numeric("472", "alice", "z :is unknown mode char to me")),
        "{lines:?}"
    );
    for line in lines.iter().filter(|l| l.contains(" 472 ")) {
        assert_wellformed(
            std::slice::from_ref(line),
            "472",
            "alice",
            1,
            "is unknown mode char to me",
        );
    }
}

#[tokio::test]
async fn invalid_limit_or_key_starting_with_a_colon() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    setup_channel("#c", &mut [&mut alice]).await;
    assert_wellformed(
        &alice.exchange("MODE #c +l ::5").await,
        "696",
        "alice",
        3,
        "Invalid limit: give a positive number",
    );
    assert_wellformed(
        &alice.exchange("MODE #c +k ::x").await,
        "696",
        "alice",
        3,
        "Invalid key: up to 23 characters, no spaces or commas",
    );
}

#[tokio::test]
async fn an_empty_ban_mask_bans_nobody() {
    // An empty parameter is no mask. Parlor treats an empty trailing
    // parameter as missing elsewhere (see the dispatcher); here it must not
    // turn into `*!*@*`, which would ban everyone.
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut alice]).await;
    let lines = alice.exchange("MODE #c +b :").await;
    assert!(
        !lines.iter().any(|l| l.contains(" MODE #c +b")),
        "{lines:?}"
    );
    assert_eq!(
        bob.exchange("JOIN #c").await[0],
        ":bob!~bob@127.0.0.1 JOIN #c"
    );
}

#[tokio::test]
async fn overlong_masks_are_refused() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    setup_channel("#c", &mut [&mut alice]).await;
    let long = format!("{}!*@*", "n".repeat(200));
    assert_eq!(
        alice.exchange(&format!("MODE #c +b {long}")).await,
        [numeric(
            "696",
            "alice",
            "#c b * :Mask too long: at most 160 bytes"
        )]
    );
    assert_eq!(
        alice.exchange("MODE #c +b").await,
        [numeric("368", "alice", "#c :End of channel ban list")]
    );
}

#[tokio::test]
async fn each_list_is_sent_once_per_command() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    setup_channel("#c", &mut [&mut alice]).await;
    alice.exchange("MODE #c +b x").await;
    let lines = alice.exchange("MODE #c bbbbbbbbbb").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with(&numeric("367", "alice", "#c x!*@* alice!~alice@127.0.0.1 ")));
    assert_eq!(
        lines[1],
        numeric("368", "alice", "#c :End of channel ban list")
    );
}

#[tokio::test]
async fn a_secret_channels_modes_and_lists_are_hidden_from_outsiders() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut eve = server.client("eve").await;
    setup_channel("#sec", &mut [&mut alice]).await;
    alice.exchange("MODE #sec +sk key").await;
    for query in ["MODE #sec", "MODE #sec +b", "MODE #sec +e"] {
        assert_eq!(
            eve.exchange(query).await,
            [numeric("442", "eve", "#sec :You're not on that channel")],
            "{query}"
        );
    }
}
