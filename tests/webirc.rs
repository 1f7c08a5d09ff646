//! WEBIRC: a web gateway on loopback connects for its users and gives
//! each one's address and hostname, which then stand for the user in the
//! mask, WHOIS, WHO, bans and the per-address limit. Refusals end the
//! connection with `ERROR`.

mod common;
use common::*;

/// A gateway allowed from `hosts`, with password `password` (the hash of
/// [`OPER_CONFIG`]).
fn gateway_config(hosts: &str) -> String {
    format!(
        "[[webirc]]\nname = \"lounge\"\n\
         password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$n4eHqGrW919MBYj1WHAWrA$UdXnbhUtNg65M+NsaIbx/Ts16sPI5wCsaLnW01Y6pMw\"\n\
         hosts = {hosts}\n"
    )
}

/// A user `nick` connected through the gateway as `host`/`ip`; its welcome
/// (the 001 line) is returned and the rest of the burst read.
async fn through_gateway(
    server: &TestServer,
    nick: &str,
    host: &str,
    ip: &str,
) -> (Client, String) {
    let mut c = server.connect().await;
    // What gateways send, in one write: the server must apply WEBIRC
    // before the lines after it.
    c.send_raw(
        format!("WEBIRC password lounge {host} {ip} :remote-port=5555\r\nNICK {nick}\r\nUSER {nick} 0 * :Real {nick}\r\n")
            .as_bytes(),
    )
    .await;
    c.nick = nick.to_owned();
    let welcome = c.expect_numeric("001").await;
    c.skip_until(|l| l.contains(" 376 ") || l.contains(" 422 "))
        .await;
    (c, welcome)
}

#[tokio::test]
async fn a_gateways_user_is_shown_with_its_own_address_everywhere() {
    let server = TestServer::start_with(&gateway_config("[\"127.0.0.1\"]")).await;
    let (mut ana, welcome) =
        through_gateway(&server, "ana", "ana.users.example", "198.51.100.7").await;
    assert_eq!(
        welcome,
        numeric(
            "001",
            "ana",
            ":Welcome to the Parlor IRC Network ana!~ana@ana.users.example"
        )
    );
    // Her own WHOIS shows the address behind the host.
    let whois = ana.exchange("WHOIS ana").await;
    assert!(
        whois.contains(&numeric(
            "311",
            "ana",
            "ana ~ana ana.users.example * :Real ana"
        )),
        "{whois:?}"
    );
    assert!(
        whois.contains(&numeric("338", "ana", "ana 198.51.100.7 :Actual host")),
        "{whois:?}"
    );

    let mut bob = server.client("bob").await;
    let whois = bob.exchange("WHOIS ana").await;
    assert_eq!(
        whois[0],
        numeric("311", "bob", "ana ~ana ana.users.example * :Real ana")
    );
    let who = bob.exchange("WHO ana").await;
    assert_eq!(
        who[0],
        numeric(
            "352",
            "bob",
            "* ~ana ana.users.example irc.test ana H :0 Real ana"
        )
    );

    // A ban on her host keeps her out; the gateway's address is not hers.
    join(&mut bob, "#room").await;
    bob.exchange("MODE #room +b *!*@ana.users.example").await;
    assert_eq!(
        ana.exchange("JOIN #room").await,
        [numeric("474", "ana", "#room :Cannot join channel (+b)")]
    );
    bob.exchange("MODE #room -b *!*@ana.users.example").await;
    bob.exchange("MODE #room +b *!*@127.0.0.1").await;
    let lines = ana.exchange("JOIN #room").await;
    assert_eq!(
        lines[0], ":ana!~ana@ana.users.example JOIN #room",
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_hostname_that_cannot_be_shown_is_replaced_by_the_address() {
    let server = TestServer::start_with(&gateway_config("[\"127.0.0.1\"]")).await;
    let (_ana, welcome) = through_gateway(&server, "ana", "no_such@host", "2001:db8::7").await;
    assert_eq!(
        welcome,
        numeric(
            "001",
            "ana",
            ":Welcome to the Parlor IRC Network ana!~ana@2001:db8::7"
        )
    );
    // The spec has gateways write `::1` as `0::1`, which can stand as a
    // parameter; it is shown so too.
    let (_eve, welcome) = through_gateway(&server, "eve", "0::1", "0::1").await;
    assert_eq!(
        welcome,
        numeric(
            "001",
            "eve",
            ":Welcome to the Parlor IRC Network eve!~eve@0::1"
        )
    );
}

#[tokio::test]
async fn a_gateways_users_count_against_their_own_address_not_the_gateways() {
    let server = TestServer::start_with(&format!(
        "{}[limits]\nmax_clients_per_ip = 2\n",
        gateway_config("[\"127.0.0.1\"]")
    ))
    .await;
    // Three users through one gateway address, a limit of two: the
    // gateway's connections stop counting for it once they are someone's.
    let _ana1 = through_gateway(&server, "ana1", "a.example", "198.51.100.7").await;
    let _ana2 = through_gateway(&server, "ana2", "a.example", "198.51.100.7").await;
    let _bob = through_gateway(&server, "bob", "b.example", "203.0.113.9").await;
    let _direct = server.client("direct").await;

    let mut third = server.connect().await;
    third
        .send_raw(
            b"WEBIRC password lounge a.example 198.51.100.7\r\nNICK ana3\r\nUSER ana3 0 * :x\r\n",
        )
        .await;
    assert_eq!(
        third.read_to_end().await,
        ["ERROR :Closing link: 127.0.0.1 (Too many connections from your address)"]
    );
}

#[tokio::test]
async fn a_wrong_password_ends_the_connection_before_it_registers() {
    let server = TestServer::start_with(&gateway_config("[\"127.0.0.1\"]")).await;
    let mut c = server.connect().await;
    c.send_raw(b"WEBIRC hunter2 lounge ana.users.example 198.51.100.7\r\nNICK ana\r\nUSER ana 0 * :Ana\r\n")
        .await;
    assert_eq!(
        c.read_to_end().await,
        ["ERROR :Closing link: 127.0.0.1 (Invalid WebIRC password)"]
    );
    let mut bob = server.client("bob").await;
    assert_eq!(
        bob.exchange("WHOIS ana").await[0],
        numeric("401", "bob", "ana :No such nick/channel")
    );
}

#[tokio::test]
async fn a_gateway_connecting_from_another_address_is_refused() {
    let server = TestServer::start_with(&gateway_config("[\"127.0.0.2\"]")).await;
    let mut c = server.connect().await;
    c.send("WEBIRC password lounge ana.users.example 198.51.100.7")
        .await;
    assert_eq!(
        c.read_to_end().await,
        ["ERROR :Closing link: 127.0.0.1 (WEBIRC is not allowed from your address)"]
    );
    // From the address the block names, the same line is accepted.
    let mut c = Client::connect_from(server.addr, "127.0.0.2".parse().unwrap()).await;
    c.send("WEBIRC password lounge ana.users.example 198.51.100.7")
        .await;
    c.register("ana").await;
    let whois = c.exchange("WHOIS ana").await;
    assert_eq!(
        whois[0],
        numeric("311", "ana", "ana ~ana ana.users.example * :Real ana")
    );
}

#[tokio::test]
async fn webirc_after_registration_or_a_second_time_is_refused() {
    let server = TestServer::start_with(&gateway_config("[\"127.0.0.1\"]")).await;
    let mut registered = server.client("bob").await;
    assert_eq!(
        registered
            .exchange("WEBIRC password lounge ana.users.example 198.51.100.7")
            .await,
        [numeric("462", "bob", ":You may not reregister")]
    );
    assert_eq!(
        registered.exchange("WHOIS bob").await[0],
        numeric("311", "bob", "bob ~bob 127.0.0.1 * :Real bob")
    );

    let mut twice = server.connect().await;
    twice
        .send_raw(
            b"WEBIRC password lounge a.example 198.51.100.7\r\n\
              WEBIRC password lounge b.example 203.0.113.9\r\nNICK ana\r\nUSER ana 0 * :x\r\n",
        )
        .await;
    assert_eq!(
        twice.read_to_end().await,
        ["ERROR :Closing link: a.example (WEBIRC may be sent only once)"]
    );
}

#[tokio::test]
async fn malformed_webirc_lines_are_refused() {
    let server = TestServer::start_with(&gateway_config("[\"127.0.0.1\"]")).await;
    let mut short = server.connect().await;
    assert_eq!(
        short.exchange("WEBIRC password lounge host").await,
        [numeric("461", "*", "WEBIRC :Not enough parameters")]
    );
    let mut bad_ip = server.connect().await;
    bad_ip
        .send("WEBIRC password lounge host.example 198.51.100.300")
        .await;
    assert_eq!(
        bad_ip.read_to_end().await,
        ["ERROR :Closing link: 127.0.0.1 (Invalid IP address in WEBIRC)"]
    );
}

#[tokio::test]
async fn without_webirc_blocks_nobody_may_use_it() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send("WEBIRC password lounge ana.users.example 198.51.100.7")
        .await;
    assert_eq!(
        c.read_to_end().await,
        ["ERROR :Closing link: 127.0.0.1 (WEBIRC is not allowed from your address)"]
    );
}

#[tokio::test]
async fn the_secure_flag_of_a_loopback_gateway_marks_its_user_secure() {
    let server = TestServer::start_with(&gateway_config("[\"127.0.0.1\"]")).await;
    let mut sam = server.connect().await;
    sam.send_raw(
        b"WEBIRC password lounge s.example 198.51.100.8 :secure remote-port=1\r\n\
          NICK sam\r\nUSER sam 0 * :Real sam\r\n",
    )
    .await;
    sam.nick = "sam".to_owned();
    sam.skip_until(|l| l.contains(" 376 ") || l.contains(" 422 "))
        .await;
    let whois = sam.exchange("WHOIS sam").await;
    assert!(
        whois.contains(&numeric("671", "sam", "sam :is using a secure connection")),
        "{whois:?}"
    );
    // Without the flag, the same gateway's user is not.
    let (mut ana, _) = through_gateway(&server, "ana", "a.example", "198.51.100.7").await;
    let whois = ana.exchange("WHOIS ana").await;
    assert!(!whois.iter().any(|l| l.contains(" 671 ")), "{whois:?}");
}
