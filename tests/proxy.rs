//! The PROXY protocol on a listener marked `proxy = true`: the header a
//! load balancer opens the connection with gives the client's address,
//! which then stands for the client in the mask, WHOIS and the
//! per-address limit. A bad header, or none in time, closes the
//! connection unanswered; a plain listener reads no header at all.

mod common;
use common::*;

use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// A server with a plain listener and a PROXY one, and `extra`.
async fn server_with_proxy_listener(listener: &str, extra: &str) -> (TestServer, SocketAddr) {
    let server = TestServer::start_with(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\", {listener}]\n{extra}"
    ))
    .await;
    let proxied = server.handle().local_addrs()[1];
    (server, proxied)
}

const PROXY_LISTENER: &str = "{ address = \"127.0.0.1:0\", proxy = true }";

/// A version 2 header: `command` (0 LOCAL, 1 PROXY), `family`, `block`.
fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.push(0x20 | command);
    header.push(family);
    header.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    header.extend_from_slice(block);
    header
}

fn v2_tcp4(source: [u8; 4], port: u16) -> Vec<u8> {
    let mut block = source.to_vec();
    block.extend_from_slice(&[127, 0, 0, 1]);
    block.extend_from_slice(&port.to_be_bytes());
    block.extend_from_slice(&6667u16.to_be_bytes());
    v2(1, 0x11, &block)
}

fn v2_tcp6(source: &str, port: u16) -> Vec<u8> {
    let mut block = source.parse::<Ipv6Addr>().unwrap().octets().to_vec();
    block.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    block.extend_from_slice(&port.to_be_bytes());
    block.extend_from_slice(&6667u16.to_be_bytes());
    v2(1, 0x21, &block)
}

/// Sends `header` and registration in one write, as a balancer passing
/// on a client's first segment does; returns the client and the host of
/// its welcome.
async fn register_behind(addr: SocketAddr, header: &[u8], nick: &str) -> (Client, String) {
    let mut c = Client::connect(addr).await;
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(format!("NICK {nick}\r\nUSER {nick} 0 * :Real {nick}\r\n").as_bytes());
    c.send_raw(&bytes).await;
    c.nick = nick.to_owned();
    let welcome = c.expect_numeric("001").await;
    let host = welcome
        .rsplit_once('@')
        .map(|(_, host)| host.to_owned())
        .unwrap_or_else(|| panic!("no mask in {welcome:?}"));
    c.skip_until(|l| l.contains(" 376 ") || l.contains(" 422 "))
        .await;
    (c, host)
}

/// The address WHOIS shows the client itself (`338`).
async fn actual_address(c: &mut Client) -> String {
    let nick = c.nick.clone();
    let whois = c.exchange(&format!("WHOIS {nick}")).await;
    let prefix = format!(":{SERVER} 338 {nick} {nick} ");
    let line = whois
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no 338 in {whois:?}"));
    line[prefix.len()..].split(' ').next().unwrap().to_owned()
}

#[tokio::test]
async fn version_1_gives_the_clients_ipv4_or_ipv6_address() {
    let (server, proxied) = server_with_proxy_listener(PROXY_LISTENER, "").await;
    let (mut ana, host) = register_behind(
        proxied,
        b"PROXY TCP4 198.51.100.3 127.0.0.1 56324 6667\r\n",
        "ana",
    )
    .await;
    assert_eq!(host, "198.51.100.3");
    assert_eq!(actual_address(&mut ana).await, "198.51.100.3");

    let (mut bob, host) =
        register_behind(proxied, b"PROXY TCP6 2001:db8::7 ::1 56324 6667\r\n", "bob").await;
    assert_eq!(host, "2001:db8::7");
    assert_eq!(actual_address(&mut bob).await, "2001:db8::7");

    // Others see the same, and the plain listener beside it is unchanged.
    let mut eve = server.client("eve").await;
    assert_eq!(
        eve.exchange("WHOIS ana").await[0],
        numeric("311", "eve", "ana ~ana 198.51.100.3 * :Real ana")
    );
    assert_eq!(actual_address(&mut eve).await, "127.0.0.1");
}

#[tokio::test]
async fn version_2_gives_the_clients_ipv4_or_ipv6_address() {
    let (_server, proxied) = server_with_proxy_listener(PROXY_LISTENER, "").await;
    let (mut ana, host) = register_behind(proxied, &v2_tcp4([203, 0, 113, 7], 40000), "ana").await;
    assert_eq!(host, "203.0.113.7");
    assert_eq!(actual_address(&mut ana).await, "203.0.113.7");

    let (_bob, host) = register_behind(proxied, &v2_tcp6("2001:db8:1::9", 40001), "bob").await;
    assert_eq!(host, "2001:db8:1::9");
}

#[tokio::test]
async fn local_and_unknown_headers_keep_the_connections_own_address() {
    let (_server, proxied) = server_with_proxy_listener(PROXY_LISTENER, "").await;
    // A balancer's health check: LOCAL, here with an address block that
    // must be skipped, not believed.
    let local = v2(0, 0x11, &[198, 51, 100, 3, 127, 0, 0, 1, 0, 1, 0, 2]);
    let (_ana, host) = register_behind(proxied, &local, "ana").await;
    assert_eq!(host, "127.0.0.1");
    let (_bob, host) = register_behind(proxied, b"PROXY UNKNOWN\r\n", "bob").await;
    assert_eq!(host, "127.0.0.1");
}

#[tokio::test]
async fn the_real_address_counts_for_the_per_address_limit() {
    let (_server, proxied) =
        server_with_proxy_listener(PROXY_LISTENER, "[limits]\nmax_clients_per_ip = 1\n").await;
    // All from 127.0.0.1, two clients: the balancer's address is nobody's.
    let header = b"PROXY TCP4 198.51.100.3 127.0.0.1 1000 6667\r\n";
    let (_ana, _) = register_behind(proxied, header, "ana").await;
    let (_bob, _) = register_behind(proxied, &v2_tcp4([198, 51, 100, 4], 1001), "bob").await;
    let mut again = Client::connect(proxied).await;
    again.send_raw(header).await;
    assert_eq!(
        again.read_to_end().await,
        ["ERROR :Too many connections from your address"]
    );
}

#[tokio::test]
async fn a_bad_header_closes_the_connection_unanswered() {
    let (_server, proxied) = server_with_proxy_listener(PROXY_LISTENER, "").await;
    let oversized = {
        let mut header = v2(1, 0x11, &[]);
        header[14..16].copy_from_slice(&4096u16.to_be_bytes());
        header
    };
    for bad in [
        &b"NICK ana\r\nUSER ana 0 * :Ana\r\n"[..],
        b"PROXY TCP4 198.51.100.3 127.0.0.1 56324\r\nNICK ana\r\n",
        b"PROXY TCP4 198.51.100.3 127.0.0.1 56324 6667\nNICK ana\r\n",
        b"PROXY TCP6 198.51.100.3 127.0.0.1 56324 6667\r\n",
        &oversized,
        &v2(2, 0x11, &[0; 12]),
    ] {
        let mut c = Client::connect(proxied).await;
        c.send_raw(bad).await;
        assert_eq!(
            c.read_to_end().await,
            Vec::<String>::new(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[tokio::test]
async fn a_header_from_outside_proxy_from_is_not_believed() {
    let (_server, proxied) = server_with_proxy_listener(
        "{ address = \"127.0.0.1:0\", proxy = true, proxy_from = [\"127.0.0.2\"] }",
        "",
    )
    .await;
    let header = b"PROXY TCP4 198.51.100.3 127.0.0.1 56324 6667\r\n";
    let mut stranger = Client::connect(proxied).await;
    stranger.send_raw(header).await;
    assert_eq!(stranger.read_to_end().await, Vec::<String>::new());

    let mut balancer = Client::connect_from(proxied, "127.0.0.2".parse().unwrap()).await;
    balancer.send_raw(header).await;
    balancer.register("ana").await;
    assert_eq!(actual_address(&mut balancer).await, "198.51.100.3");
}

#[tokio::test]
async fn a_header_that_does_not_come_in_time_closes_the_connection() {
    let (_server, proxied) = server_with_proxy_listener(PROXY_LISTENER, "").await;
    let mut slow = Client::connect(proxied).await;
    let started = Instant::now();
    // The start of a header, and then nothing.
    slow.send_raw(b"PROXY TCP4 198.51.").await;
    assert_eq!(slow.read_to_end().await, Vec::<String>::new());
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(4500)..WAIT).contains(&waited),
        "closed after {waited:?}, not the header timeout's 5 s"
    );
}

#[tokio::test]
async fn a_plain_listener_takes_proxy_for_an_unknown_command() {
    let (server, _proxied) = server_with_proxy_listener(PROXY_LISTENER, "").await;
    let mut c = server.connect().await;
    assert_eq!(
        c.exchange("PROXY TCP4 198.51.100.3 127.0.0.1 56324 6667")
            .await,
        [numeric("421", "*", "PROXY :Unknown command")]
    );
    c.register("ana").await;
    assert_eq!(actual_address(&mut c).await, "127.0.0.1");
}
