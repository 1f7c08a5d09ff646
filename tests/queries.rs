//! Looking people up: WHO (with WHOX), WHOIS, USERHOST and ISON (WHOWAS
//! has `whowas.rs`).

mod common;
use common::*;

/// Lines sorted, for replies whose order the server does not define (the
/// members of a channel, the users matching a mask).
fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// Splits a WHO reply into its (unordered) reply lines and the final 315.
fn who_reply(mut lines: Vec<String>) -> (Vec<String>, String) {
    let end = lines.pop().expect("WHO always ends with 315");
    (sorted(lines), end)
}

fn who_line(viewer: &str, channel: &str, nick: &str, flags: &str) -> String {
    numeric(
        "352",
        viewer,
        &format!("{channel} ~{nick} 127.0.0.1 {SERVER} {nick} {flags} :0 Real {nick}"),
    )
}

fn end_of_who(viewer: &str, mask: &str) -> String {
    numeric("315", viewer, &format!("{mask} :End of WHO list"))
}

// ---------------------------------------------------------------- WHO

#[tokio::test]
async fn who_channel_lists_every_member_with_flags_and_prefixes() {
    let server = TestServer::start_with(OPER_CONFIG).await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    join(&mut alice, "#chan").await;
    join(&mut bob, "#chan").await;
    join(&mut carol, "#chan").await;
    join(&mut oscar, "#chan").await;
    alice.exchange("MODE #chan +v carol").await;
    bob.exchange("AWAY :lunch").await;
    for c in [&mut bob, &mut carol, &mut oscar] {
        c.sync().await;
    }

    // H here, G gone; * for an IRC operator; then the channel prefix.
    let (replies, end) = who_reply(alice.exchange("WHO #chan").await);
    assert_eq!(
        replies,
        sorted(vec![
            who_line("alice", "#chan", "alice", "H@"),
            who_line("alice", "#chan", "bob", "G"),
            who_line("alice", "#chan", "carol", "H+"),
            who_line("alice", "#chan", "oscar", "H*"),
        ])
    );
    assert_eq!(end, end_of_who("alice", "#chan"));

    // The 315 echoes the mask as sent; 352 names the channel as created.
    let (replies, end) = who_reply(carol.exchange("WHO #CHAN").await);
    assert_eq!(replies.len(), 4, "{replies:?}");
    assert!(replies.contains(&who_line("carol", "#chan", "carol", "H+")));
    assert_eq!(end, end_of_who("carol", "#CHAN"));

    // An oper who is also chanop and away: G, then *, then @.
    alice.exchange("MODE #chan +o oscar").await;
    oscar.exchange("AWAY :busy").await;
    let (replies, _) = who_reply(bob.exchange("WHO #chan").await);
    assert!(
        replies.contains(&who_line("bob", "#chan", "oscar", "G*@")),
        "{replies:?}"
    );
}

#[tokio::test]
async fn who_for_a_missing_channel_is_an_empty_list() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("WHO #nowhere").await,
        [end_of_who("alice", "#nowhere")]
    );
}

#[tokio::test]
async fn who_nick_returns_that_user() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;

    // No common channel: the channel field is `*`.
    assert_eq!(
        alice.exchange("WHO bob").await,
        [
            who_line("alice", "*", "bob", "H"),
            end_of_who("alice", "bob")
        ]
    );
    // Nicks are matched case-insensitively; the reply has the real nick.
    assert_eq!(
        alice.exchange("WHO BOB").await,
        [
            who_line("alice", "*", "bob", "H"),
            end_of_who("alice", "BOB")
        ]
    );

    // With a common channel, that channel (with bob's prefix there) is shown.
    join(&mut bob, "#room").await;
    join(&mut alice, "#room").await;
    bob.sync().await;
    assert_eq!(
        alice.exchange("WHO bob").await,
        [
            who_line("alice", "#room", "bob", "H@"),
            end_of_who("alice", "bob")
        ]
    );
    // carol shares nothing with bob.
    assert_eq!(
        carol.exchange("WHO bob").await,
        [
            who_line("carol", "*", "bob", "H"),
            end_of_who("carol", "bob")
        ]
    );
    assert_eq!(
        carol.exchange("WHO nobody").await,
        [end_of_who("carol", "nobody")]
    );
}

#[tokio::test]
async fn who_mask_matches_with_wildcards() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let _albert = server.client("albert").await;
    let _bob = server.client("bob").await;

    let (replies, end) = who_reply(alice.exchange("WHO al*").await);
    assert_eq!(
        replies,
        sorted(vec![
            who_line("alice", "*", "albert", "H"),
            who_line("alice", "*", "alice", "H"),
        ])
    );
    assert_eq!(end, end_of_who("alice", "al*"));

    // Case-insensitive, and `?` is one character.
    let (replies, _) = who_reply(alice.exchange("WHO AL?CE").await);
    assert_eq!(replies, [who_line("alice", "*", "alice", "H")]);

    // `*` (and no mask at all, and `0`) lists every visible user.
    for (command, mask) in [("WHO *", "*"), ("WHO", "*"), ("WHO 0", "0")] {
        let (replies, end) = who_reply(alice.exchange(command).await);
        assert_eq!(replies.len(), 3, "{command}: {replies:?}");
        assert_eq!(end, end_of_who("alice", mask));
    }

    // The server also matches the other fields (the spec allows it):
    // the host, and the realname.
    let (replies, _) = who_reply(alice.exchange("WHO 127.0.0.*").await);
    assert_eq!(replies.len(), 3, "{replies:?}");
    let (replies, _) = who_reply(alice.exchange("WHO Real?bob").await);
    assert_eq!(replies, [who_line("alice", "*", "bob", "H")]);

    assert_eq!(
        alice.exchange("WHO zz*").await,
        [end_of_who("alice", "zz*")]
    );
}

#[tokio::test]
async fn invisible_users_are_hidden_from_who_except_to_people_sharing_a_channel() {
    let server = TestServer::start_with(OPER_CONFIG).await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    assert_eq!(bob.exchange("MODE bob +i").await, [":bob MODE bob +i"]);
    join(&mut alice, "#chan").await;
    join(&mut bob, "#chan").await;
    alice.sync().await;

    // carol shares no channel with bob: masks and the channel hide him.
    let (replies, _) = who_reply(carol.exchange("WHO b*").await);
    assert!(replies.is_empty(), "{replies:?}");
    let (replies, _) = who_reply(carol.exchange("WHO *").await);
    assert_eq!(
        replies,
        sorted(vec![
            who_line("carol", "*", "alice", "H"),
            who_line("carol", "*", "carol", "H"),
            who_line("carol", "*", "oscar", "H*"),
        ])
    );
    assert_eq!(
        carol.exchange("WHO #chan").await,
        [
            who_line("carol", "#chan", "alice", "H@"),
            end_of_who("carol", "#chan")
        ]
    );
    // An exact nick is "a single user", invisible or not.
    assert_eq!(
        carol.exchange("WHO bob").await,
        [
            who_line("carol", "*", "bob", "H"),
            end_of_who("carol", "bob")
        ]
    );

    // alice shares #chan with bob: she sees him everywhere.
    let (replies, _) = who_reply(alice.exchange("WHO b*").await);
    assert_eq!(replies, [who_line("alice", "#chan", "bob", "H")]);
    let (replies, _) = who_reply(alice.exchange("WHO #chan").await);
    assert_eq!(
        replies,
        sorted(vec![
            who_line("alice", "#chan", "alice", "H@"),
            who_line("alice", "#chan", "bob", "H"),
        ])
    );

    // bob sees himself; an oper sees everyone.
    let (replies, _) = who_reply(bob.exchange("WHO b*").await);
    assert_eq!(replies, [who_line("bob", "#chan", "bob", "H")]);
    let (replies, _) = who_reply(oscar.exchange("WHO b*").await);
    assert_eq!(replies, [who_line("oscar", "*", "bob", "H")]);
}

#[tokio::test]
async fn who_on_a_secret_channel_shows_nothing_to_outsiders() {
    let server = TestServer::start_with(OPER_CONFIG).await;
    let mut alice = server.client("alice").await;
    let mut carol = server.client("carol").await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    join(&mut alice, "#hideout").await;
    alice.exchange("MODE #hideout +s").await;
    assert_eq!(
        carol.exchange("WHO #hideout").await,
        [end_of_who("carol", "#hideout")]
    );
    assert_eq!(
        oscar.exchange("WHO #hideout").await,
        [
            who_line("oscar", "#hideout", "alice", "H@"),
            end_of_who("oscar", "#hideout")
        ]
    );
}

#[tokio::test]
async fn who_with_the_o_flag_lists_only_operators() {
    let server = TestServer::start_with(OPER_CONFIG).await;
    let mut alice = server.client("alice").await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    join(&mut alice, "#chan").await;
    join(&mut oscar, "#chan").await;
    alice.sync().await;

    assert_eq!(
        alice.exchange("WHO * o").await,
        [
            who_line("alice", "#chan", "oscar", "H*"),
            end_of_who("alice", "*")
        ]
    );
    assert_eq!(
        alice.exchange("WHO #chan o").await,
        [
            who_line("alice", "#chan", "oscar", "H*"),
            end_of_who("alice", "#chan")
        ]
    );
    assert_eq!(
        alice.exchange("WHO alice o").await,
        [end_of_who("alice", "alice")]
    );
}

#[tokio::test]
async fn whox_returns_the_requested_fields_in_the_fixed_order() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    join(&mut alice, "#chan").await;
    join(&mut bob, "#chan").await;
    bob.exchange("AWAY :out").await;
    alice.sync().await;

    // t c u i h s n f d l a o r is the order, whatever order was asked:
    // token, channel, user, host, nick, flags, account (0: logged out),
    // realname. No 352 at all.
    let expected = sorted(vec![
        numeric(
            "354",
            "alice",
            "123 #chan ~alice 127.0.0.1 alice H@ 0 :Real alice",
        ),
        numeric("354", "alice", "123 #chan ~bob 127.0.0.1 bob G 0 :Real bob"),
    ]);
    for fields in ["%tcuhnfar,123", "%rafnhuct,123"] {
        let (replies, end) = who_reply(alice.exchange(&format!("WHO #chan {fields}")).await);
        assert_eq!(replies, expected, "{fields}");
        assert_eq!(end, end_of_who("alice", "#chan"));
    }

    // The IP and server fields; no realname means no trailing colon.
    assert_eq!(
        alice.exchange("WHO bob %nsi").await,
        [
            numeric("354", "alice", &format!("127.0.0.1 {SERVER} bob")),
            end_of_who("alice", "bob")
        ]
    );
    assert_eq!(
        alice.exchange("WHO bob %n").await,
        [numeric("354", "alice", "bob"), end_of_who("alice", "bob")]
    );
    // A channel is `*` when none is shared.
    let mut carol = server.client("carol").await;
    assert_eq!(
        carol.exchange("WHO bob %cn,7").await,
        [numeric("354", "carol", "* bob"), end_of_who("carol", "bob")]
    );
    assert_eq!(
        carol.exchange("WHO bob %tn,7").await,
        [numeric("354", "carol", "7 bob"), end_of_who("carol", "bob")]
    );
}

#[tokio::test]
async fn whox_account_field_names_the_account_of_a_logged_in_user() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    bob.exchange("REGISTER * * hunter22").await;
    // The account, not the nick it was registered from.
    assert_eq!(
        bob.exchange("NICK robert").await,
        [":bob!~bob@127.0.0.1 NICK robert"]
    );
    assert_eq!(
        alice.exchange("WHO robert %na").await,
        [
            numeric("354", "alice", "robert bob"),
            end_of_who("alice", "robert")
        ]
    );
    // Among the others, in its place (idle time left out: it ticks).
    assert_eq!(
        alice.exchange("WHO robert %tcuihsnfdaor,9").await,
        [
            numeric(
                "354",
                "alice",
                &format!("9 * ~bob 127.0.0.1 127.0.0.1 {SERVER} robert H 0 bob n/a :Real bob")
            ),
            end_of_who("alice", "robert")
        ]
    );
    // Logged out: 0.
    assert_eq!(
        bob.exchange("WHO alice %na").await,
        [
            numeric("354", "robert", "alice 0"),
            end_of_who("robert", "alice")
        ]
    );
}

// ---------------------------------------------------------------- WHOIS

/// Checks a 317 line: `317 viewer nick <idle> <signon> :seconds idle,
/// signon time`, with the idle time small and the signon time within
/// `[from, to]`.
fn assert_whois_idle(line: &str, viewer: &str, nick: &str, from: u64, to: u64) {
    let prefix = numeric("317", viewer, &format!("{nick} "));
    let rest = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("expected 317 for {nick}: {line}"));
    let (numbers, text) = rest.split_once(" :").expect("317 has a text");
    assert_eq!(text, "seconds idle, signon time");
    let (idle, signon) = numbers.split_once(' ').expect("idle and signon");
    let idle: u64 = idle.parse().expect("idle is a number");
    let signon: u64 = signon.parse().expect("signon is a unix time");
    assert!(idle <= to - from + 1, "idle {idle} in {line}");
    assert!(
        (from..=to).contains(&signon),
        "signon {signon} not in {from}..={to}"
    );
}

#[tokio::test]
async fn whois_shows_user_channels_server_away_idle_and_end() {
    let server = TestServer::start_with(OPER_CONFIG).await;
    let before = unix_now();
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    let mut oscar = server.client("oscar").await;
    let after = unix_now();
    make_oper(&mut oscar).await;
    join(&mut alice, "#pub").await;
    join(&mut bob, "#pub").await;
    join(&mut bob, "#secret").await;
    assert_eq!(
        bob.exchange("MODE #secret +s").await,
        [format!(":{} MODE #secret +s", bob.mask())]
    );
    alice.sync().await;
    bob.exchange("AWAY :Gone fishing").await;

    // carol, an outsider: no secret channel, no 338.
    let lines = carol.exchange("WHOIS bob").await;
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(
        lines[..4],
        [
            numeric("311", "carol", "bob ~bob 127.0.0.1 * :Real bob"),
            numeric("319", "carol", "bob :#pub"),
            numeric(
                "312",
                "carol",
                &format!("bob {SERVER} :Parlor community chat")
            ),
            numeric("301", "carol", "bob :Gone fishing"),
        ]
    );
    assert_whois_idle(&lines[4], "carol", "bob", before, unix_now());
    assert_eq!(lines[5], numeric("318", "carol", "bob :End of /WHOIS list"));

    // bob on himself: the secret channel with his @, and 338.
    let lines = bob.exchange("WHOIS bob").await;
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(
        lines[..5],
        [
            numeric("311", "bob", "bob ~bob 127.0.0.1 * :Real bob"),
            numeric("319", "bob", "bob :#pub @#secret"),
            numeric(
                "312",
                "bob",
                &format!("bob {SERVER} :Parlor community chat")
            ),
            numeric("301", "bob", "bob :Gone fishing"),
            numeric("338", "bob", "bob 127.0.0.1 :Actual host"),
        ]
    );
    assert_whois_idle(&lines[5], "bob", "bob", before, unix_now());
    assert_eq!(lines[6], numeric("318", "bob", "bob :End of /WHOIS list"));

    // An oper sees the secret channel and the 338 too; WHOIS on an oper
    // adds 313.
    let lines = oscar.exchange("WHOIS bob").await;
    assert_eq!(lines[1], numeric("319", "oscar", "bob :#pub @#secret"));
    assert_eq!(
        lines[4],
        numeric("338", "oscar", "bob 127.0.0.1 :Actual host")
    );
    let lines = alice.exchange("WHOIS oscar").await;
    assert_eq!(
        lines[..3],
        [
            numeric("311", "alice", "oscar ~oscar 127.0.0.1 * :Real oscar"),
            numeric(
                "312",
                "alice",
                &format!("oscar {SERVER} :Parlor community chat")
            ),
            numeric("313", "alice", "oscar :is an IRC operator"),
        ]
    );
    assert_whois_idle(&lines[3], "alice", "oscar", before, after);
    assert_eq!(
        lines[4],
        numeric("318", "alice", "oscar :End of /WHOIS list")
    );
    assert_eq!(lines.len(), 5, "{lines:?}");
}

#[tokio::test]
async fn whois_channel_list_shows_voice_and_op_prefixes() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    join(&mut alice, "#a").await;
    join(&mut alice, "#b").await;
    join(&mut bob, "#a").await;
    join(&mut bob, "#b").await;
    join(&mut bob, "#c").await;
    alice.exchange("MODE #a +v bob").await;
    let lines = alice.exchange("WHOIS bob").await;
    // The server lists them sorted as text; the order is not specified.
    assert_eq!(lines[1], numeric("319", "alice", "bob :#b +#a @#c"));
}

#[tokio::test]
async fn whois_unknown_nick_gives_401_then_318() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("WHOIS nobody").await,
        [
            numeric("401", "alice", "nobody :No such nick/channel"),
            numeric("318", "alice", "nobody :End of /WHOIS list"),
        ]
    );
    assert_eq!(
        alice.exchange("WHOIS").await,
        [numeric("461", "alice", "WHOIS :Not enough parameters")]
    );
    // A connection that has not registered is not someone to look up.
    let mut half = server.connect().await;
    half.send("NICK halfway").await;
    half.sync().await;
    assert_eq!(
        alice.exchange("WHOIS halfway").await,
        [
            numeric("401", "alice", "halfway :No such nick/channel"),
            numeric("318", "alice", "halfway :End of /WHOIS list"),
        ]
    );
}

#[tokio::test]
async fn whois_with_a_server_or_nick_target_first() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let _bob = server.client("bob").await;
    let plain = alice.exchange("WHOIS bob").await;
    assert_eq!(
        plain[0],
        numeric("311", "alice", "bob ~bob 127.0.0.1 * :Real bob")
    );
    for command in ["WHOIS irc.test bob", "WHOIS bob bob"] {
        let lines = alice.exchange(command).await;
        assert_eq!(lines.len(), plain.len(), "{command}: {lines:?}");
        assert_eq!(lines[0], plain[0], "{command}");
        assert_eq!(lines.last(), plain.last(), "{command}");
    }
}

/// Modern IRC, RPL_ENDOFWHOIS: "`<nick>` MUST be exactly the `<nick>`
/// parameter sent by the client in its `WHOIS` message. This means the case
/// MUST be preserved".
#[tokio::test]
async fn whois_end_echoes_the_nick_exactly_as_sent() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let _bob = server.client("bob").await;
    let lines = alice.exchange("WHOIS BOB").await;
    assert_eq!(
        lines[0],
        numeric("311", "alice", "bob ~bob 127.0.0.1 * :Real bob")
    );
    assert_eq!(
        lines.last().unwrap(),
        &numeric("318", "alice", "BOB :End of /WHOIS list")
    );
}

#[tokio::test]
async fn whois_several_nicks_ends_with_the_whole_list() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let _bob = server.client("bob").await;
    let lines = alice.exchange("WHOIS Bob,nobody").await;
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(
        lines[0],
        numeric("311", "alice", "bob ~bob 127.0.0.1 * :Real bob")
    );
    assert_eq!(
        lines[3],
        numeric("401", "alice", "nobody :No such nick/channel")
    );
    assert_eq!(
        lines[4],
        numeric("318", "alice", "Bob,nobody :End of /WHOIS list")
    );
}

/// Modern IRC lists ERR_NOSUCHSERVER among WHOIS replies: a `<target>`
/// "SHOULD be a server name or the nick of a user", and VERSION, MOTD,
/// ADMIN, TIME and INFO on this server answer an unknown one with 402.
#[tokio::test]
async fn whois_naming_an_unknown_server_gets_402() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let _bob = server.client("bob").await;
    assert_eq!(
        alice.exchange("WHOIS other.server bob").await,
        [numeric("402", "alice", "other.server :No such server")]
    );
}

/// A nick with a space cannot exist, but a client can still send one as a
/// trailing parameter. The server must answer (the harness checks every
/// line parses) rather than drop the connection. The exact reply is not
/// specified: no parameter but the last may hold a space.
#[tokio::test]
async fn queries_for_a_nick_with_a_space_are_still_answered() {
    let server = TestServer::start().await;
    let mut unanswered = Vec::new();
    for (asker, command, end) in [
        ("asker1", "WHO :no body", " 315 "),
        ("asker2", "WHOIS :no body", " 318 "),
        ("asker3", "WHOWAS :no body", " 369 "),
    ] {
        let mut c = server.client(asker).await;
        let answer =
            tokio::time::timeout(std::time::Duration::from_secs(3), c.exchange(command)).await;
        match answer {
            Ok(lines) if lines.last().is_some_and(|l| l.contains(end)) => {}
            Ok(lines) => unanswered.push(format!("{command}: {lines:?}")),
            Err(_) => unanswered.push(format!("{command}: no answer, connection hung")),
        }
    }
    assert!(unanswered.is_empty(), "{unanswered:#?}");
}

// ---------------------------------------------------------------- USERHOST

#[tokio::test]
async fn userhost_marks_opers_and_away_users() {
    let server = TestServer::start_with(OPER_CONFIG).await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    bob.exchange("AWAY :away").await;

    assert_eq!(
        alice.exchange("USERHOST alice oscar nobody BOB").await,
        [numeric(
            "302",
            "alice",
            ":alice=+~alice@127.0.0.1 oscar*=+~oscar@127.0.0.1 bob=-~bob@127.0.0.1"
        )]
    );
    oscar.exchange("AWAY :also away").await;
    assert_eq!(
        alice.exchange("USERHOST oscar").await,
        [numeric("302", "alice", ":oscar*=-~oscar@127.0.0.1")]
    );
    assert_eq!(
        alice.exchange("USERHOST nobody").await,
        [numeric("302", "alice", ":")]
    );
    assert_eq!(
        alice.exchange("USERHOST").await,
        [numeric("461", "alice", "USERHOST :Not enough parameters")]
    );
}

#[tokio::test]
async fn userhost_answers_for_at_most_five_nicks() {
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for nick in ["u1", "u2", "u3", "u4", "u5", "u6"] {
        clients.push(server.client(nick).await);
    }
    let reply = clients[0].exchange("USERHOST u1 u2 u3 u4 u5 u6").await;
    let expected: Vec<String> = (1..=5).map(|i| format!("u{i}=+~u{i}@127.0.0.1")).collect();
    assert_eq!(
        reply,
        [numeric("302", "u1", &format!(":{}", expected.join(" ")))]
    );
}

// ---------------------------------------------------------------- ISON

#[tokio::test]
async fn ison_lists_the_online_nicks_as_they_are_spelled() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let _bob = server.client("Bob").await;

    // Separate parameters, or one trailing parameter (irssi's form).
    for command in ["ISON alice nobody BOB", "ISON :alice nobody BOB"] {
        assert_eq!(
            alice.exchange(command).await,
            [numeric("303", "alice", ":alice Bob")],
            "{command}"
        );
    }
    assert_eq!(
        alice.exchange("ISON nobody").await,
        [numeric("303", "alice", ":")]
    );
    assert_eq!(
        alice.exchange("ISON").await,
        [numeric("461", "alice", "ISON :Not enough parameters")]
    );
}
