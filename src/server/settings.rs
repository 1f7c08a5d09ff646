//! The settings a running server reads, swapped whole by a reload.
//!
//! Readers take the current [`Settings`] with [`Server::config`]: a
//! lock-free load, so every command may read them without waiting for a
//! reload, and a reload never waits for a reader. What a reader loaded
//! stays consistent for as long as it holds it.
//!
//! [`Server::config`]: super::Server::config

use std::ops::Deref;

use crate::config::Config;

/// The configuration and what is made from it once per load.
#[derive(Debug)]
pub struct Settings {
    pub config: Config,
    /// The MOTD's lines, read from `server.motd_file` or the inline text.
    pub motd: Vec<String>,
    /// The `005` tokens.
    pub isupport: Vec<String>,
}

impl Settings {
    /// Reads the MOTD file, if one is named: blocking file I/O.
    pub fn load(config: Config) -> std::io::Result<Settings> {
        Ok(Settings {
            motd: config.motd_lines()?,
            isupport: super::isupport::tokens(&config),
            config,
        })
    }
}

/// The configuration's keys, read through the settings
/// (`server.config().limits`).
impl Deref for Settings {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.config
    }
}
