//! `parlor backup`: a copy of the database taken while the server runs
//! (and writes), opened afterwards as a restore would open it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use parlor::store::backup::{backup, BackupError};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

const BIN: &str = env!("CARGO_BIN_EXE_parlor");

/// alice (an account) and bob say three lines in #ops; returns once the
/// history writer has committed them.
async fn chat_that_is_stored(server: &TestServer) -> (Client, Client) {
    let mut alice = server.account_holder("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#ops", &mut [&mut alice, &mut bob]).await;
    for text in ["one", "two", "three"] {
        alice.send(&format!("PRIVMSG #ops :{text}")).await;
        bob.expect_line(&format!(":{} PRIVMSG #ops :{text}", alice.mask()))
            .await;
    }
    wait_for_stored_messages(server, 3).await;
    (alice, bob)
}

/// Waits until the server's database holds `count` messages of #ops.
async fn wait_for_stored_messages(server: &TestServer, count: i64) {
    let mut database = open_copy(&server.data_dir.path().join("parlor.db")).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let stored: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM history WHERE target = '#ops' AND command = 'PRIVMSG'",
        )
        .fetch_one(&mut database)
        .await
        .unwrap();
        if stored >= count {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{stored} of {count} lines stored"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    database.close().await.unwrap();
}

/// Opens a database read-only, as the server's tables are read here.
async fn open_copy(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .expect("the copy opens")
}

/// What a restore would bring back: the accounts and #ops' messages.
async fn accounts_and_messages(copy: &mut SqliteConnection) -> (Vec<String>, Vec<String>) {
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut *copy)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let accounts = sqlx::query_scalar("SELECT name FROM accounts ORDER BY name")
        .fetch_all(&mut *copy)
        .await
        .unwrap();
    let messages = sqlx::query_scalar(
        "SELECT line FROM history WHERE target = '#ops' AND command = 'PRIVMSG' ORDER BY msgid",
    )
    .fetch_all(&mut *copy)
    .await
    .unwrap();
    (accounts, messages)
}

/// The stored form of alice's lines: with her `account` tag (the
/// `time` and `msgid` tags are made again from the id when read).
fn said(alice: &Client, texts: &[&str]) -> Vec<String> {
    texts
        .iter()
        .map(|text| format!("account=alice :{} PRIVMSG #ops :{text}", alice.mask()))
        .collect()
}

#[tokio::test]
async fn a_backup_taken_while_the_server_runs_holds_what_was_written() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let (mut alice, mut bob) = chat_that_is_stored(&server).await;
    let target = tempfile::tempdir().unwrap();
    let copy_path = target.path().join("parlor-backup.db");

    let bytes = backup(server.data_dir.path(), &copy_path, false)
        .await
        .expect("backup");
    assert_eq!(bytes, std::fs::metadata(&copy_path).unwrap().len());

    // The server goes on as if nothing happened.
    alice.send("PRIVMSG #ops :four").await;
    bob.expect_line(&format!(":{} PRIVMSG #ops :four", alice.mask()))
        .await;

    let mut copy = open_copy(&copy_path).await;
    let (accounts, messages) = accounts_and_messages(&mut copy).await;
    assert_eq!(accounts, ["alice"]);
    assert_eq!(messages, said(&alice, &["one", "two", "three"]));
    // A single file: nothing of it waits in a log beside it.
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut copy)
        .await
        .unwrap();
    assert_eq!(journal, "delete");
    copy.close().await.unwrap();
    let mut leftovers: Vec<_> = std::fs::read_dir(target.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    leftovers.sort();
    assert_eq!(leftovers, ["parlor-backup.db"]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_backup_taken_under_a_flood_is_one_consistent_moment() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    setup_channel("#ops", &mut [&mut alice, &mut bob]).await;
    let target = tempfile::tempdir().unwrap();
    let copy_path = target.path().join("copy.db");

    // 2,000 lines over about half a second, while the copy is taken: the
    // commits go on.
    let flood = tokio::spawn(async move {
        for n in 0..2_000 {
            alice.send(&format!("PRIVMSG #ops :line {n}")).await;
            if n % 20 == 19 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        alice
    });
    // Some committed before the copy starts, the rest as it runs.
    wait_for_stored_messages(&server, 200).await;
    backup(server.data_dir.path(), &copy_path, false)
        .await
        .expect("backup");
    let alice = flood.await.unwrap();
    bob.skip_until(|line| line.ends_with("PRIVMSG #ops :line 1999"))
        .await;

    let mut copy = open_copy(&copy_path).await;
    let (_, messages) = accounts_and_messages(&mut copy).await;
    eprintln!("the copy holds {} of 2,000 lines", messages.len());
    assert!(messages.len() >= 200, "{}", messages.len());
    // Whatever moment it caught, it holds every line up to it, in order,
    // and none after a gap.
    let expected: Vec<String> = (0..messages.len())
        .map(|n| format!(":{} PRIVMSG #ops :line {n}", alice.mask()))
        .collect();
    assert_eq!(messages, expected);
    server.shutdown().await;
}

#[tokio::test]
async fn a_backup_never_replaces_a_file_unless_forced() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let (alice, _bob) = chat_that_is_stored(&server).await;
    let target = tempfile::tempdir().unwrap();
    let copy_path = target.path().join("kept.db");
    std::fs::write(&copy_path, "yesterday's backup").unwrap();

    let refused = backup(server.data_dir.path(), &copy_path, false).await;
    assert!(
        matches!(&refused, Err(BackupError::Exists(path)) if *path == copy_path),
        "{refused:?}"
    );
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!(
            "{} already exists; give --force to replace it",
            copy_path.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&copy_path).unwrap(),
        "yesterday's backup"
    );

    // The database itself is never a target, forced or not.
    let database = server.data_dir.path().join("parlor.db");
    let refused = backup(server.data_dir.path(), &database, true).await;
    assert!(
        matches!(refused, Err(BackupError::SameFile(_))),
        "{refused:?}"
    );

    // Nor a directory, which --force would not make a file.
    let refused = backup(server.data_dir.path(), target.path(), true).await;
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!(
            "cannot write {}: a directory; name a file",
            target.path().display()
        )
    );

    backup(server.data_dir.path(), &copy_path, true)
        .await
        .expect("forced backup");
    let mut copy = open_copy(&copy_path).await;
    let (accounts, messages) = accounts_and_messages(&mut copy).await;
    assert_eq!(accounts, ["alice"]);
    assert_eq!(messages, said(&alice, &["one", "two", "three"]));
    server.shutdown().await;
}

#[tokio::test]
async fn a_backup_of_a_directory_without_a_database_says_so() {
    let empty = tempfile::tempdir().unwrap();
    let copy_path = empty.path().join("copy.db");
    let refused = backup(empty.path(), &copy_path, false).await;
    assert!(
        matches!(refused, Err(BackupError::NoDatabase(_))),
        "{refused:?}"
    );
    // Nothing was created on the way, neither a database nor a copy.
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
}

/// The binary, as an admin runs it: `parlor backup FILE --data-dir DIR`.
fn run_backup(args: Vec<String>) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("backup")
        .args(args)
        .output()
        .expect("run parlor backup");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_backup_command_copies_a_running_servers_database() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let (alice, _bob) = chat_that_is_stored(&server).await;
    let target = tempfile::tempdir().unwrap();
    let copy_path = target.path().join("nightly.db");
    let args = vec![
        copy_path.display().to_string(),
        "--data-dir".to_owned(),
        server.data_dir.path().display().to_string(),
    ];

    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let args = args.clone();
        move || run_backup(args)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    let size = std::fs::metadata(&copy_path).unwrap().len();
    assert!(
        stdout.starts_with(&format!("wrote {} ({size} bytes", copy_path.display())),
        "{stdout}"
    );
    let mut copy = open_copy(&copy_path).await;
    let (accounts, messages) = accounts_and_messages(&mut copy).await;
    assert_eq!(accounts, ["alice"]);
    assert_eq!(messages, said(&alice, &["one", "two", "three"]));

    // A second run does not replace it.
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || run_backup(args))
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!(
            "parlor backup: {} already exists; give --force to replace it\n",
            copy_path.display()
        )
    );
    server.shutdown().await;
}
