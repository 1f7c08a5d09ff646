//! The TOML configuration: schema, embedded defaults, overlaying a user
//! file on them, and validation with messages that name the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::casemap::CaseMapping;

pub(crate) mod acme;
mod source;
mod tls;
pub use self::source::ConfigSource;
pub use self::tls::{AcmeConfig, PlaintextPasswords, TlsConfig};
mod cidr;
mod listen;
mod webirc;
pub use cidr::Cidr;
pub use listen::Listen;
pub use webirc::WebircConfig;
mod http;
pub use http::HttpConfig;
use http::{parsed, validate_http};

/// The defaults, compiled in so the server runs with no file at all.
pub const DEFAULT_CONFIG: &str = include_str!("../conf/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub limits: Limits,
    pub accounts: AccountsConfig,
    pub history: HistoryConfig,
    pub channels: ChannelsConfig,
    pub tls: TlsConfig,
    pub http: HttpConfig,
    #[serde(default)]
    pub oper: Vec<OperConfig>,
    /// Web gateways allowed to give their users' addresses with WEBIRC.
    #[serde(default)]
    pub webirc: Vec<WebircConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub name: String,
    pub network: String,
    pub description: String,
    /// `"IP:PORT"` or a table (see [`Listen`]).
    pub listen: Vec<Listen>,
    pub data_dir: PathBuf,
    pub casemapping: CaseMapping,
    pub password: String,
    pub motd: String,
    pub motd_file: String,
    /// Command threads; 0 = automatic (see [`ServerConfig::runtime_threads`]).
    pub threads: usize,
}

/// Most command threads a config may ask for.
const MAX_THREADS: usize = 1024;

impl ServerConfig {
    /// The runtime's worker threads on a machine where this process may
    /// use `cores` cores: `threads` if set, otherwise one fewer than the
    /// cores, and at least one. The spare core is for the threads that
    /// are busy besides the workers (the second writer of long fan-outs,
    /// the log and history writers); on two cores a second worker would
    /// mostly wait for the state lock that every channel message takes
    /// alone.
    pub fn runtime_threads(&self, cores: usize) -> usize {
        match self.threads {
            0 => cores.saturating_sub(1).max(1),
            threads => threads,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub location: String,
    pub contact: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_clients: usize,
    pub max_clients_per_ip: usize,
    pub ipv6_prefix_len: u32,
    pub nick_length: usize,
    pub channel_length: usize,
    pub topic_length: usize,
    pub away_length: usize,
    pub kick_length: usize,
    pub realname_length: usize,
    pub channels_per_client: usize,
    pub targets_per_message: usize,
    pub list_entries: usize,
    pub modes_per_command: usize,
    pub monitor_entries: usize,
    pub whowas_entries: usize,
    pub sendq_bytes: usize,
    /// The kernel's send buffer for each client socket (`SO_SNDBUF`);
    /// 0 leaves it to the kernel.
    pub send_buffer_bytes: usize,
    pub registration_timeout_secs: u64,
    pub ping_interval_secs: u64,
    pub ping_timeout_secs: u64,
    pub flood_burst: u32,
    pub flood_lines_per_sec: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsConfig {
    pub registration: Registration,
    pub email_required: bool,
    pub register_before_connect: bool,
    pub name_length: usize,
    pub min_password_length: usize,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub scram_iterations: u32,
    pub nick_protection: bool,
    pub nick_grace_secs: u64,
    pub login_host: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    pub enabled: bool,
    pub direct_messages: bool,
    pub offline_messages: bool,
    pub missed_direct_lines: usize,
    pub unlogged_channels: Vec<String>,
    pub max_age_days: u64,
    pub max_per_target: usize,
    pub join_replay_lines: usize,
    pub join_replay_max_age_secs: u64,
    pub join_replay_overrides: std::collections::BTreeMap<String, usize>,
    pub chathistory_max: usize,
    pub commit_interval_ms: u64,
    pub max_queued_lines: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    /// How long a channel brought back by a restart waits for its members
    /// (0: channels do not outlive a restart).
    pub restart_wait_secs: u64,
}

/// Largest `limits.send_buffer_bytes`: 16 MiB, more than any kernel
/// grants without raising its own cap.
const MAX_SEND_BUFFER: usize = 16 << 20;

/// Most `history.max_queued_lines`: about 3 GB of lines waiting.
const MAX_QUEUED_LINES: usize = 10_000_000;

/// Longest `channels.restart_wait_secs`: thirty days.
const MAX_RESTART_WAIT_SECS: u64 = 30 * 86_400;

/// Who may register an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Open,
    Opers,
    Closed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperConfig {
    pub name: String,
    pub password_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}: key `{key}`: {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
}

impl Config {
    /// The embedded defaults.
    pub fn embedded() -> Config {
        Self::from_toml_str("", "defaults").expect("the embedded default configuration is valid")
    }

    /// Reads `path` and lays it over the embedded defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses `text` (named `origin` in errors) over the embedded defaults.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let syntax = |e: toml::de::Error| ConfigError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        };
        let mut merged: toml::Table = DEFAULT_CONFIG.parse().map_err(syntax)?;
        let user: toml::Table = text.parse().map_err(syntax)?;
        overlay(&mut merged, user);
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| {
                ConfigError::Invalid {
                    origin: origin.to_owned(),
                    key: e.path().to_string(),
                    message: e.inner().to_string(),
                }
            })?;
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                origin: origin.to_owned(),
                key: key.to_owned(),
                message,
            })?;
        Ok(config)
    }

    /// The listen addresses, parsed. Validation guarantees they parse.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.server
            .listen
            .iter()
            .filter_map(Listen::socket_addr)
            .collect()
    }

    /// `http.listen`, parsed. Validation guarantees they parse.
    pub fn http_listen_addrs(&self) -> Vec<SocketAddr> {
        parsed(&self.http.listen)
    }

    /// Whether any listener, IRC or HTTP, needs the certificate.
    pub fn serves_tls(&self) -> bool {
        self.tls.enabled() || !self.http.tls_listen.is_empty()
    }

    /// `http.tls_listen`, parsed.
    pub fn https_listen_addrs(&self) -> Vec<SocketAddr> {
        parsed(&self.http.tls_listen)
    }

    /// `http.metrics_listen`, parsed.
    pub fn metrics_listen_addrs(&self) -> Vec<SocketAddr> {
        parsed(&self.http.metrics_listen)
    }

    /// The MOTD lines, from the inline text or the file.
    pub fn motd_lines(&self) -> std::io::Result<Vec<String>> {
        let text = if self.server.motd_file.is_empty() {
            self.server.motd.clone()
        } else {
            std::fs::read_to_string(&self.server.motd_file)?
        };
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// Checks a config changed after it was read (command-line
    /// overrides), with the same rules and messages as a file.
    pub fn checked(self, origin: &str) -> Result<Config, ConfigError> {
        self.validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                origin: origin.to_owned(),
                key: key.to_owned(),
                message,
            })?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        let s = &self.server;
        if !is_valid_server_name(&s.name) {
            return Err((
                "server.name",
                format!("{:?} is not a server name: use letters, digits, '-' and '.', with at least one '.'", s.name),
            ));
        }
        if s.network.is_empty() || s.network.contains(' ') {
            return Err(("server.network", "must be one word, not empty".into()));
        }
        // Sent to clients inside lines (ISUPPORT, 004, ADMIN, MOTD): NUL or
        // a CR or LF there would end a line early or forge the next one.
        let shown = [
            ("server.network", &s.network, false),
            ("server.description", &s.description, false),
            ("server.motd", &s.motd, true),
            ("admin.location", &self.admin.location, false),
            ("admin.contact", &self.admin.contact, false),
        ];
        for (key, text, multiline) in shown {
            if !is_line_safe(text, multiline) {
                return Err((
                    key,
                    format!("{text:?} holds a control character that would break an IRC line (NUL, or CR or LF that does not end a MOTD line)"),
                ));
            }
        }
        listen::validate(&s.listen)?;
        self.tls.validate()?;
        if s.threads > MAX_THREADS {
            return Err((
                "server.threads",
                format!(
                    "{} is out of range: allowed 0 (automatic) to {MAX_THREADS}",
                    s.threads
                ),
            ));
        }
        if s.password.contains(' ') {
            return Err(("server.password", "may not contain spaces".into()));
        }
        let l = &self.limits;
        let ranges: [(&'static str, usize, usize, usize); 16] = [
            ("limits.max_clients", l.max_clients, 1, 1_000_000),
            ("limits.nick_length", l.nick_length, 9, 64),
            ("limits.channel_length", l.channel_length, 2, 200),
            ("limits.topic_length", l.topic_length, 1, 400),
            ("limits.away_length", l.away_length, 1, 400),
            ("limits.kick_length", l.kick_length, 1, 400),
            ("limits.realname_length", l.realname_length, 1, 400),
            (
                "limits.channels_per_client",
                l.channels_per_client,
                1,
                10_000,
            ),
            ("limits.targets_per_message", l.targets_per_message, 1, 100),
            ("limits.modes_per_command", l.modes_per_command, 1, 100),
            ("limits.sendq_bytes", l.sendq_bytes, 4096, 1 << 30),
            ("limits.list_entries", l.list_entries, 1, 100_000),
            // A few hundred bytes an entry.
            ("limits.whowas_entries", l.whowas_entries, 0, 20_000),
            (
                "history.chathistory_max",
                self.history.chathistory_max,
                1,
                10_000,
            ),
            (
                "history.join_replay_lines",
                self.history.join_replay_lines,
                0,
                1_000,
            ),
            (
                "history.missed_direct_lines",
                self.history.missed_direct_lines,
                0,
                1_000,
            ),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err((
                    key,
                    format!("{value} is out of range: allowed {min} to {max}"),
                ));
            }
        }
        if !(1..=MAX_QUEUED_LINES).contains(&self.history.max_queued_lines) {
            return Err((
                "history.max_queued_lines",
                format!(
                    "{} is out of range: allowed 1 to {MAX_QUEUED_LINES} lines",
                    self.history.max_queued_lines
                ),
            ));
        }
        if !(1..=10_000).contains(&self.history.commit_interval_ms) {
            return Err((
                "history.commit_interval_ms",
                format!(
                    "{} is out of range: allowed 1 to 10000 milliseconds",
                    self.history.commit_interval_ms
                ),
            ));
        }
        if self.channels.restart_wait_secs > MAX_RESTART_WAIT_SECS {
            return Err((
                "channels.restart_wait_secs",
                format!(
                    "{} is out of range: allowed 0 (off) to {MAX_RESTART_WAIT_SECS} seconds (30 days)",
                    self.channels.restart_wait_secs
                ),
            ));
        }
        if l.send_buffer_bytes != 0 && !(2048..=MAX_SEND_BUFFER).contains(&l.send_buffer_bytes) {
            return Err((
                "limits.send_buffer_bytes",
                format!(
                    "{} is out of range: allowed 0 (the kernel's choice) or 2048 to {MAX_SEND_BUFFER} bytes",
                    l.send_buffer_bytes
                ),
            ));
        }
        if !(1..=128).contains(&l.ipv6_prefix_len) {
            return Err((
                "limits.ipv6_prefix_len",
                format!(
                    "{} is out of range: allowed 1 to 128 (bits of an IPv6 address that name one host; 128 = each address alone)",
                    l.ipv6_prefix_len
                ),
            ));
        }
        for (channel, &lines) in &self.history.join_replay_overrides {
            if !channel.starts_with('#') || lines > 1_000 {
                return Err((
                    "history.join_replay_overrides",
                    format!("{channel:?} = {lines}: give a channel name and at most 1000 lines"),
                ));
            }
        }
        let timers = [
            (
                "limits.registration_timeout_secs",
                l.registration_timeout_secs,
            ),
            ("limits.ping_interval_secs", l.ping_interval_secs),
            ("limits.ping_timeout_secs", l.ping_timeout_secs),
        ];
        for (key, value) in timers {
            if !(1..=86_400).contains(&value) {
                return Err((
                    key,
                    format!("{value} is out of range: allowed 1 to 86400 seconds"),
                ));
            }
        }
        let a = &self.accounts;
        if !(1..=64).contains(&a.name_length) {
            return Err((
                "accounts.name_length",
                format!("{} is out of range: allowed 1 to 64", a.name_length),
            ));
        }
        if !(1..=256).contains(&a.min_password_length) {
            return Err((
                "accounts.min_password_length",
                format!(
                    "{} is out of range: allowed 1 to 256",
                    a.min_password_length
                ),
            ));
        }
        // Checked first: argon2 multiplies it by 8 in a `u32` and overflows
        // (a panic where overflow is checked) before it can refuse it.
        if !(1..=argon2::Params::MAX_P_COST).contains(&a.argon2_parallelism) {
            return Err((
                "accounts.argon2_parallelism",
                format!(
                    "{} is out of range: allowed 1 to {}",
                    a.argon2_parallelism,
                    argon2::Params::MAX_P_COST
                ),
            ));
        }
        if let Err(e) = argon2::Params::new(
            a.argon2_memory_kib,
            a.argon2_iterations,
            a.argon2_parallelism,
            None,
        ) {
            return Err((
                "accounts.argon2_memory_kib",
                format!("the Argon2 parameters are not usable together: {e}"),
            ));
        }
        if !(1..=86_400).contains(&a.nick_grace_secs) {
            return Err((
                "accounts.nick_grace_secs",
                format!(
                    "{} is out of range: allowed 1 to 86400 seconds",
                    a.nick_grace_secs
                ),
            ));
        }
        // The longest account name stands in for `{account}`.
        let longest_account = "a".repeat(a.name_length);
        if !a.login_host.is_empty()
            && !is_valid_host(&a.login_host.replace("{account}", &longest_account))
        {
            return Err((
                "accounts.login_host",
                format!(
                    "{:?} is not a host: no spaces, '!', '@' or ',', not starting with ':', at most 200 characters",
                    a.login_host
                ),
            ));
        }
        if !(4096..=1_000_000).contains(&a.scram_iterations) {
            return Err((
                "accounts.scram_iterations",
                format!(
                    "{} is out of range: allowed 4096 (RFC 7677's minimum) to 1000000",
                    a.scram_iterations
                ),
            ));
        }
        validate_http(&self.http)?;
        if let Some(acme) = &self.tls.acme {
            if !self.serves_tls() {
                return Err((
                    "tls.acme",
                    "[tls.acme] gets a certificate for TLS listeners, and none is configured: set tls.listen or http.tls_listen".into(),
                ));
            }
            if self.http.listen.is_empty() {
                return Err((
                    "http.listen",
                    format!("[tls.acme] answers the CA's http-01 challenges on the HTTP door, which does not listen: add an address port 80 of {} reaches, e.g. \"0.0.0.0:80\"", acme.domains.join(", ")),
                ));
            }
        }
        if !self.http.tls_listen.is_empty()
            && self.tls.cert_file.as_os_str().is_empty()
            && self.tls.acme.is_none()
        {
            return Err((
                "http.tls_listen",
                "HTTPS needs the certificate of [tls]: set tls.cert_file and tls.key_file, or [tls.acme]".into(),
            ));
        }
        for oper in &self.oper {
            if oper.name.is_empty() || oper.name.contains(' ') {
                return Err(("oper.name", format!("{:?} must be one word", oper.name)));
            }
            if argon2::PasswordHash::new(&oper.password_hash).is_err() {
                return Err((
                    "oper.password_hash",
                    format!("the hash for oper {:?} is not a PHC string; make one with `parlor mkpasswd`", oper.name),
                ));
            }
        }
        webirc::validate(&self.webirc)?;
        Ok(())
    }
}

/// Whether `text` can be sent inside IRC lines: no NUL, and no CR or LF
/// except, in text made of lines, LF or CRLF ending one.
fn is_line_safe(text: &str, multiline: bool) -> bool {
    if !multiline {
        return !text.contains(['\0', '\r', '\n']);
    }
    text.lines().all(|line| !line.contains(['\0', '\r']))
}

fn is_valid_server_name(name: &str) -> bool {
    name.contains('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Tables merge key by key; any other value (arrays included) replaces.
fn overlay(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => {
                overlay(base_table, over_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Hosts are shown as a middle parameter (in `CHGHOST` and `396`), so none
/// may be empty or start with `:`, and a mask must still split at its `!`
/// and `@`.
fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && !host.starts_with(':')
        && host.len() <= 200
        && !host.contains(|c: char| c.is_whitespace() || matches!(c, '!' | '@' | ',' | '\0'))
}

#[cfg(test)]
mod tests;
