//! Where a running server's configuration comes from: a file laid over the
//! embedded defaults, then the command line's overrides. Kept, so that a
//! reload (REHASH, SIGHUP) reads the same file and applies the same
//! overrides.

use std::path::PathBuf;

use super::{Config, ConfigError};

#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The file given with `--config`; none: the embedded defaults alone.
    pub file: Option<PathBuf>,
    /// `--listen`, replacing `server.listen` when given.
    pub listen: Vec<String>,
    /// `--tls-listen`, replacing `tls.listen` when given.
    pub tls_listen: Vec<String>,
    /// `--http-listen`, replacing `http.listen` when given; `none` alone
    /// turns the HTTP door off.
    pub http_listen: Vec<String>,
    /// `--data-dir`, replacing `server.data_dir`.
    pub data_dir: Option<PathBuf>,
}

impl ConfigSource {
    /// Reads the file (blocking I/O) and applies the overrides, checking
    /// the result with the file's rules.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.file {
            Some(path) => Config::from_file(path)?,
            None => Config::embedded(),
        };
        if !self.listen.is_empty() {
            config.server.listen = self
                .listen
                .iter()
                .map(|a| super::Listen::plain(a))
                .collect();
            config = config.checked("--listen")?;
        }
        if !self.tls_listen.is_empty() {
            config.tls.listen = self.tls_listen.clone();
            config = config.checked("--tls-listen")?;
        }
        if !self.http_listen.is_empty() {
            config.http.listen = if self.http_listen == ["none"] {
                Vec::new()
            } else {
                self.http_listen.clone()
            };
            config = config.checked("--http-listen")?;
        }
        if let Some(dir) = &self.data_dir {
            config.server.data_dir = dir.clone();
        }
        Ok(config)
    }

    /// How the source is named to an operator.
    pub fn describe(&self) -> String {
        match &self.file {
            Some(path) => path.display().to_string(),
            None => "the embedded defaults".to_owned(),
        }
    }
}
