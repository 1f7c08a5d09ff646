//! The login host (`accounts.login_host`) and how others learn of it:
//! CHGHOST for clients with chghost, a simulated reconnection for the rest.

mod common;
use common::*;

/// Cheap Argon2, no nick protection notices, and login hosts on.
const LOGIN_HOSTS: &str = "[accounts]\nargon2_memory_kib = 1024\nargon2_iterations = 1\n\
                           nick_protection = false\nlogin_host = \"user/{account}\"\n";

#[tokio::test]
async fn logging_in_shows_the_login_host_and_everyone_learns_it() {
    let server = TestServer::start_with(LOGIN_HOSTS).await;
    let mut alice = server.client_with_caps("alice", "chghost").await;
    let mut modern = server.client_with_caps("modern", "chghost").await;
    let mut plain = server
        .client_with_caps("plain", "extended-join away-notify")
        .await;
    setup_channel("#c", &mut [&mut alice, &mut modern, &mut plain]).await;
    alice.exchange("AWAY :lunch").await;
    plain.exchange("PING x").await;

    let lines = alice.exchange("REGISTER * * hunter22").await;
    let chghost = ":alice!~alice@127.0.0.1 CHGHOST ~alice user/alice";
    assert_eq!(
        lines,
        [
            format!(":{SERVER} REGISTER SUCCESS alice :Account successfully registered"),
            chghost.to_owned(),
            numeric("396", "alice", "user/alice :is now your displayed host"),
            numeric(
                "900",
                "alice",
                "alice!~alice@user/alice alice :You are now logged in as alice"
            ),
        ]
    );
    modern.expect_line(chghost).await;
    modern.expect_nothing().await;
    // Without chghost: alice leaves and comes back with her op and her away.
    assert_eq!(
        plain.sync().await,
        [
            ":alice!~alice@127.0.0.1 QUIT :Changing hostname".to_owned(),
            ":alice!~alice@user/alice JOIN #c alice :Real alice".to_owned(),
            format!(":{SERVER} MODE #c +o alice"),
            ":alice!~alice@user/alice AWAY :lunch".to_owned(),
        ]
    );
    // Logging out gives the address back.
    let lines = alice.exchange("PRIVMSG NickServ :LOGOUT").await;
    assert_eq!(
        lines[0],
        ":alice!~alice@user/alice CHGHOST ~alice 127.0.0.1"
    );
    assert_eq!(
        lines[1],
        numeric("396", "alice", "127.0.0.1 :is now your displayed host")
    );
    modern
        .expect_line(":alice!~alice@user/alice CHGHOST ~alice 127.0.0.1")
        .await;
}

#[tokio::test]
async fn a_login_during_registration_shows_in_the_welcome() {
    let server = TestServer::start_with(LOGIN_HOSTS).await;
    let mut alice = server.client("alice").await;
    alice.exchange("REGISTER * * hunter22").await;
    alice.send("QUIT").await;
    alice.read_to_end().await;

    let mut alice = alice_logging_in_with_sasl(&server, "chghost").await;
    let logged_in = alice.skip_until(|l| l.contains(" 900 ")).await;
    assert!(
        logged_in.contains(" alice!~alice@user/alice "),
        "{logged_in}"
    );
    alice.send("CAP END").await;
    let welcome = alice.expect_numeric("001").await;
    assert!(welcome.ends_with(" alice!~alice@user/alice"), "{welcome}");
    alice.skip_until(|l| l.contains(" 376 ")).await;
    alice.expect_nothing().await;
}

#[tokio::test]
async fn a_ban_on_the_address_holds_behind_the_login_host() {
    let server = TestServer::start_with(LOGIN_HOSTS).await;
    let mut op = server.client("op").await;
    join(&mut op, "#d").await;
    op.exchange("MODE #d +b *!*@127.0.0.1").await;
    let mut alice = server.client("alice").await;
    alice.exchange("REGISTER * * hunter22").await;
    assert_eq!(
        alice.exchange("JOIN #d").await,
        [numeric("474", "alice", "#d :Cannot join channel (+b)")]
    );
    // A ban on the login host holds too, and an exception on either lifts it.
    op.exchange("MODE #d -b+b *!*@127.0.0.1 *!*@user/alice")
        .await;
    assert_eq!(
        alice.exchange("JOIN #d").await,
        [numeric("474", "alice", "#d :Cannot join channel (+b)")]
    );
    op.exchange("MODE #d +e alice!*@127.0.0.1").await;
    let lines = alice.exchange("JOIN #d").await;
    assert_eq!(lines[0], ":alice!~alice@user/alice JOIN #d", "{lines:?}");
}
