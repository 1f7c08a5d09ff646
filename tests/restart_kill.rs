//! A server killed with SIGKILL brings its channels back too, as they were
//! a commit interval before the kill: topic, modes, history, and the
//! status of the members who come back.

mod common;
use common::*;

use std::net::SocketAddr;
use std::time::Instant;

/// Waits (bounded) until the saved snapshot of `channel` is as `wanted`
/// says (`None` when there is none): the server saves it a moment after
/// each change.
async fn wait_until_saved(
    data_dir: &std::path::Path,
    channel: &str,
    wanted: impl Fn(Option<&str>) -> bool,
) {
    let path = data_dir.join("parlor.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let saved: Option<String> =
            sqlx::query_scalar("SELECT snapshot FROM channel_snapshots WHERE name_folded = ?")
                .bind(channel)
                .fetch_optional(&pool)
                .await
                .unwrap();
        if wanted(saved.as_deref()) {
            break;
        }
        assert!(Instant::now() < deadline, "{channel} was never saved so");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    pool.close().await;
}

#[tokio::test]
async fn a_killed_server_brings_its_channels_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = process::Running::start(dir.path(), port, FAST_ACCOUNTS);

    let mut anna = connect_with_retry(addr).await;
    anna.register("anna").await;
    let lines = anna.exchange("REGISTER * * anna-password").await;
    assert!(lines.iter().any(|l| l.contains(" 900 ")), "{lines:?}");
    let mut ben = Client::connect(addr).await;
    ben.register("ben").await;
    setup_channel("#room", &mut [&mut anna, &mut ben]).await;
    anna.exchange("TOPIC #room :Still here").await;
    anna.exchange("MODE #room +v ben").await;
    anna.exchange("MODE #room +k sesame").await;
    for n in 0..20 {
        anna.exchange(&format!("PRIVMSG #room :message {n}")).await;
    }
    ben.sync().await;
    let before = anna.exchange("MODE #room").await;
    let needles = ["Still here", "sesame", "\"voice\":true"];
    wait_until_saved(dir.path(), "#room", |saved| {
        saved.is_some_and(|s| needles.iter().all(|n| s.contains(n)))
    })
    .await;
    // History is written on the same interval: CHATHISTORY waits for it.
    anna.exchange("CHATHISTORY LATEST #room * 1").await;

    server.kill_hard();
    drop((anna, ben));
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _server = process::Running::start(dir.path(), port, FAST_ACCOUNTS);

    let mut ben = connect_with_retry(addr).await;
    ben.register("ben").await;
    let lines = ben.exchange("JOIN #room").await;
    assert_eq!(lines[0], ":ben!~ben@127.0.0.1 JOIN #room");
    assert_eq!(lines[1], ":irc.test MODE #room +v ben");
    assert_eq!(lines[2], numeric("332", "ben", "#room :Still here"));
    let said: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains(" PRIVMSG #room :"))
        .map(|l| l.rsplit_once(" :").unwrap().1)
        .collect();
    let expected: Vec<String> = (5..20).map(|n| format!("message {n}")).collect();
    assert_eq!(said, expected, "{lines:?}");

    let mut anna = Client::connect(addr).await;
    anna.register("anna").await;
    anna.exchange("PRIVMSG NickServ :IDENTIFY anna-password")
        .await;
    let lines = anna.exchange("JOIN #room").await;
    assert_eq!(lines[1], ":irc.test MODE #room +o anna");
    assert_eq!(anna.exchange("MODE #room").await, before);
}

#[tokio::test]
async fn a_channel_that_emptied_before_a_kill_stays_gone() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = process::Running::start(dir.path(), port, FAST_ACCOUNTS);
    let mut anna = connect_with_retry(addr).await;
    anna.register("anna").await;
    anna.exchange("JOIN #gone").await;
    anna.exchange("PRIVMSG #gone :said before").await;
    wait_until_saved(dir.path(), "#gone", |saved| saved.is_some()).await;
    anna.exchange("PART #gone").await;
    // Forgotten a moment later, as its history's privacy asks.
    wait_until_saved(dir.path(), "#gone", |saved| saved.is_none()).await;

    server.kill_hard();
    drop(anna);
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _server = process::Running::start(dir.path(), port, FAST_ACCOUNTS);
    let mut ben = connect_with_retry(addr).await;
    ben.register("ben").await;
    let lines = ben.exchange("JOIN #gone").await;
    let names = lines.iter().find(|l| l.contains(" 353 ")).unwrap();
    assert_names(names, "ben", "=", "#gone", &["@ben"]);
    assert!(
        !lines.iter().any(|l| l.contains("said before")),
        "{lines:?}"
    );
}
