//! The HTTP door over real sockets: /healthz, who may read /metrics, and
//! the limits that keep slow or large requests from holding it.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::http::{self, read_to_close};
use common::{tcp_connect, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

#[tokio::test]
async fn healthz_is_ok_while_the_server_accepts_and_its_database_writes() {
    let server = TestServer::start().await;
    let answer = http::get(server.http_addr(), "/healthz").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "ok\n");
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    server.shutdown().await;
}

#[tokio::test]
async fn healthz_is_503_with_the_reason_when_the_server_is_full() {
    let server = TestServer::start_with("[limits]\nmax_clients = 1\n").await;
    assert_eq!(http::get(server.http_addr(), "/healthz").await.status, 200);
    let _only_one = server.client("only").await;
    // The previous answer is kept for a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = http::get(server.http_addr(), "/healthz").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.starts_with("full: 1 connections"), "{answer:?}");
    server.shutdown().await;
}

/// Another process holding the database's write lock (an admin's
/// `sqlite3` session, a backup tool) makes it unwritable for the server.
#[tokio::test]
async fn healthz_is_503_while_the_database_refuses_writes_and_200_once_it_takes_them() {
    use sqlx::Connection as _;
    let server = TestServer::start().await;
    assert_eq!(http::get(server.http_addr(), "/healthz").await.status, 200);
    let path = server.data_dir.path().join("parlor.db");
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the server's database");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .expect("take the write lock");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let asked = Instant::now();
    let answer = http::get(server.http_addr(), "/healthz").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        answer.body.starts_with("database not writable"),
        "{answer:?}"
    );
    // The check gives up before SQLite's own 5 s wait.
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );

    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("let the lock go");
    holder.close().await.expect("close");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = http::get(server.http_addr(), "/healthz").await;
        if answer.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still {answer:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_answer_loopback_by_default_and_403_to_others() {
    let server = TestServer::start().await;
    let addr = server.http_addr();
    let answer = http::get(addr, "/metrics").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        answer.body.contains("\nparlor_channels 0\n"),
        "{}",
        answer.body
    );
    // 127.0.0.2 is loopback too: the default allows 127.0.0.0/8.
    assert_eq!(
        http::get_from(addr, loopback(2), "/metrics").await.status,
        200
    );
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_allow_takes_addresses_and_cidr_blocks() {
    let server =
        TestServer::start_with("[http]\nmetrics_allow = [\"127.0.0.0/30\", \"::1\"]\n").await;
    let addr = server.http_addr();
    for last in [1, 3] {
        let answer = http::get_from(addr, loopback(last), "/metrics").await;
        assert_eq!(answer.status, 200, "127.0.0.{last}: {answer:?}");
    }
    for last in [4, 200] {
        let answer = http::get_from(addr, loopback(last), "/metrics").await;
        assert_eq!(answer.status, 403, "127.0.0.{last}: {answer:?}");
        assert_eq!(
            answer.body,
            "/metrics answers only the addresses of http.metrics_allow\n"
        );
        assert!(!answer.body.contains("parlor_"));
    }
    // /healthz answers everyone.
    let answer = http::get_from(addr, loopback(200), "/healthz").await;
    assert_eq!(answer.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_metrics_listener_of_its_own_serves_metrics_to_anyone_and_nothing_else() {
    let server =
        TestServer::start_with("[http]\nmetrics_allow = []\nmetrics_listen = [\"127.0.0.1:0\"]\n")
            .await;
    let main = server.http_addr();
    let metrics = server.handle().metrics_addrs()[0];
    assert_ne!(main, metrics);
    assert_eq!(http::get(main, "/metrics").await.status, 403);
    let answer = http::get_from(metrics, loopback(9), "/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.contains("# TYPE parlor_connections gauge"));
    assert_eq!(http::get(metrics, "/healthz").await.status, 200);
    assert_eq!(http::get(metrics, "/nowhere").await.status, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let server = TestServer::start().await;
    let addr = server.http_addr();
    assert_eq!(http::get(addr, "/nowhere").await.status, 404);
    let answer = http::raw(
        addr,
        b"DELETE /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 405);
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_body_gets_413_before_it_is_sent() {
    let server = TestServer::start_with("[http]\nmax_body_bytes = 4096\n").await;
    let mut stream = tcp_connect(server.http_addr()).await;
    // The head says 10 MB are coming; none is sent.
    stream
        .write_all(b"POST /healthz HTTP/1.1\r\nHost: test\r\nContent-Length: 10000000\r\n\r\n")
        .await
        .unwrap();
    let answer = http::read_answer(&mut stream).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_body_at_the_limit_is_taken() {
    let server = TestServer::start_with("[http]\nmax_body_bytes = 4096\n").await;
    let mut request =
        b"POST /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 4096\r\n\r\n"
            .to_vec();
    request.extend_from_slice(&[b'x'; 4096]);
    let answer = http::raw(server.http_addr(), &request).await;
    assert_eq!(answer.status, 405, "{answer:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_head_gets_431() {
    let server = TestServer::start().await;
    let mut request = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: ".to_vec();
    request.extend_from_slice(&[b'a'; 20 * 1024]);
    request.extend_from_slice(b"\r\n\r\n");
    let answer = http::raw(server.http_addr(), &request).await;
    assert_eq!(answer.status, 431, "{answer:?}");
    server.shutdown().await;
}

/// Sends `bytes` one a second until the server closes the connection;
/// returns when it did, from the first byte, and what it answered.
async fn trickle(stream: &mut tokio::net::TcpStream, bytes: &[u8]) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    for byte in bytes {
        if stream.write_all(&[*byte]).await.is_err() {
            return (started.elapsed(), Vec::new());
        }
        if let Some(answer) = read_to_close(stream, Duration::from_secs(1)).await {
            return (started.elapsed(), answer);
        }
    }
    panic!("all {} bytes went through, one a second", bytes.len());
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off_at_the_header_timeout() {
    let server = TestServer::start_with("[http]\nheader_timeout_secs = 3\n").await;
    let mut stream = tcp_connect(server.http_addr()).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\nUser-Agent: slowloris\r\n\r\n";
    let (cut_after, answer) = trickle(&mut stream, request).await;
    assert!(
        cut_after >= Duration::from_millis(2500) && cut_after < Duration::from_millis(4500),
        "cut after {cut_after:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("200 OK"), "{answer}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_timeout() {
    let server = TestServer::start_with("[http]\nheader_timeout_secs = 2\n").await;
    let mut stream = tcp_connect(server.http_addr()).await;
    let started = Instant::now();
    let answer = read_to_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("closed within 5 s");
    let closed_after = started.elapsed();
    assert!(
        closed_after >= Duration::from_millis(1500) && closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}"
    );
    assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"));
    server.shutdown().await;
}

/// The server's routes read no body: a request whose body trickles is
/// answered at once, and the connection closed instead of draining it.
#[tokio::test]
async fn a_trickled_body_nobody_reads_does_not_hold_the_connection() {
    let server = TestServer::start().await;
    let mut stream = tcp_connect(server.http_addr()).await;
    stream
        .write_all(b"POST /healthz HTTP/1.1\r\nHost: test\r\nContent-Length: 60\r\n\r\n")
        .await
        .unwrap();
    let (cut_after, answer) = trickle(&mut stream, &[b'x'; 60]).await;
    assert!(
        cut_after < Duration::from_millis(2500),
        "cut after {cut_after:?}"
    );
    let answer = http::parse(&answer).expect("an answer");
    assert_eq!(answer.status, 405);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_past_the_limit_get_503_and_are_closed() {
    let server = TestServer::start_with("[http]\nmax_connections = 2\n").await;
    let addr = server.http_addr();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = tcp_connect(addr).await;
        // A keep-alive request answered, so the connection is surely
        // being served before the next one comes.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 512];
        let read = tokio::time::timeout(common::WAIT, stream.read(&mut buffer))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let answer = http::get(addr, "/healthz").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.body, "Too many connections\n");
    drop(held);
    let deadline = Instant::now() + common::WAIT;
    while http::get(addr, "/healthz").await.status != 200 {
        assert!(Instant::now() < deadline, "the slots never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_idle_http_connections_and_the_listener() {
    let server = TestServer::start().await;
    let addr = server.http_addr();
    let mut idle = tcp_connect(addr).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 512];
    let read = tokio::time::timeout(common::WAIT, idle.read(&mut buffer))
        .await
        .expect("an answer in time")
        .unwrap();
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
    // Answered and kept alive: now idle.
    let started = Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let rest = read_to_close(&mut idle, Duration::from_secs(2))
        .await
        .expect("the idle connection is closed");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
