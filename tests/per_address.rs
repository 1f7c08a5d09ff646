//! The per-address connection limit over IPv6: connections from `::1` count
//! against its /64 (`limits.ipv6_prefix_len`), are refused past
//! `limits.max_clients_per_ip`, and give their place back when they leave.
//! Only `::1` can connect here, so the grouping of different addresses of
//! one /64 is checked inside the crate (`server::per_address`, and the
//! admission test in `server/connection.rs`).

mod common;
use common::*;

use std::net::SocketAddr;

/// A server on `[::1]:0`. A machine without IPv6 loopback fails the test
/// rather than skipping it.
async fn ipv6_server(extra: &str) -> TestServer {
    if let Err(error) = std::net::TcpListener::bind("[::1]:0") {
        panic!(
            "this test needs IPv6 on loopback ([::1]: {error}); turn it on with \
             `sysctl -w net.ipv6.conf.lo.disable_ipv6=0`"
        );
    }
    let config = format!("[server]\nlisten = [\"[::1]:0\"]\n{extra}");
    TestServer::start_with(&config).await
}

async fn register(addr: SocketAddr, nick: &str) -> Client {
    let mut c = Client::connect(addr).await;
    c.send(&format!("NICK {nick}")).await;
    c.send(&format!("USER {nick} 0 * :Real {nick}")).await;
    // `::1` cannot stand as a parameter; it is shown as `0::1`.
    c.expect_line(&numeric(
        "001",
        nick,
        &format!(":Welcome to the Parlor IRC Network {nick}!~{nick}@0::1"),
    ))
    .await;
    c.nick = nick.to_owned();
    c.skip_until(|l| l.contains(" 376 ")).await;
    c
}

#[tokio::test]
async fn connections_from_one_ipv6_prefix_are_limited_together() {
    let server = ipv6_server("[limits]\nmax_clients_per_ip = 2\nipv6_prefix_len = 64\n").await;
    assert!(server.addr.is_ipv6());
    let mut first = register(server.addr, "one").await;
    let _second = register(server.addr, "two").await;
    let mut third = Client::connect(server.addr).await;
    assert_eq!(
        third.read_to_end().await,
        ["ERROR :Too many connections from your address"]
    );
    // One leaves: its place in the group is free again.
    first.send("QUIT").await;
    first.read_to_end().await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut again = Client::connect(server.addr).await;
        again.send("PING x").await;
        match again.try_next_line().await {
            Some(line) if line == format!(":{SERVER} PONG {SERVER} :x") => break,
            other => assert!(
                std::time::Instant::now() < deadline,
                "the group's place never came back: {other:?}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_prefix_of_128_bits_still_counts_the_address() {
    let server = ipv6_server("[limits]\nmax_clients_per_ip = 1\nipv6_prefix_len = 128\n").await;
    let _only = register(server.addr, "only").await;
    let mut refused = Client::connect(server.addr).await;
    assert_eq!(
        refused.read_to_end().await,
        ["ERROR :Too many connections from your address"]
    );
}
