//! Accounts: REGISTER (IRCv3 draft/account-registration), NickServ,
//! account-notify, extended-join, and accounts surviving a restart.

mod common;
use common::*;

fn register_fail(code: &str, name: &str, text: &str) -> String {
    format!(":{SERVER} FAIL REGISTER {code} {name} :{text}")
}

fn from_nickserv(nick: &str, text: &str) -> String {
    format!(":NickServ!NickServ@services. NOTICE {nick} :{text}")
}

#[tokio::test]
async fn register_creates_the_account_and_logs_in() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice
            .exchange("REGISTER * alice@example.org hunter22")
            .await,
        [
            format!(":{SERVER} REGISTER SUCCESS alice :Account successfully registered"),
            numeric(
                "900",
                "alice",
                "alice!~alice@127.0.0.1 alice :You are now logged in as alice"
            ),
        ]
    );
    assert_eq!(
        alice.exchange("REGISTER * * hunter22").await,
        [register_fail(
            "ALREADY_AUTHENTICATED",
            "alice",
            "You are already logged in to an account"
        )]
    );
}

#[tokio::test]
async fn register_refusals_say_why() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut bob = server.client("bob").await;
    let cases = [
        (
            "REGISTER * * short",
            register_fail(
                "WEAK_PASSWORD",
                "bob",
                "Passwords must be at least 8 characters long",
            ),
        ),
        (
            "REGISTER carol * longenough",
            register_fail(
                "ACCOUNT_NAME_MUST_BE_NICK",
                "carol",
                "Your account name must be your current nickname",
            ),
        ),
        (
            "REGISTER bob not-an-email longenough",
            register_fail(
                "INVALID_EMAIL",
                "bob",
                "not-an-email is not a valid email address",
            ),
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(bob.exchange(line).await, [expected], "{line}");
    }
    assert_eq!(
        bob.exchange("REGISTER * *").await,
        [numeric("461", "bob", "REGISTER :Not enough parameters")]
    );

    // A name someone registered: ACCOUNT_EXISTS, whatever its case.
    bob.exchange("REGISTER * * longenough").await;
    bob.send("QUIT").await;
    bob.read_to_end().await;
    let mut again = server.client("BOB").await;
    assert_eq!(
        again.exchange("REGISTER * * longenough").await,
        [register_fail(
            "ACCOUNT_EXISTS",
            "BOB",
            "The account name BOB is already registered"
        )]
    );
}

#[tokio::test]
async fn register_before_the_connection_completes_needs_a_nick() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut c = server.connect().await;
    c.send("CAP LS 302").await;
    c.next_line().await;
    assert_eq!(
        c.exchange("REGISTER * * longenough").await,
        [register_fail(
            "NEED_NICK",
            "*",
            "You must choose a nickname before registering"
        )]
    );
    c.send("NICK dave").await;
    let lines = c.exchange("REGISTER * * longenough").await;
    assert_eq!(
        lines,
        [
            format!(":{SERVER} REGISTER SUCCESS dave :Account successfully registered"),
            numeric(
                "900",
                "dave",
                "dave!*@* dave :You are now logged in as dave"
            ),
        ]
    );
    c.send("USER dave 0 * :Dave").await;
    c.send("CAP END").await;
    c.expect_numeric("001").await;
}

/// A client whose NICK was refused has sent NICK all the same: REGISTER
/// answers about the account it names (`*`: the nick it asked for), never
/// NEED_NICK.
#[tokio::test]
async fn register_after_a_refused_nick_answers_about_the_account_asked_for() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut alice = server.client("alice").await;
    alice.exchange("REGISTER * * hunter22").await;
    let _bob = server.client("bob").await;

    let mut c = server.connect().await;
    assert_eq!(
        c.exchange("NICK alice").await,
        [numeric("433", "*", "alice :Nickname is already in use")]
    );
    let exists = register_fail(
        "ACCOUNT_EXISTS",
        "alice",
        "The account name alice is already registered",
    );
    assert_eq!(
        c.exchange("REGISTER alice * longenough").await,
        std::slice::from_ref(&exists)
    );
    assert_eq!(c.exchange("REGISTER * * longenough").await, [exists]);
    assert_eq!(
        c.exchange("REGISTER ALICE * longenough").await,
        [register_fail(
            "ACCOUNT_EXISTS",
            "ALICE",
            "The account name alice is already registered"
        )]
    );
    // bob is in use but no account: the nick must be the client's first.
    assert_eq!(
        c.exchange("NICK bob").await,
        [numeric("433", "*", "bob :Nickname is already in use")]
    );
    let not_nick = |name: &str| {
        register_fail(
            "ACCOUNT_NAME_MUST_BE_NICK",
            name,
            "Your account name must be your current nickname",
        )
    };
    assert_eq!(
        c.exchange("REGISTER * * longenough").await,
        [not_nick("bob")]
    );
    assert_eq!(
        c.exchange("REGISTER carol * longenough").await,
        [not_nick("carol")]
    );
    // A refused erroneous nick names no account that could be.
    assert_eq!(
        c.exchange("NICK 9lives").await,
        [numeric("432", "*", "9lives :Erroneous nickname")]
    );
    let lines = c.exchange("REGISTER * * longenough").await;
    assert!(
        lines.len() == 1
            && lines[0].starts_with(&format!(
                ":{SERVER} FAIL REGISTER BAD_ACCOUNT_NAME 9lives :"
            )),
        "{lines:?}"
    );
    // With a nick of its own, `*` is that nick again.
    c.send("NICK carol").await;
    assert_eq!(
        c.exchange("REGISTER * * longenough").await,
        [
            format!(":{SERVER} REGISTER SUCCESS carol :Account successfully registered"),
            numeric(
                "900",
                "carol",
                "carol!*@* carol :You are now logged in as carol"
            ),
        ]
    );

    // A registered client naming someone else's account hears that it is
    // taken, rather than that it is not its nick.
    let mut dave = server.client("dave").await;
    assert_eq!(
        dave.exchange("REGISTER alice * longenough").await,
        [register_fail(
            "ACCOUNT_EXISTS",
            "alice",
            "The account name alice is already registered"
        )]
    );
}

#[tokio::test]
async fn registration_rules_come_from_the_config() {
    let closed =
        TestServer::start_with(&format!("{FAST_ACCOUNTS}registration = \"closed\"\n")).await;
    let mut c = closed.client("erin").await;
    assert_eq!(
        c.exchange("REGISTER * * longenough").await,
        [register_fail(
            "TEMPORARILY_UNAVAILABLE",
            "erin",
            "Account registration is disabled on this server"
        )]
    );
    assert_eq!(
        c.exchange("PRIVMSG NickServ :REGISTER longenough").await,
        [from_nickserv(
            "erin",
            "Account registration is disabled on this server"
        )]
    );

    let strict = TestServer::start_with(&format!(
        "{FAST_ACCOUNTS}email_required = true\nregister_before_connect = false\n"
    ))
    .await;
    let mut early = strict.connect().await;
    early.send("NICK frank").await;
    assert_eq!(
        early.exchange("REGISTER * * longenough").await,
        [format!(
            ":{SERVER} FAIL REGISTER COMPLETE_CONNECTION_REQUIRED :Complete the connection before registering an account"
        )]
    );
    let mut c = strict.client("grace").await;
    assert_eq!(
        c.exchange("REGISTER * * longenough").await,
        [register_fail(
            "INVALID_EMAIL",
            "grace",
            "An email address is required to register on this server"
        )]
    );
    c.send("CAP LS 302").await;
    let ls = c.next_line().await;
    assert!(
        ls.contains(" draft/account-registration=email-required "),
        "{ls}"
    );
}

#[tokio::test]
async fn nickserv_registers_identifies_and_changes_passwords() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut heidi = server.client("heidi").await;
    let lines = heidi
        .exchange("PRIVMSG NickServ :REGISTER first-password")
        .await;
    assert_eq!(
        lines,
        [
            from_nickserv("heidi", "Account heidi registered"),
            numeric(
                "900",
                "heidi",
                "heidi!~heidi@127.0.0.1 heidi :You are now logged in as heidi"
            ),
        ]
    );
    // The current password is asked for: a client left logged in cannot
    // be used to take the account over.
    assert_eq!(
        heidi
            .exchange("NS SET PASSWORD wrong-password second-password")
            .await,
        [from_nickserv("heidi", "Password incorrect")]
    );
    let lines = heidi
        .exchange("NS SET PASSWORD first-password second-password")
        .await;
    assert_eq!(lines, [from_nickserv("heidi", "Password changed")]);
    let lines = heidi.exchange("NICKSERV LOGOUT").await;
    assert_eq!(
        lines,
        [
            numeric(
                "901",
                "heidi",
                "heidi!~heidi@127.0.0.1 :You are now logged out"
            ),
            from_nickserv("heidi", "You are now logged out"),
        ]
    );
    assert_eq!(
        heidi
            .exchange("PRIVMSG NickServ :IDENTIFY first-password")
            .await,
        [from_nickserv("heidi", "Invalid account name or password")]
    );
    let lines = heidi
        .exchange("PRIVMSG NickServ :IDENTIFY heidi second-password")
        .await;
    assert_eq!(
        lines,
        [
            from_nickserv("heidi", "You are now logged in as heidi"),
            numeric(
                "900",
                "heidi",
                "heidi!~heidi@127.0.0.1 heidi :You are now logged in as heidi"
            ),
        ]
    );
    let info = heidi.exchange("PRIVMSG NickServ :INFO").await;
    assert_eq!(info[0], from_nickserv("heidi", "Account: heidi"));
    assert!(info[1].contains(":Registered: "), "{info:?}");
    assert_eq!(info[2], from_nickserv("heidi", "Nicks: heidi"));
    assert_eq!(info[3], from_nickserv("heidi", "Email: (none)"));

    let help = heidi.exchange("PRIVMSG NickServ :HELP").await;
    assert!(help.len() >= 9, "{help:?}");
    assert_eq!(
        heidi.exchange("PRIVMSG NickServ :FROB").await,
        [from_nickserv(
            "heidi",
            "Unknown command FROB; /msg NickServ HELP lists them"
        )]
    );
    assert_eq!(
        heidi.exchange("PRIVMSG NickServ :IDENTIFY").await,
        [from_nickserv(
            "heidi",
            "Syntax: IDENTIFY [account] <password>"
        )]
    );
    // Nobody can take the service's nick.
    assert_eq!(
        heidi.exchange("NICK nickserv").await,
        [numeric("432", "heidi", "nickserv :Erroneous nickname")]
    );
}

#[tokio::test]
async fn ghost_and_recover_free_a_nick_for_its_owner() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut owner = server.client("ivan").await;
    owner.exchange("REGISTER * * ivans-password").await;
    owner.send("QUIT").await;
    owner.read_to_end().await;

    // Someone else holds "ivan"; the owner comes back as ivan_.
    let mut squatter = server.client("ivan").await;
    let mut me = server.client("ivan_").await;
    assert_eq!(
        me.exchange("PRIVMSG NickServ :GHOST ivan wrong-password")
            .await,
        [from_nickserv("ivan_", "You may not ghost ivan")]
    );
    assert_eq!(
        me.exchange("PRIVMSG NickServ :RECOVER ivan ivans-password")
            .await,
        [
            ":ivan_!~ivan_@127.0.0.1 NICK ivan".to_owned(),
            from_nickserv("ivan", "ivan has been recovered"),
        ]
    );
    let lines = squatter.read_to_end().await;
    let renamed = &lines[0];
    assert!(
        renamed.starts_with(":ivan!~ivan@127.0.0.1 NICK Guest"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "ERROR :Closing link: 127.0.0.1 (Ghosted by ivan_)",
        "{lines:?}"
    );
}

#[tokio::test]
async fn account_notify_and_extended_join_show_logins_to_channel_members() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut watcher = server.client("watcher").await;
    watcher
        .exchange("CAP REQ :account-notify extended-join")
        .await;
    let mut judy = server.client("judy").await;
    // The joiner's own JOIN is extended too: it asked for the form.
    assert_eq!(
        watcher.exchange("JOIN #room").await[0],
        ":watcher!~watcher@127.0.0.1 JOIN #room * :Real watcher"
    );
    join(&mut judy, "#room").await;
    assert_eq!(
        watcher.sync().await,
        [":judy!~judy@127.0.0.1 JOIN #room * :Real judy"]
    );
    judy.exchange("REGISTER * * judys-password").await;
    assert_eq!(watcher.sync().await, [":judy!~judy@127.0.0.1 ACCOUNT judy"]);
    judy.exchange("PART #room").await;
    watcher.sync().await;
    judy.exchange("JOIN #room").await;
    assert_eq!(
        watcher.sync().await,
        [":judy!~judy@127.0.0.1 JOIN #room judy :Real judy"]
    );
    judy.exchange("NS LOGOUT").await;
    assert_eq!(watcher.sync().await, [":judy!~judy@127.0.0.1 ACCOUNT *"]);
}

#[tokio::test]
async fn accounts_survive_a_restart() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut karl = server.client("karl").await;
    karl.exchange("REGISTER * * karls-password").await;
    drop(karl);
    let server = server.restart().await;
    let mut karl = server.client("karl").await;
    let lines = karl
        .exchange("PRIVMSG NickServ :IDENTIFY karls-password")
        .await;
    assert_eq!(
        lines[0],
        from_nickserv("karl", "You are now logged in as karl"),
        "{lines:?}"
    );
    let lines = karl.exchange("PRIVMSG NickServ :DROP karls-password").await;
    assert_eq!(
        lines,
        [
            numeric(
                "901",
                "karl",
                "karl!~karl@127.0.0.1 :You are now logged out"
            ),
            from_nickserv("karl", "Account karl dropped"),
        ]
    );
    assert_eq!(
        karl.exchange("PRIVMSG NickServ :INFO karl").await,
        [from_nickserv("karl", "karl is not registered")]
    );
}

#[tokio::test]
async fn a_registered_nick_must_be_identified_for_or_it_is_changed() {
    let server = TestServer::start_with(
        "[accounts]\nargon2_memory_kib = 1024\nargon2_iterations = 1\nnick_grace_secs = 1\n",
    )
    .await;
    let mut owner = server.client("lisa").await;
    owner.exchange("REGISTER * * lisas-password").await;
    owner.send("QUIT").await;
    owner.read_to_end().await;

    // Someone who identifies in time keeps the nick.
    let mut lisa = server.client("lisa").await;
    let warning = "This nickname is registered. Identify within 1 seconds with /msg NickServ IDENTIFY <password> (or SASL), or it will be changed.";
    lisa.expect_line(&from_nickserv("lisa", warning)).await;
    lisa.exchange("PRIVMSG NickServ :IDENTIFY lisas-password")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    lisa.expect_nothing().await;
    lisa.send("QUIT").await;
    lisa.read_to_end().await;

    // Someone who does not is renamed, and told; changing the nick's case
    // (or leaving it and coming back) does not restart the grace period.
    let mut other = server.client("lisa").await;
    other.expect_line(&from_nickserv("lisa", warning)).await;
    other.send("NICK LISA").await;
    other.expect_line(":lisa!~lisa@127.0.0.1 NICK LISA").await;
    let renamed = other.next_line().await;
    let guest = renamed
        .strip_prefix(":LISA!~lisa@127.0.0.1 NICK ")
        .unwrap_or_else(|| panic!("{renamed}"))
        .to_owned();
    assert_eq!(guest.len(), 9, "{guest}");
    assert!(guest.starts_with("Guest"), "{guest}");
    other
        .expect_line(&from_nickserv(
            &guest,
            &format!("You did not identify in time, so your nick is now {guest}"),
        ))
        .await;
}

#[tokio::test]
async fn dropping_an_account_logs_out_every_connection_logged_in_to_it() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut first = server.client("mona").await;
    first.exchange("REGISTER * * monas-password").await;
    let mut second = server.client("mona2").await;
    second
        .exchange("PRIVMSG NickServ :IDENTIFY mona monas-password")
        .await;
    first.exchange("NS DROP monas-password").await;
    assert_eq!(
        second.sync().await,
        [numeric(
            "901",
            "mona2",
            "mona2!~mona2@127.0.0.1 :You are now logged out"
        )]
    );
    // A new account of the same name is not the old login's.
    let mut newcomer = server.client("newcomer").await;
    newcomer.exchange("NICK mona_").await;
    let whois = second.exchange("WHOIS mona2").await;
    assert!(!whois.iter().any(|l| l.contains(" 330 ")), "{whois:?}");
}

#[tokio::test]
async fn account_tag_marks_messages_from_logged_in_users_for_those_who_asked() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut tagged = server.client("tagged").await;
    tagged.exchange("CAP REQ :account-tag").await;
    let mut plain = server.client("plain").await;
    let mut nina = server.client("nina").await;
    nina.exchange("REGISTER * * ninas-password").await;
    for c in [&mut tagged, &mut plain, &mut nina] {
        join(c, "#room").await;
    }
    tagged.sync().await;
    plain.sync().await;
    nina.exchange("PRIVMSG #room :hello").await;
    nina.exchange("PRIVMSG tagged :psst").await;
    assert_eq!(
        tagged.sync().await,
        [
            "@account=nina :nina!~nina@127.0.0.1 PRIVMSG #room :hello",
            "@account=nina :nina!~nina@127.0.0.1 PRIVMSG tagged :psst",
        ]
    );
    assert_eq!(
        plain.sync().await,
        [":nina!~nina@127.0.0.1 PRIVMSG #room :hello"]
    );
    // Not logged in: no tag.
    plain.exchange("PRIVMSG #room :hi").await;
    assert_eq!(
        tagged.sync().await,
        [":plain!~plain@127.0.0.1 PRIVMSG #room :hi"]
    );
    // Every command of a logged-in user carries it, not only messages.
    nina.exchange("NICK nina2").await;
    nina.exchange("PART #room").await;
    assert_eq!(
        tagged.sync().await,
        [
            "@account=nina :nina!~nina@127.0.0.1 NICK nina2",
            "@account=nina :nina2!~nina@127.0.0.1 PART #room",
        ]
    );
    assert_eq!(
        plain.sync().await,
        [
            ":nina!~nina@127.0.0.1 NICK nina2",
            ":nina2!~nina@127.0.0.1 PART #room",
        ]
    );
}
