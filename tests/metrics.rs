//! /metrics read by a Prometheus text parser while clients connect, are
//! refused, log in, talk and overflow their sendq.
//!
//! The counters are the process's, so this file holds one test, and what
//! it measures moves by exactly what it did.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::http;
use common::{Client, TestServer, FAST_ACCOUNTS, SERVER, WAIT};
use prometheus_parse::{Scrape, Value};
use tokio::io::AsyncWriteExt;

struct Metrics(Scrape);

impl Metrics {
    async fn scrape(addr: SocketAddr) -> Metrics {
        let answer = http::get(addr, "/metrics").await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let lines = answer.body.lines().map(|line| Ok(line.to_owned()));
        Metrics(Scrape::parse(lines).expect("Prometheus text format"))
    }

    /// The value of `name` with exactly `labels`; fails if it is missing.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let sample = self
            .0
            .samples
            .iter()
            .find(|s| {
                s.metric == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .unwrap_or_else(|| panic!("no {name}{labels:?}"));
        match &sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is {other:?}"),
        }
    }

    fn histogram_count(&self, name: &str) -> f64 {
        let sample = self.0.samples.iter().find(|s| s.metric == name);
        match sample.map(|s| &s.value) {
            Some(Value::Histogram(buckets)) => {
                let last = buckets.last().expect("buckets");
                assert!(last.less_than.is_infinite());
                last.count
            }
            other => panic!("{name} is {other:?}"),
        }
    }
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

async fn registered_from(server: &TestServer, last: u8, nick: &str) -> Client {
    let mut client = Client::connect_from(server.addr, loopback(last)).await;
    client.register(nick).await;
    client
}

/// Polls /metrics until `done` holds, for at most [`WAIT`].
async fn scrape_until(addr: SocketAddr, done: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + WAIT;
    loop {
        let metrics = Metrics::scrape(addr).await;
        if done(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "{:#?}", metrics.0.samples);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_move_as_clients_connect_are_refused_log_in_talk_and_overflow() {
    let server = TestServer::start_with(&format!(
        "{FAST_ACCOUNTS}[limits]\nmax_clients = 4\nmax_clients_per_ip = 1\n\
         sendq_bytes = 4096\nsend_buffer_bytes = 4096\n\
         flood_burst = 5\nflood_lines_per_sec = 200\n"
    ))
    .await;
    let http_addr = server.http_addr();
    let plain = [("transport", "plain")];
    let before = Metrics::scrape(http_addr).await;
    assert_eq!(before.value("parlor_connections", &plain), 0.0);
    assert_eq!(before.value("parlor_channels", &[]), 0.0);

    // Two people talk in a channel.
    let mut alice = registered_from(&server, 2, "alice").await;
    let mut bob = registered_from(&server, 3, "bob").await;
    common::setup_channel("#room", &mut [&mut alice, &mut bob]).await;
    for i in 0..3 {
        alice.send(&format!("PRIVMSG #room :hello {i}")).await;
    }
    alice.send("NOTICE bob :psst").await;
    bob.skip_until(|l| l == ":alice!~alice@127.0.0.2 NOTICE bob :psst")
        .await;
    let talked = Metrics::scrape(http_addr).await;
    assert_eq!(talked.value("parlor_connections", &plain), 2.0);
    assert_eq!(talked.value("parlor_clients_registered", &[]), 2.0);
    assert_eq!(talked.value("parlor_channels", &[]), 1.0);
    let moved = |name: &str, labels: &[(&str, &str)]| {
        talked.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(moved("parlor_registrations_total", &[]), 2.0);
    assert_eq!(
        moved("parlor_messages_relayed_total", &[("command", "PRIVMSG")]),
        3.0
    );
    assert_eq!(
        moved("parlor_messages_relayed_total", &[("command", "NOTICE")]),
        1.0
    );
    // Three channel messages to bob, and the NOTICE.
    assert_eq!(moved("parlor_deliveries_total", &[]), 4.0);
    let bob_got: usize = bob.log.iter().map(|line| line.len() + 2).sum();
    assert!(
        moved("parlor_written_bytes_total", &[]) >= bob_got as f64,
        "bob alone read {bob_got} bytes"
    );
    // The channel's history reaches the database.
    let stored = scrape_until(http_addr, |m| {
        m.value("parlor_history_rows_written_total", &[])
            - before.value("parlor_history_rows_written_total", &[])
            >= 5.0
    })
    .await;
    assert!(
        stored.histogram_count("parlor_history_commit_duration_seconds")
            > before.histogram_count("parlor_history_commit_duration_seconds")
    );

    // A second connection from alice's address, then one past max_clients.
    let mut same_address = Client::connect_from(server.addr, loopback(2)).await;
    same_address
        .expect_line("ERROR :Too many connections from your address")
        .await;
    let _third = registered_from(&server, 4, "third").await;
    let _fourth = registered_from(&server, 5, "fourth").await;
    let mut fifth = Client::connect_from(server.addr, loopback(6)).await;
    fifth.expect_line("ERROR :Server is full").await;
    let refused = Metrics::scrape(http_addr).await;
    for (reason, count) in [("per_address", 1.0), ("full", 1.0), ("banned", 0.0)] {
        let labels = [("reason", reason)];
        assert_eq!(
            refused.value("parlor_connections_refused_total", &labels)
                - before.value("parlor_connections_refused_total", &labels),
            count,
            "{reason}"
        );
    }
    assert_eq!(
        refused.value("parlor_connections_accepted_total", &plain)
            - before.value("parlor_connections_accepted_total", &plain),
        6.0
    );
    assert_eq!(refused.value("parlor_connections", &plain), 4.0);
    drop((_third, _fourth));

    // Accounts: alice registers; bob fails to identify as her.
    let lines = alice.exchange("REGISTER * * alice-password").await;
    assert!(lines.iter().any(|l| l.contains(" 900 ")), "{lines:?}");
    bob.send("PRIVMSG NickServ :IDENTIFY alice wrong-password")
        .await;
    bob.skip_until(|l| l.contains("Invalid account name or password"))
        .await;
    let logged_in = scrape_until(http_addr, |m| m.value("parlor_connections", &plain) == 2.0).await;
    let login = |m: &Metrics, mechanism: &str, result: &str| {
        m.value(
            "parlor_logins_total",
            &[("mechanism", mechanism), ("result", result)],
        )
    };
    assert_eq!(
        login(&logged_in, "nickserv", "failure") - login(&before, "nickserv", "failure"),
        1.0
    );
    assert_eq!(logged_in.value("parlor_accounts_online", &[]), 1.0);
    assert_eq!(
        logged_in.value("parlor_account_registrations_total", &[])
            - before.value("parlor_account_registrations_total", &[]),
        1.0
    );

    // A second connection logs in to the same account with SASL PLAIN:
    // still one account online.
    let mut phone = Client::connect_from(server.addr, loopback(7)).await;
    phone.send("CAP REQ :sasl").await;
    phone.send("NICK phone").await;
    phone.send("USER phone 0 * :Phone").await;
    phone.send("AUTHENTICATE PLAIN").await;
    phone.skip_until(|l| l == "AUTHENTICATE +").await;
    // \0alice\0alice-password
    phone
        .send("AUTHENTICATE AGFsaWNlAGFsaWNlLXBhc3N3b3Jk")
        .await;
    phone.skip_until(|l| l.contains(" 903 ")).await;
    let both = Metrics::scrape(http_addr).await;
    assert_eq!(
        login(&both, "plain", "success") - login(&before, "plain", "success"),
        1.0
    );
    assert_eq!(both.value("parlor_accounts_online", &[]), 1.0);
    alice.send("QUIT").await;
    alice.read_to_end().await;
    phone.send("QUIT").await;
    phone.read_to_end().await;
    scrape_until(http_addr, |m| m.value("parlor_accounts_online", &[]) == 0.0).await;

    // Flood control holds lines back rather than dropping them, and says
    // how many it held.
    let held_before = Metrics::scrape(http_addr).await;
    let mut hasty = registered_from(&server, 9, "hasty").await;
    let pings: String = (0..30).map(|i| format!("PING p{i}\r\n")).collect();
    hasty.send_raw(pings.as_bytes()).await;
    let last_pong = format!(":{SERVER} PONG {SERVER} :p29");
    hasty.skip_until(|l| l == last_pong).await;
    let held = Metrics::scrape(http_addr)
        .await
        .value("parlor_flood_delayed_lines_total", &[])
        - held_before.value("parlor_flood_delayed_lines_total", &[]);
    assert!((20.0..=30.0).contains(&held), "{held}");
    hasty.send("QUIT").await;
    hasty.read_to_end().await;

    // A client that never reads is cut off when its sendq overflows.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(SocketAddr::new(loopback(8), 0)).unwrap();
    let mut deaf = tokio::time::timeout(WAIT, socket.connect(server.addr))
        .await
        .expect("connect in time")
        .expect("connect");
    deaf.write_all(b"NICK deaf\r\nUSER deaf 0 * :Deaf\r\n")
        .await
        .unwrap();
    scrape_until(http_addr, |m| {
        m.value("parlor_clients_registered", &[]) == 2.0
    })
    .await;
    let text = "x".repeat(400);
    let flood: String = (0..1000)
        .map(|_| format!("PRIVMSG deaf :{text}\r\n"))
        .collect();
    bob.send_raw(flood.as_bytes()).await;
    let overflowed = scrape_until(http_addr, |m| {
        m.value("parlor_sendq_disconnects_total", &[])
            > before.value("parlor_sendq_disconnects_total", &[])
    })
    .await;
    assert_eq!(
        overflowed.value("parlor_sendq_disconnects_total", &[])
            - before.value("parlor_sendq_disconnects_total", &[]),
        1.0
    );
    drop(deaf);

    // The process's own figures are there.
    assert!(overflowed.value("parlor_process_cpu_seconds_total", &[]) > 0.0);
    assert!(overflowed.value("parlor_process_resident_memory_bytes", &[]) > 1e6);
    assert!(overflowed.value("parlor_process_open_fds", &[]) >= 5.0);
    assert_eq!(
        overflowed.value("parlor_tls_handshake_failures_total", &[]),
        0.0
    );
    server.shutdown().await;
}
