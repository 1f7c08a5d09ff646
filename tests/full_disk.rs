//! A database that refuses writes, from a lock held elsewhere or a full
//! file system: chat goes on, history waits in memory, and it is written
//! by itself once the database takes writes again.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

const BIN: &str = env!("CARGO_BIN_EXE_parlor");
const HISTORY_CAPS: &str = "batch draft/chathistory message-tags server-time";

/// The PRIVMSG texts of a `CHATHISTORY LATEST #disk * 20` answer.
async fn stored_texts(reader: &mut Client) -> Vec<String> {
    reader
        .exchange("CHATHISTORY LATEST #disk * 20")
        .await
        .iter()
        .filter_map(|line| untagged(line).split_once(" PRIVMSG #disk :"))
        .map(|(_, text)| text.to_owned())
        .collect()
}

/// alice says `text` and bob gets it; returns how long that took.
async fn said_and_heard(alice: &mut Client, bob: &mut Client, text: &str) -> Duration {
    let started = Instant::now();
    alice.send(&format!("PRIVMSG #disk :{text}")).await;
    bob.skip_until(|line| untagged(line).ends_with(&format!("PRIVMSG #disk :{text}")))
        .await;
    started.elapsed()
}

async fn until(what: &str, mut done: impl FnMut() -> bool, within: Duration) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn chat_goes_on_while_the_database_is_locked_and_history_catches_up() {
    let server = TestServer::start_with(FAST_ACCOUNTS).await;
    let mut carol = server.account_holder("carol").await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client_with_caps("bob", HISTORY_CAPS).await;
    setup_channel("#disk", &mut [&mut alice, &mut bob]).await;
    said_and_heard(&mut alice, &mut bob, "before").await;
    assert_eq!(stored_texts(&mut bob).await, ["before"]);
    let stats = server.handle().server().history_stats();
    let written_before = stats.rows_written();

    // Another program (an admin's sqlite3 shell, say) holds the write
    // lock: every write of the server's waits out its busy timeout and
    // fails.
    let mut holder = SqliteConnectOptions::new()
        .filename(server.data_dir.path().join("parlor.db"))
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();

    for text in ["during 1", "during 2", "during 3"] {
        let took = said_and_heard(&mut alice, &mut bob, text).await;
        assert!(took < Duration::from_secs(2), "{text} took {took:?}");
    }
    // A change to the channel, whose snapshot must wait too.
    alice.send("TOPIC #disk :set while locked").await;
    bob.skip_until(|line| line.ends_with("TOPIC #disk :set while locked"))
        .await;
    until("a failed write", || stats.failing(), WAIT * 2).await;
    assert!(stats.write_failures() >= 1);
    assert_eq!(stats.rows_written(), written_before);
    assert_eq!(stats.queue_depth(), 4);
    // A reader gets what is stored without waiting for the rest.
    let started = Instant::now();
    assert_eq!(stored_texts(&mut bob).await, ["before"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    // An account is not dropped while its direct messages could still
    // be waiting to be written (they would outlive it); it is told at
    // once, not after a delete that waits out the lock.
    let started = Instant::now();
    carol.send("PRIVMSG NickServ :DROP carol-password").await;
    carol
        .expect_line(
            ":NickServ!NickServ@services. NOTICE carol :Accounts are unavailable right now; \
             please try again later",
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(2));

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    until(
        "the writer catching up",
        || !stats.failing() && stats.queue_depth() == 0,
        WAIT,
    )
    .await;
    assert_eq!(
        stored_texts(&mut bob).await,
        ["before", "during 1", "during 2", "during 3"]
    );
    assert_eq!(stats.rows_written(), written_before + 4);
    // The channel's snapshot for the next start has its new topic.
    let mut reader = SqliteConnectOptions::new()
        .filename(server.data_dir.path().join("parlor.db"))
        .read_only(true)
        .connect()
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let snapshot: String = sqlx::query_scalar(
            "SELECT snapshot FROM channel_snapshots WHERE name_folded = '#disk'",
        )
        .fetch_one(&mut reader)
        .await
        .unwrap();
        if snapshot.contains("set while locked") {
            break;
        }
        assert!(Instant::now() < deadline, "{snapshot}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reader.close().await.unwrap();
    assert_eq!(stats.rows_dropped(), 0);
    assert!(stats.commit_latency().count() >= 2);
    carol.send("PRIVMSG NickServ :DROP carol-password").await;
    carol
        .skip_until(|line| line.ends_with("NOTICE carol :Account carol dropped"))
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_queue_past_its_limit_drops_its_oldest_lines() {
    let server = TestServer::start_with("[history]\nmax_queued_lines = 2\n").await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client_with_caps("bob", HISTORY_CAPS).await;
    setup_channel("#disk", &mut [&mut alice, &mut bob]).await;
    said_and_heard(&mut alice, &mut bob, "before").await;
    assert_eq!(stored_texts(&mut bob).await, ["before"]);
    let stats = server.handle().server().history_stats();
    // Two lines is small enough that the joins' events may already
    // have overflowed it.
    let dropped_before = stats.rows_dropped_queue_full();

    let mut holder = SqliteConnectOptions::new()
        .filename(server.data_dir.path().join("parlor.db"))
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    // The writer takes "held 1" and keeps trying it; of the four lines
    // queued behind it only the two newest stay.
    said_and_heard(&mut alice, &mut bob, "held 1").await;
    until("a failed write", || stats.failing(), WAIT * 2).await;
    for text in ["lost 1", "lost 2", "kept 1", "kept 2"] {
        said_and_heard(&mut alice, &mut bob, text).await;
    }
    assert_eq!(stats.rows_dropped_queue_full(), dropped_before + 2);
    assert_eq!(stats.queue_depth(), 3);

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    until(
        "the writer catching up",
        || !stats.failing() && stats.queue_depth() == 0,
        WAIT,
    )
    .await;
    assert_eq!(
        stored_texts(&mut bob).await,
        ["before", "held 1", "kept 1", "kept 2"]
    );
    assert_eq!(stats.rows_dropped(), dropped_before + 2);
    server.shutdown().await;
}

/// The server binary in a mount namespace of its own, its data directory
/// a 2 MiB tmpfs that nothing else on the machine sees; killed when
/// dropped. A user namespace of its own too, so that this needs no root
/// where the kernel lets users create them (Debian's does).
struct OnSmallDisk {
    child: Child,
    log: PathBuf,
    /// The data directory as seen from outside the namespace.
    data_dir: PathBuf,
}

impl OnSmallDisk {
    fn start(dir: &Path, port: u16) -> OnSmallDisk {
        let data_dir = dir.join("data");
        std::fs::create_dir(&data_dir).unwrap();
        let config = dir.join("test.toml");
        std::fs::write(
            &config,
            format!("[server]\nname = \"{SERVER}\"\n[limits]\nflood_lines_per_sec = 0\n"),
        )
        .unwrap();
        let log = dir.join("server.log");
        let child = Command::new("unshare")
            .args(["--map-root-user", "--mount", "--propagation", "private"])
            .args(["--", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o size=2m parlor-test \"$0\" && \
                 exec \"$1\" --config \"$2\" --listen \"$3\" --data-dir \"$0\"",
            )
            .arg(&data_dir)
            .arg(BIN)
            .arg(&config)
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("unshare (util-linux) runs");
        // unshare and sh exec, so this is the server's pid.
        let inside = PathBuf::from(format!("/proc/{}/root", child.id()));
        OnSmallDisk {
            child,
            log,
            data_dir: inside.join(data_dir.strip_prefix("/").unwrap()),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_lines_with(&self, text: &str) -> usize {
        self.log()
            .lines()
            .filter(|line| line.contains(text))
            .count()
    }
}

impl Drop for OnSmallDisk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fills the file system of `dir` with one file, `ballast`; returns its
/// size.
fn fill(dir: &Path) -> u64 {
    let mut ballast = std::fs::File::create(dir.join("ballast")).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    // 2 MiB in 64 KiB pieces is 32 writes; a few more for the last page.
    for _ in 0..64 {
        match ballast.write(&chunk) {
            Ok(0) => return size,
            Ok(n) => size += n as u64,
            Err(error) => {
                assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
                return size;
            }
        }
    }
    panic!("{size} bytes written and the file system is not full");
}

#[tokio::test]
async fn a_full_file_system_stops_history_not_chat_and_writing_resumes_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = OnSmallDisk::start(dir.path(), port);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut alice = connect_with_retry(addr).await;
    alice.register("alice").await;
    let mut bob = Client::connect(addr).await;
    bob.send(&format!("CAP REQ :{HISTORY_CAPS}")).await;
    bob.expect_line(&format!(":{SERVER} CAP * ACK :{HISTORY_CAPS}"))
        .await;
    bob.send("CAP END").await;
    bob.register("bob").await;
    setup_channel("#disk", &mut [&mut alice, &mut bob]).await;
    said_and_heard(&mut alice, &mut bob, "before").await;
    assert_eq!(stored_texts(&mut bob).await, ["before"]);

    let ballast = fill(&server.data_dir);
    assert!(ballast > 0, "the tmpfs had no room to fill");
    for text in ["during 1", "during 2", "during 3"] {
        let took = said_and_heard(&mut alice, &mut bob, text).await;
        assert!(took < Duration::from_secs(2), "{text} took {took:?}");
    }
    let failing = "history: cannot write to the database";
    until(
        "the log to say history cannot be written",
        || server.log_lines_with(failing) > 0,
        WAIT,
    )
    .await;
    assert!(
        server.log().contains("database or disk is full"),
        "{}",
        server.log()
    );
    // More lines while it fails: still delivered, still not logged again.
    said_and_heard(&mut alice, &mut bob, "during 4").await;
    assert_eq!(stored_texts(&mut bob).await, ["before"]);

    std::fs::remove_file(server.data_dir.join("ballast")).unwrap();
    let recovered = "history: writing to the database again";
    until(
        "the log to say history is written again",
        || server.log_lines_with(recovered) > 0,
        WAIT,
    )
    .await;
    assert_eq!(
        stored_texts(&mut bob).await,
        ["before", "during 1", "during 2", "during 3", "during 4"]
    );
    let log = server.log();
    assert_eq!(server.log_lines_with(failing), 1, "{log}");
    assert_eq!(server.log_lines_with(recovered), 1, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    said_and_heard(&mut alice, &mut bob, "after").await;
}
