//! The server binary run as a process of its own, for tests that kill it
//! as an admin's `kill -9` (or a crash) would.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::SERVER;

const BIN: &str = env!("CARGO_BIN_EXE_parlor");

/// A running server process, killed when dropped.
pub struct Running(pub Child);

impl Running {
    /// Starts the binary on `127.0.0.1:port` with its data in `data_dir`,
    /// named `irc.test`, without flood control, and `extra` TOML.
    pub fn start(data_dir: &Path, port: u16, extra: &str) -> Running {
        let config = data_dir.join("test.toml");
        std::fs::write(
            &config,
            super::merge_toml(
                &format!("[server]\nname = \"{SERVER}\"\n[limits]\nflood_lines_per_sec = 0\n"),
                extra,
            ),
        )
        .unwrap();
        let child = Command::new(BIN)
            .args(["--config", &config.display().to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--http-listen", "127.0.0.1:0"])
            .args(["--data-dir", &data_dir.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server binary");
        Running(child)
    }

    /// Kills it with SIGKILL: no shutdown, nothing flushed.
    pub fn kill_hard(&mut self) {
        self.signal("-KILL");
        self.0.wait().unwrap();
    }

    /// Stops it with SIGTERM, as an admin's restart does, and waits (up to
    /// `WAIT`) for its clean shutdown.
    pub fn stop(&mut self) {
        self.signal("-TERM");
        let deadline = std::time::Instant::now() + super::WAIT;
        while self.0.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Sends SIGHUP: read the configuration again.
    pub fn hang_up(&self) {
        self.signal("-HUP");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
