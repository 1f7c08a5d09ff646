//! Registration, the welcome burst, and connection-level commands.

mod common;
use common::*;

#[tokio::test]
async fn welcome_burst_is_complete_and_in_order() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send("NICK alice").await;
    c.send("USER alice 0 * :Alice Liddell").await;
    c.expect_line(&numeric(
        "001",
        "alice",
        ":Welcome to the Parlor IRC Network alice!~alice@127.0.0.1",
    ))
    .await;
    c.expect_line(&numeric(
        "002",
        "alice",
        &format!(":Your host is {SERVER}, running version parlor-0.1.0"),
    ))
    .await;
    assert!(c
        .next_line()
        .await
        .starts_with(&numeric("003", "alice", ":This server was created ")));
    c.expect_line(&numeric(
        "004",
        "alice",
        &format!("{SERVER} parlor-0.1.0 iowZ beIiklmnopstv beIklov"),
    ))
    .await;
    let mut tokens = Vec::new();
    loop {
        let line = c.next_line().await;
        let Some(rest) = line.strip_prefix(&numeric("005", "alice", "")) else {
            assert!(
                line.contains(" 251 "),
                "005 lines are followed by LUSERS: {line}"
            );
            break;
        };
        let (params, text) = rest.split_once(" :").expect("005 ends with its text");
        assert_eq!(text, "are supported by this server");
        tokens.extend(params.split(' ').map(str::to_owned));
    }
    for expected in [
        "CASEMAPPING=rfc1459",
        "CHANTYPES=#&",
        "CHANMODES=beI,k,l,imnpst",
        "PREFIX=(ov)@+",
        "NICKLEN=30",
        "CHANNELLEN=64",
        "TOPICLEN=390",
        "KICKLEN=390",
        "AWAYLEN=390",
        "MAXTARGETS=4",
        "NETWORK=Parlor",
        "MODES=6",
        "CHANLIMIT=#&:50",
        "ELIST=MNU",
        "STATUSMSG=@+",
        "MONITOR=100",
        "CHATHISTORY=100",
        "NAMELEN=128",
        "MSGREFTYPES=msgid,timestamp",
    ] {
        assert!(
            tokens.iter().any(|t| t == expected),
            "ISUPPORT lacks {expected}: {tokens:?}"
        );
    }
    assert!(
        tokens.iter().any(|t| t.starts_with("TARGMAX=")),
        "{tokens:?}"
    );
    c.expect_line(&numeric("255", "alice", ":I have 1 clients and 0 servers"))
        .await;
    c.expect_line(&numeric(
        "265",
        "alice",
        "1 1 :Current local users 1, max 1",
    ))
    .await;
    c.expect_line(&numeric(
        "266",
        "alice",
        "1 1 :Current global users 1, max 1",
    ))
    .await;
    c.expect_line(&numeric(
        "375",
        "alice",
        &format!(":- {SERVER} Message of the day - "),
    ))
    .await;
    c.expect_line(&numeric("372", "alice", ":- Welcome to Parlor."))
        .await;
    c.skip_until(|l| l == numeric("376", "alice", ":End of /MOTD command."))
        .await;
    c.expect_nothing().await;
}

#[tokio::test]
async fn an_empty_motd_is_reported_missing() {
    let server = TestServer::start_with("[server]\nmotd = \"\"\n").await;
    let mut c = server.connect().await;
    c.send("NICK bob").await;
    c.send("USER bob 0 * :Bob").await;
    c.skip_until(|l| l.contains(" 422 ")).await;
    assert_eq!(
        c.log.last().unwrap(),
        &numeric("422", "bob", ":MOTD File is missing")
    );
}

#[tokio::test]
async fn cap_negotiation_holds_registration_until_end() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send("CAP LS 302").await;
    c.expect_line(&format!(
        ":{SERVER} CAP * LS :account-notify account-tag away-notify batch cap-notify chghost draft/account-registration=before-connect \
         draft/chathistory draft/event-playback echo-message extended-join invite-notify labeled-response message-tags multi-prefix sasl=EXTERNAL,PLAIN,SCRAM-SHA-256 \
         server-time setname standard-replies userhost-in-names znc.in/playback znc.in/self-message"
    ))
    .await;
    c.send("NICK carol").await;
    c.send("USER carol 0 * :Carol").await;
    c.send("CAP REQ :multi-prefix bogus-cap").await;
    c.expect_line(&format!(":{SERVER} CAP carol NAK :multi-prefix bogus-cap"))
        .await;
    c.send("CAP REQ :multi-prefix").await;
    c.expect_line(&format!(":{SERVER} CAP carol ACK :multi-prefix"))
        .await;
    c.send("CAP LIST").await;
    c.expect_line(&format!(
        ":{SERVER} CAP carol LIST :cap-notify multi-prefix"
    ))
    .await;
    // Nothing of the welcome yet: registration waits for CAP END.
    c.send("CAP END").await;
    c.expect_line(&numeric(
        "001",
        "carol",
        ":Welcome to the Parlor IRC Network carol!~carol@127.0.0.1",
    ))
    .await;
    let lines = c.exchange("CAP FOO").await;
    assert!(
        lines.contains(&numeric("410", "carol", "FOO :Invalid CAP command")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn nick_errors() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut c = server.connect().await;
    assert_eq!(
        c.exchange("NICK").await,
        [numeric("431", "*", ":No nickname given")]
    );
    assert_eq!(
        c.exchange("NICK 9lives").await,
        [numeric("432", "*", "9lives :Erroneous nickname")]
    );
    assert_eq!(
        c.exchange("NICK a,b").await,
        [numeric("432", "*", "a,b :Erroneous nickname")]
    );
    let too_long = "n".repeat(31);
    assert_eq!(
        c.exchange(&format!("NICK {too_long}")).await,
        [numeric(
            "432",
            "*",
            &format!("{too_long} :Erroneous nickname")
        )]
    );
    // Collisions follow the casemapping: ALICE and alice are one nick.
    assert_eq!(
        c.exchange("NICK ALICE").await,
        [numeric("433", "*", "ALICE :Nickname is already in use")]
    );
    // Under rfc1459, [ and { are the same letter.
    alice.exchange("NICK al[ce").await;
    assert_eq!(
        c.exchange("NICK AL{CE").await,
        [numeric("433", "*", "AL{CE :Nickname is already in use")]
    );
    c.register("bob").await;
}

#[tokio::test]
async fn commands_before_registration_get_451_and_the_connection_lives() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    // irssi sends an empty JOIN before it is registered.
    assert_eq!(
        c.exchange("JOIN :").await,
        [numeric("451", "*", ":You have not registered")]
    );
    assert_eq!(
        c.exchange("PRIVMSG x :hi").await,
        [numeric("451", "*", ":You have not registered")]
    );
    assert_eq!(
        c.exchange("FROBNICATE").await,
        [numeric("421", "*", "FROBNICATE :Unknown command")]
    );
    c.register("dave").await;
}

#[tokio::test]
async fn missing_parameters_and_reregistration() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    assert_eq!(
        c.exchange("USER onlyone").await,
        [numeric("461", "*", "USER :Not enough parameters")]
    );
    c.register("erin").await;
    assert_eq!(
        c.exchange("USER a 0 * :b").await,
        [numeric("462", "erin", ":You may not reregister")]
    );
    assert_eq!(
        c.exchange("PASS secret").await,
        [numeric("462", "erin", ":You may not reregister")]
    );
    assert_eq!(
        c.exchange("JOIN").await,
        [numeric("461", "erin", "JOIN :Not enough parameters")]
    );
    assert_eq!(
        c.exchange("JOIN :").await,
        [numeric("461", "erin", "JOIN :Not enough parameters")]
    );
    assert_eq!(
        c.exchange("MODE").await,
        [numeric("461", "erin", "MODE :Not enough parameters")]
    );
    assert_eq!(
        c.exchange("frobnicate x").await,
        [numeric("421", "erin", "FROBNICATE :Unknown command")]
    );
}

#[tokio::test]
async fn any_printable_word_that_is_no_command_gets_421_labeled_when_labeled() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    assert_eq!(
        c.exchange("FOO_BAR").await,
        [numeric("421", "*", "FOO_BAR :Unknown command")]
    );
    c.register("erin").await;
    for (sent, named) in [
        ("foo_bar x", "FOO_BAR"),
        ("X-Y", "X-Y"),
        ("PRIV#MSG erin :hi", "PRIV#MSG"),
        ("caf\u{e9} x", "CAF\u{e9}"),
        (":erin!~erin@127.0.0.1 A.B", "A.B"),
    ] {
        assert_eq!(
            c.exchange(sent).await,
            [numeric("421", "erin", &format!("{named} :Unknown command"))],
            "{sent}"
        );
    }
    // A word too long to repeat whole is cut, so the reply stays a line.
    let long = format!("X{}", "_".repeat(450));
    assert_eq!(
        c.exchange(&long).await,
        [numeric(
            "421",
            "erin",
            &format!("{} :Unknown command", &long[..300])
        )]
    );
    // A control character leaves no command to name: the line is refused.
    assert_eq!(
        c.exchange("FOO\x01BAR").await,
        [numeric(
            "400",
            "erin",
            "* :Could not parse the message: malformed message"
        )]
    );

    c.exchange("CAP REQ :labeled-response batch").await;
    assert_eq!(
        c.exchange("@label=u1 FOO_BAR").await,
        [format!(
            "@label=u1 :{SERVER} 421 erin FOO_BAR :Unknown command"
        )]
    );
    assert_eq!(
        c.exchange("@label=u2 :erin X-Y z").await,
        [format!("@label=u2 :{SERVER} 421 erin X-Y :Unknown command")]
    );
}

#[tokio::test]
async fn server_password_is_required_when_set() {
    let server = TestServer::start_with("[server]\npassword = \"letmein\"\n").await;
    let mut wrong = server.connect().await;
    wrong.send("PASS nope").await;
    wrong.send("NICK wrong").await;
    wrong.send("USER wrong 0 * :W").await;
    let lines = wrong.read_to_end().await;
    assert_eq!(lines[0], numeric("464", "wrong", ":Password incorrect"));
    assert_eq!(lines[1], "ERROR :Closing link: 127.0.0.1 (Bad password)");

    let mut right = server.connect().await;
    right.send("PASS letmein").await;
    right.register("right").await;
}

#[tokio::test]
async fn ping_pong_and_quit() {
    let server = TestServer::start().await;
    let mut c = server.client("fred").await;
    assert_eq!(
        c.exchange("PING :hello there").await,
        [format!(":{SERVER} PONG {SERVER} :hello there")]
    );
    assert_eq!(
        c.exchange("PING").await,
        [numeric("461", "fred", "PING :Not enough parameters")]
    );
    assert!(c.exchange("PONG :whatever").await.is_empty());
    c.send("QUIT :gone fishing").await;
    assert_eq!(
        c.read_to_end().await,
        ["ERROR :Closing link: 127.0.0.1 (Quit: gone fishing)"]
    );
}

#[tokio::test]
async fn idle_clients_are_pinged_and_dropped_when_silent() {
    let server =
        TestServer::start_with("[limits]\nping_interval_secs = 1\nping_timeout_secs = 1\n").await;
    let mut c = server.client("gina").await;
    c.expect_line(&format!("PING {SERVER}")).await;
    c.send(&format!("PONG {SERVER}")).await;
    c.expect_line(&format!("PING {SERVER}")).await;
    // This time no answer.
    let rest = c.read_to_end().await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert!(
        rest[0].starts_with("ERROR :Closing link: 127.0.0.1 (Ping timeout: "),
        "{rest:?}"
    );
}

#[tokio::test]
async fn registration_times_out() {
    let server = TestServer::start_with("[limits]\nregistration_timeout_secs = 1\n").await;
    let mut c = server.connect().await;
    c.send("NICK slow").await;
    assert_eq!(
        c.read_to_end().await,
        ["ERROR :Closing link: 127.0.0.1 (Registration timed out)"]
    );
}

#[tokio::test]
async fn overlong_lines_get_417_and_the_connection_lives() {
    let server = TestServer::start().await;
    let mut c = server.client("hank").await;
    let long = format!("PRIVMSG hank :{}", "x".repeat(600));
    assert_eq!(
        c.exchange(&long).await,
        [numeric("417", "hank", ":Input line was too long")]
    );
    // Tags have their own, larger budget.
    let tagged = format!("@+example={} PING :tagged", "v".repeat(4000));
    c.send(&tagged).await;
    c.expect_line(&format!(":{SERVER} PONG {SERVER} :tagged"))
        .await;
}

#[tokio::test]
async fn invalid_utf8_is_refused_with_fail() {
    let server = TestServer::start().await;
    let mut c = server.client("ivy").await;
    c.send_raw(b"PRIVMSG ivy :caf\xe9\r\n").await;
    let lines = c.sync().await;
    assert_eq!(
        lines,
        [format!(":{SERVER} FAIL PRIVMSG INVALID_UTF8 :Message rejected, your IRC software MUST use UTF-8 encoding on this network")]
    );
}

#[tokio::test]
async fn bare_lf_and_empty_lines_are_accepted() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send_raw(b"\r\n\nNICK jill\nUSER jill 0 * :Jill\n").await;
    c.expect_numeric("001").await;
}

#[tokio::test]
async fn flood_control_slows_a_burst_but_drops_nothing() {
    let server =
        TestServer::start_with("[limits]\nflood_burst = 2\nflood_lines_per_sec = 50\n").await;
    let mut c = server.client("kim").await;
    let burst: String = (0..15).map(|i| format!("PING :n{i}\r\n")).collect();
    c.send_raw(burst.as_bytes()).await;
    for i in 0..15 {
        c.expect_line(&format!(":{SERVER} PONG {SERVER} :n{i}"))
            .await;
    }
}

#[tokio::test]
async fn usernames_are_cut_to_userlen_bytes() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send("NICK lena").await;
    // 20 two-byte letters: 17 bytes are left after the `~`, so 8 letters.
    c.send(&format!("USER {} 0 * :Lena", "é".repeat(20))).await;
    c.expect_line(&numeric(
        "001",
        "lena",
        &format!(
            ":Welcome to the Parlor IRC Network lena!~{}@127.0.0.1",
            "é".repeat(8)
        ),
    ))
    .await;
}

#[tokio::test]
async fn a_line_with_an_inner_cr_or_nul_is_refused_not_relayed() {
    let server = TestServer::start().await;
    let mut eve = server.client("eve").await;
    let mut bob = server.client("bob").await;
    let why = "Could not parse the message: NUL, CR and LF are not allowed inside a message";
    let unknown_error = numeric("400", "eve", &format!("* :{why}"));
    eve.send_raw(b"PRIVMSG bob :hi\r:irc.test 001 bob :forged\r\n")
        .await;
    assert_eq!(eve.sync().await, std::slice::from_ref(&unknown_error));
    eve.send_raw(b"PRIVMSG bob :a\0b\r\n").await;
    assert_eq!(eve.sync().await, [unknown_error]);
    // A client that takes any standard reply gets a FAIL instead.
    let mut modern = server.client_with_caps("modern", "standard-replies").await;
    modern.send_raw(b"PRIVMSG bob :a\0b\r\n").await;
    assert_eq!(
        modern.sync().await,
        [format!(":{SERVER} FAIL * INVALID_MESSAGE :{why}")]
    );
    bob.expect_nothing().await;
}
