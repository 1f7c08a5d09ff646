//! ChanServ: registering channels, access applied on join, and a
//! registered channel's topic, modes and lists surviving a restart.

mod common;
use common::*;

fn from_chanserv(nick: &str, text: &str) -> String {
    format!(":ChanServ!ChanServ@services. NOTICE {nick} :{text}")
}

#[tokio::test]
async fn a_founder_registers_a_channel_and_access_is_applied_on_join() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut anna = server.account_holder("anna").await;
    let mut ben = server.account_holder("ben").await;
    join(&mut anna, "#club").await;

    // Not an operator there, not logged in: refused.
    let mut guest = server.client("guest").await;
    assert_eq!(
        guest.exchange("PRIVMSG ChanServ :REGISTER #club").await,
        [from_chanserv(
            "guest",
            "Log in first: /msg NickServ IDENTIFY <password>"
        )]
    );
    assert_eq!(
        ben.exchange("CS REGISTER #club").await,
        [from_chanserv(
            "ben",
            "You must be a channel operator in #club to register it"
        )]
    );
    assert_eq!(
        anna.exchange("CS REGISTER #club").await,
        [from_chanserv("anna", "#club is now registered to anna")]
    );
    assert_eq!(
        anna.exchange("CS REGISTER #club").await,
        [from_chanserv("anna", "#club is already registered")]
    );
    assert_eq!(
        ben.exchange("CS ACCESS #club ADD ben op").await,
        [from_chanserv(
            "ben",
            "Only the founder of #club may do that"
        )]
    );
    assert_eq!(
        anna.exchange("CS ACCESS #club ADD ben op").await,
        [from_chanserv("anna", "ben now gets op on #club")]
    );
    assert_eq!(
        anna.exchange("CS ACCESS #club ADD nobody voice").await,
        [from_chanserv("anna", "nobody is not a registered account")]
    );

    // ben joins and ChanServ ops him.
    let lines = ben.exchange("JOIN #club").await;
    assert_eq!(lines[0], ":ben!~ben@127.0.0.1 JOIN #club");
    assert_eq!(lines[1], ":ChanServ!ChanServ@services. MODE #club +o ben");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" 353 ") && l.contains("@ben")),
        "{lines:?}"
    );
    assert_eq!(
        anna.sync().await,
        [
            ":ben!~ben@127.0.0.1 JOIN #club",
            ":ChanServ!ChanServ@services. MODE #club +o ben",
        ]
    );

    let list = anna.exchange("CS ACCESS #club LIST").await;
    assert_eq!(
        list,
        [
            from_chanserv("anna", "Access to #club:"),
            from_chanserv("anna", "  anna (founder)"),
            from_chanserv("anna", "  ben (op)"),
            from_chanserv("anna", "End of access list"),
        ]
    );
    // Op access lets ben use OP/DEOP; guest has none.
    assert_eq!(
        ben.exchange("CS DEOP #club anna").await,
        [":ChanServ!ChanServ@services. MODE #club -o anna"]
    );
    assert_eq!(
        guest.exchange("CS OP #club").await,
        [from_chanserv("guest", "You need op access to #club")]
    );
    anna.sync().await;
    assert_eq!(
        anna.exchange("CS OP #club").await,
        [":ChanServ!ChanServ@services. MODE #club +o anna"]
    );
    let info = guest.exchange("CS INFO #club").await;
    assert_eq!(info[0], from_chanserv("guest", "Channel: #club"));
    assert_eq!(info[1], from_chanserv("guest", "Founder: anna"));
    assert_eq!(info[3], from_chanserv("guest", "Access entries: 1"));
}

#[tokio::test]
async fn a_registered_channel_keeps_its_topic_modes_and_lists_across_a_restart() {
    // Without the restart's own snapshots, so that the registration alone
    // must bring the state back.
    let server = TestServer::start_with(&format!(
        "{FAST_ACCOUNTS}[channels]\nrestart_wait_secs = 0\n"
    ))
    .await;
    let mut anna = server.account_holder("anna").await;
    join(&mut anna, "#club").await;
    anna.exchange("CS REGISTER #club").await;
    anna.exchange("TOPIC #club :Welcome to the club").await;
    anna.exchange("MODE #club +ik-t sesame").await;
    anna.exchange("MODE #club +b bad!*@*").await;
    // Changes are written in the background; give the writer its turn.
    anna.exchange("CS INFO #club").await;
    drop(anna);

    let server = server.restart().await;
    // Someone without access recreates the channel: no ops for them, and
    // the key and invite-only mode are back.
    let mut guest = server.client("guest").await;
    assert_eq!(
        guest.exchange("JOIN #club").await,
        [numeric("473", "guest", "#club :Cannot join channel (+i)")]
    );
    let mut anna = server.client("anna").await;
    anna.exchange("PRIVMSG NickServ :IDENTIFY anna-password")
        .await;
    let lines = anna.exchange("JOIN #club sesame").await;
    assert_eq!(lines[1], ":ChanServ!ChanServ@services. MODE #club +o anna");
    assert!(
        lines.contains(&numeric("332", "anna", "#club :Welcome to the club")),
        "{lines:?}"
    );
    assert_eq!(
        anna.exchange("MODE #club").await[0],
        numeric("324", "anna", "#club +ink sesame")
    );
    let bans = anna.exchange("MODE #club +b").await;
    assert!(
        bans[0].starts_with(&numeric("367", "anna", "#club bad!*@* ")),
        "{bans:?}"
    );
}

#[tokio::test]
async fn a_founder_drops_a_channel() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut anna = server.account_holder("anna").await;
    join(&mut anna, "#club").await;
    anna.exchange("CS REGISTER #club").await;
    assert_eq!(
        anna.exchange("PRIVMSG ChanServ :DROP #club").await,
        [from_chanserv("anna", "#club is no longer registered")]
    );
    assert_eq!(
        anna.exchange("CS INFO #club").await,
        [from_chanserv("anna", "#club is not registered")]
    );
    assert_eq!(
        anna.exchange("NICK ChanServ").await,
        [numeric("432", "anna", "ChanServ :Erroneous nickname")]
    );
}
