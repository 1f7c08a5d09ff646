//! A server killed with SIGKILL in the middle of a burst loses at most its
//! last commit interval of history: every message a member had received
//! well before the kill is in the database afterwards.

mod common;
use common::*;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

/// The messages sent in the burst.
const BURST: usize = 3_000;
/// The kill comes once the member has received this many.
const KILL_AFTER: usize = 1_500;
/// `history.commit_interval_ms` in this test's server (the default).
const COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// What a message may have waited beyond the interval, on a loaded test
/// machine, and still be missing: the commit under way and scheduling.
const SLACK: Duration = Duration::from_millis(900);

#[tokio::test]
async fn a_killed_server_loses_at_most_its_last_commit_interval() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = process::Running::start(dir.path(), port, "");

    let mut member = connect_with_retry(addr).await;
    member.register("member").await;
    member.exchange("JOIN #c").await;
    // A bare socket: it must keep writing while the server dies under it.
    let mut sender = tokio::net::TcpStream::connect(addr).await.unwrap();
    sender
        .write_all(b"NICK sender\r\nUSER sender 0 * :Sender\r\nJOIN #c\r\n")
        .await
        .unwrap();
    member.next_line().await; // sender's JOIN

    // 100 messages every 20 ms: the burst spans several commit intervals.
    let sending = tokio::spawn(async move {
        for chunk in 0..BURST / 100 {
            let lines: String = (chunk * 100..(chunk + 1) * 100)
                .map(|n| format!("PRIVMSG #c :{n}\r\n"))
                .collect();
            if sender.write_all(lines.as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut received_at = Vec::with_capacity(KILL_AFTER);
    while received_at.len() < KILL_AFTER {
        let line = member.next_line().await;
        let text = line.rsplit(':').next().unwrap();
        assert_eq!(text, received_at.len().to_string(), "in order");
        received_at.push(Instant::now());
    }
    server.kill_hard();
    let killed_at = Instant::now();

    // The database after the kill, read as it is (SQLite recovers its
    // write-ahead log on open).
    let stored = stored_texts(&dir.path().join("parlor.db")).await;

    let missing: Vec<usize> = (0..KILL_AFTER).filter(|n| !stored.contains(n)).collect();
    let oldest_missing = missing.first().map(|&n| killed_at - received_at[n]);
    eprintln!(
        "hard kill: {} of {KILL_AFTER} received messages missing from the database; \
         the oldest missing was received {oldest_missing:?} before the kill; {} stored in all",
        missing.len(),
        stored.len()
    );
    if let Some(age) = oldest_missing {
        assert!(
            age <= COMMIT_INTERVAL + SLACK,
            "message {} was received {age:?} before the kill and is lost",
            missing[0]
        );
    }
    // What is stored is a prefix: nothing after a gap.
    let expected_prefix: Vec<usize> = (0..stored.len()).collect();
    assert_eq!(stored, expected_prefix, "no holes in what was kept");
    assert!(
        stored.len() >= KILL_AFTER / 2,
        "the burst took several commit intervals, so most of it is stored"
    );
    // The sender's task ends on its own once the server is gone.
    let _ = tokio::time::timeout(WAIT, sending).await;
}

/// The numbers of every PRIVMSG stored for #c.
async fn stored_texts(database: &std::path::Path) -> Vec<usize> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", database.display()))
        .await
        .expect("open the database");
    let lines: Vec<String> =
        sqlx::query_scalar("SELECT line FROM history WHERE target = '#c' AND command = 'PRIVMSG'")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    let mut texts: Vec<usize> = lines
        .iter()
        .map(|line| line.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    texts.sort_unstable();
    texts
}
