//! A real irssi (in tmux) through a restart of the server: it reconnects
//! and rejoins on its own, and its user finds the channel as it was, their
//! voice given back and the topic shown, as a restart should look.
//!
//! Needs `irssi` and `tmux` (Debian: `apt-get install irssi tmux`); `.ci/run`
//! installs them. Without them the test fails and says so.

mod common;
use common::*;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// An irssi in a tmux session of its own, ended when dropped.
struct Irssi {
    session: String,
    home: PathBuf,
}

impl Irssi {
    fn start(home: &Path, nick: &str, port: u16) -> Irssi {
        for tool in ["irssi", "tmux"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "this test drives a real irssi in tmux: install them with \
                 `apt-get install irssi tmux`"
            );
        }
        std::fs::create_dir_all(home).unwrap();
        // Reconnect after 2 s instead of irssi's 5 minutes; log every
        // window, which is what the test reads.
        let config = format!(
            "servers = ( {{ address = \"127.0.0.1\"; chatnet = \"test\"; port = \"{port}\"; \
             autoconnect = \"yes\"; }} );\n\
             chatnets = {{ test = {{ type = \"IRC\"; }}; }};\n\
             settings = {{\n  core = {{ real_name = \"{nick}\"; user_name = \"{nick}\"; \
             nick = \"{nick}\"; server_reconnect_time = \"2\"; }};\n  \
             \"fe-common/core\" = {{ autolog = \"yes\"; autolog_level = \"all\"; \
             autolog_path = \"{}/logs/$0.log\"; }};\n}};\n",
            home.display()
        );
        std::fs::write(home.join("config"), config).unwrap();
        let session = format!("parlor-test-{}-{nick}", std::process::id());
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "160", "-y", "50"])
            .arg(format!("irssi --home={}", home.display()))
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux could not start irssi");
        Irssi {
            session,
            home: home.to_owned(),
        }
    }

    /// Types `line` into irssi, as its user would.
    fn type_line(&self, line: &str) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "-l", line])
            .status()
            .unwrap();
        assert!(status.success());
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "Enter"])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// What irssi logged for window `name` (a channel), as its user saw it.
    fn log_of(&self, name: &str) -> String {
        std::fs::read_to_string(self.home.join("logs").join(format!("{name}.log")))
            .unwrap_or_default()
    }

    /// Waits (bounded) until the log of `name` shows `text` `count` times.
    async fn wait_for(&self, name: &str, text: &str, count: usize) {
        let deadline = Instant::now() + WAIT * 3;
        while self.log_of(name).matches(text).count() < count {
            assert!(
                Instant::now() < deadline,
                "irssi never showed {text:?} ({count}x) in {name}; its log:\n{}",
                self.log_of(name)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Irssi {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

/// Waits (bounded) until `nick` is on the network, as `watcher` sees it.
async fn wait_until_online(watcher: &mut Client, nick: &str) {
    let deadline = Instant::now() + WAIT * 3;
    loop {
        let lines = watcher.exchange(&format!("ISON {nick}")).await;
        if lines.iter().any(|l| l.ends_with(&format!(" :{nick}"))) {
            return;
        }
        assert!(Instant::now() < deadline, "{nick} never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn irssi_finds_its_channel_as_it_was_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = process::Running::start(&data, port, "");

    // anna, a plain client, makes the channel and is its operator.
    let mut anna = connect_with_retry(addr).await;
    anna.register("anna").await;
    join(&mut anna, "#restart").await;
    anna.exchange("TOPIC #restart :Back in a minute").await;

    let irssi = Irssi::start(&dir.path().join("irssi"), "ben", port);
    wait_until_online(&mut anna, "ben").await;
    irssi.type_line("/join #restart");
    anna.expect_line(":ben!~ben@127.0.0.1 JOIN #restart").await;
    anna.exchange("MODE #restart +v ben").await;
    irssi.type_line("hello before");
    anna.expect_line(":ben!~ben@127.0.0.1 PRIVMSG #restart :hello before")
        .await;
    irssi.wait_for("#restart", "+v ben", 1).await;

    // The admin restarts the server (SIGTERM, start).
    server.stop();
    drop(anna);
    let _server = process::Running::start(&data, port, "");

    // irssi comes back by itself: rejoined, voiced by the server, the topic
    // and the last lines shown again.
    irssi
        .wait_for("#restart", "Topic for #restart: Back in a minute", 2)
        .await;
    irssi.wait_for("#restart", "+v ben] by irc.test", 1).await;
    let log = irssi.log_of("#restart");
    let after_restart = &log[log.rfind("has joined #restart").unwrap()..];
    assert!(
        after_restart.contains("hello before"),
        "the channel's last lines are replayed:\n{log}"
    );
    // Seen from the network: one rejoin, voice given back by the server.
    let mut carl = connect_with_retry(addr).await;
    carl.register("carl").await;
    let lines = carl.exchange("JOIN #restart").await;
    let names = lines.iter().find(|l| l.contains(" 353 ")).unwrap();
    assert_names(names, "carl", "=", "#restart", &["+ben", "carl"]);
}
