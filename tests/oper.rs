//! Server operators: OPER, KILL, WALLOPS, and operator overrides in
//! channels.

mod common;
use common::*;

/// A second `[[oper]]` block, beside the shared `oper` (password
/// `password`): `second` with password `hunter2` (hash made with
/// `parlor mkpasswd`).
const SECOND_OPER_CONFIG: &str = r#"
[[oper]]
name = "second"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$CNZPfsQZwTUfxZcI4qoytQ$VeYKbYfEt75ERPkE6XeSlukdrvj0TawRDbkra0VjKsw"
"#;

/// A server with both operator blocks, `oper` and `second`.
async fn two_oper_server() -> TestServer {
    TestServer::start_with(&format!("{OPER_CONFIG}{SECOND_OPER_CONFIG}")).await
}

fn not_oper(nick: &str) -> String {
    numeric(
        "481",
        nick,
        ":Permission Denied- You're not an IRC operator",
    )
}

// ---------------------------------------------------------------- OPER

#[tokio::test]
async fn oper_with_the_right_password_makes_an_operator() {
    let server = two_oper_server().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    assert_eq!(
        alice.exchange("MODE alice").await,
        [numeric("221", "alice", "+")]
    );

    make_oper(&mut alice).await;
    assert_eq!(
        alice.exchange("MODE alice").await,
        [numeric("221", "alice", "+o")]
    );
    let whois = bob.exchange("WHOIS alice").await;
    assert!(
        whois.contains(&numeric("313", "bob", "alice :is an IRC operator")),
        "{whois:?}"
    );
    let lusers = bob.exchange("LUSERS").await;
    assert!(
        lusers.contains(&numeric("252", "bob", "1 :operator(s) online")),
        "{lusers:?}"
    );

    // Again: still an operator, no second MODE.
    assert_eq!(
        alice.exchange("OPER oper password").await,
        [numeric("381", "alice", ":You are now an IRC operator")]
    );
    // A second block works for its own password.
    assert_eq!(
        bob.exchange("OPER second hunter2").await,
        [
            numeric("381", "bob", ":You are now an IRC operator"),
            ":bob MODE bob +o".to_owned(),
        ]
    );
    let lusers = bob.exchange("LUSERS").await;
    assert!(
        lusers.contains(&numeric("252", "bob", "2 :operator(s) online")),
        "{lusers:?}"
    );

    // Operator status can be dropped with MODE -o, not regained with +o.
    assert_eq!(
        alice.exchange("MODE alice -o").await,
        [":alice MODE alice -o"]
    );
    assert!(alice.exchange("MODE alice +o").await.is_empty());
    assert_eq!(
        alice.exchange("MODE alice").await,
        [numeric("221", "alice", "+")]
    );
}

#[tokio::test]
async fn oper_failures_all_get_464_and_do_not_say_what_was_wrong() {
    let server = two_oper_server().await;
    let mut alice = server.client("alice").await;
    let mismatch = [numeric("464", "alice", ":Password incorrect")];
    // Wrong password, unknown name, and one block's password with the
    // other's name: the same reply.
    for attempt in [
        "OPER oper wrong",
        "OPER nobody password",
        "OPER second password",
    ] {
        assert_eq!(alice.exchange(attempt).await, mismatch, "{attempt}");
    }
    // Names are case-sensitive; tried on a fresh connection, since each
    // connection has three attempts.
    let mut bob = server.client("bob").await;
    assert_eq!(
        bob.exchange("OPER OPER password").await,
        [numeric("464", "bob", ":Password incorrect")]
    );
    assert_eq!(
        alice.exchange("MODE alice").await,
        [numeric("221", "alice", "+")]
    );
    let whois = alice.exchange("WHOIS alice").await;
    assert!(!whois.iter().any(|l| l.contains(" 313 ")), "{whois:?}");

    assert_eq!(
        alice.exchange("OPER oper").await,
        [numeric("461", "alice", "OPER :Not enough parameters")]
    );
    assert_eq!(
        alice.exchange("OPER").await,
        [numeric("461", "alice", "OPER :Not enough parameters")]
    );
    // bob, with attempts left, can still become an operator.
    make_oper(&mut bob).await;
}

// ---------------------------------------------------------------- KILL

#[tokio::test]
async fn kill_needs_operator_privileges() {
    let server = two_oper_server().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    assert_eq!(
        alice.exchange("KILL bob :go away").await,
        [not_oper("alice")]
    );
    // bob is untouched.
    bob.expect_nothing().await;
    assert_eq!(
        alice.exchange("ISON bob").await,
        [numeric("303", "alice", ":bob")]
    );
}

#[tokio::test]
async fn kill_errors() {
    let server = two_oper_server().await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    let _bob = server.client("bob").await;
    assert_eq!(
        oscar.exchange("KILL nobody :reason").await,
        [numeric("401", "oscar", "nobody :No such nick/channel")]
    );
    assert_eq!(
        oscar.exchange("KILL").await,
        [numeric("461", "oscar", "KILL :Not enough parameters")]
    );
    // Modern IRC: `Parameters: <nickname> <comment>`; the comment is not
    // optional.
    assert_eq!(
        oscar.exchange("KILL bob").await,
        [numeric("461", "oscar", "KILL :Not enough parameters")]
    );
}

#[tokio::test]
async fn kill_disconnects_the_victim_and_tells_its_channels() {
    let server = two_oper_server().await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    join(&mut bob, "#chan").await;
    join(&mut carol, "#chan").await;
    bob.sync().await;

    // oscar shares no channel with bob, so sees nothing of it.
    assert!(oscar.exchange("KILL BOB :spamming").await.is_empty());
    // The victim gets the KILL (from the operator), then ERROR, then the
    // connection closes. (Modern IRC says the victim also "receives a
    // QUIT message"; the server does not send one, and clients learn all
    // they need from KILL and ERROR.)
    assert_eq!(
        bob.read_to_end().await,
        [
            ":oscar!~oscar@127.0.0.1 KILL bob :spamming",
            "ERROR :Closing link: 127.0.0.1 (Killed (oscar (spamming)))",
        ]
    );
    // Its channels see a QUIT with the usual "Killed (killer (reason))".
    assert_eq!(
        carol.sync().await,
        [":bob!~bob@127.0.0.1 QUIT :Killed (oscar (spamming))"]
    );
    assert_eq!(
        oscar.exchange("WHOIS bob").await,
        [
            numeric("401", "oscar", "bob :No such nick/channel"),
            numeric("318", "oscar", "bob :End of /WHOIS list"),
        ]
    );
    // The nick is free again, and WHOWAS remembers it.
    let whowas = oscar.exchange("WHOWAS bob").await;
    assert_eq!(
        whowas[0],
        numeric("314", "oscar", "bob ~bob 127.0.0.1 * :Real bob")
    );
    let _bob = server.client("bob").await;
}

#[tokio::test]
async fn an_operator_can_kill_itself() {
    let server = two_oper_server().await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    oscar.send("KILL oscar :oops").await;
    assert_eq!(
        oscar.read_to_end().await,
        [
            ":oscar!~oscar@127.0.0.1 KILL oscar :oops",
            "ERROR :Closing link: 127.0.0.1 (Killed (oscar (oops)))",
        ]
    );
}

// ---------------------------------------------------------------- WALLOPS

#[tokio::test]
async fn wallops_needs_operator_privileges() {
    let server = two_oper_server().await;
    let mut alice = server.client("alice").await;
    alice.exchange("MODE alice +w").await;
    assert_eq!(alice.exchange("WALLOPS :hello").await, [not_oper("alice")]);
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    assert_eq!(
        oscar.exchange("WALLOPS").await,
        [numeric("461", "oscar", "WALLOPS :Not enough parameters")]
    );
}

#[tokio::test]
async fn wallops_reaches_only_users_with_mode_w() {
    let server = two_oper_server().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    assert_eq!(
        alice.exchange("MODE alice +w").await,
        [":alice MODE alice +w"]
    );
    carol.exchange("MODE carol +w").await;
    carol.exchange("MODE carol -w").await;

    let wallops = ":oscar!~oscar@127.0.0.1 WALLOPS :Server restart in 5 minutes";
    // oscar has no +w: not even an echo.
    assert!(oscar
        .exchange("WALLOPS :Server restart in 5 minutes")
        .await
        .is_empty());
    assert_eq!(alice.sync().await, [wallops]);
    bob.expect_nothing().await;
    carol.expect_nothing().await;

    // With +w, the sender gets it too.
    oscar.exchange("MODE oscar +w").await;
    assert_eq!(
        oscar.exchange("WALLOPS :Server restart in 5 minutes").await,
        [wallops]
    );
    assert_eq!(alice.sync().await, [wallops]);
}

// ---------------------------------------------------------------- overrides

#[tokio::test]
async fn operators_join_past_invite_only_key_limit_and_ban() {
    let server = two_oper_server().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    for channel in ["#invite", "#key", "#limit", "#ban"] {
        join(&mut alice, channel).await;
    }
    alice.exchange("MODE #invite +i").await;
    alice.exchange("MODE #key +k sesame").await;
    alice.exchange("MODE #limit +l 1").await;
    alice.exchange("MODE #ban +b *!*@127.0.0.1").await;

    // A normal user is refused...
    for (channel, code, mode) in [
        ("#invite", "473", "i"),
        ("#key", "475", "k"),
        ("#limit", "471", "l"),
        ("#ban", "474", "b"),
    ] {
        assert_eq!(
            bob.exchange(&format!("JOIN {channel}")).await,
            [numeric(
                code,
                "bob",
                &format!("{channel} :Cannot join channel (+{mode})")
            )]
        );
    }
    // ...an operator is not.
    for channel in ["#invite", "#key", "#limit", "#ban"] {
        join(&mut oscar, channel).await;
    }
    let joins: Vec<String> = alice.sync().await;
    assert_eq!(
        joins,
        [
            ":oscar!~oscar@127.0.0.1 JOIN #invite",
            ":oscar!~oscar@127.0.0.1 JOIN #key",
            ":oscar!~oscar@127.0.0.1 JOIN #limit",
            ":oscar!~oscar@127.0.0.1 JOIN #ban",
        ]
    );
}

#[tokio::test]
async fn operators_set_topics_and_modes_without_channel_op() {
    let server = two_oper_server().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    join(&mut alice, "#chan").await; // +nt by default
    join(&mut bob, "#chan").await;
    join(&mut oscar, "#chan").await;
    alice.sync().await;
    bob.sync().await;

    // bob, a plain member, may not set the topic of a +t channel.
    assert_eq!(
        bob.exchange("TOPIC #chan :bob's topic").await,
        [numeric("482", "bob", "#chan :You're not channel operator")]
    );
    // oscar, a plain member but an operator, may.
    let topic = ":oscar!~oscar@127.0.0.1 TOPIC #chan :Oper topic";
    assert_eq!(oscar.exchange("TOPIC #chan :Oper topic").await, [topic]);
    assert_eq!(alice.sync().await, [topic]);
    assert_eq!(bob.sync().await, [topic]);

    // Modes too.
    assert_eq!(
        bob.exchange("MODE #chan +m").await,
        [numeric("482", "bob", "#chan :You're not channel operator")]
    );
    let mode = ":oscar!~oscar@127.0.0.1 MODE #chan +m";
    assert_eq!(oscar.exchange("MODE #chan +m").await, [mode]);
    assert_eq!(alice.sync().await, [mode]);
    assert_eq!(bob.sync().await, [mode]);

    // And kicks.
    let kick = ":oscar!~oscar@127.0.0.1 KICK #chan bob :behave";
    assert_eq!(oscar.exchange("KICK #chan bob :behave").await, [kick]);
    assert_eq!(alice.sync().await, [kick]);
    assert_eq!(bob.sync().await, [kick]);
}

#[tokio::test]
async fn three_attempts_per_connection_then_even_the_right_password_is_refused() {
    let server = two_oper_server().await;
    let mut alice = server.client("alice").await;
    for _ in 0..3 {
        alice.exchange("OPER oper wrong").await;
    }
    assert_eq!(
        alice.exchange("OPER oper password").await,
        [numeric(
            "464",
            "alice",
            ":Password incorrect (too many attempts on this connection)"
        )]
    );
    // Another connection starts afresh.
    let mut again = server.client("again").await;
    make_oper(&mut again).await;
}

#[tokio::test]
async fn without_oper_blocks_oper_is_refused_without_checking() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("OPER admin secret").await,
        [numeric("491", "alice", ":No O-lines for your host")]
    );
}
