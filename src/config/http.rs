//! The `[http]` section: the HTTP door's listeners, who may read
//! `/metrics`, and its limits.

use std::net::SocketAddr;

use serde::Deserialize;

/// The HTTP door (`src/http/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Addresses serving every route; empty: no HTTP door.
    pub listen: Vec<String>,
    /// Addresses serving every route over HTTPS, with `[tls]`'s
    /// certificate.
    pub tls_listen: Vec<String>,
    /// Addresses serving `/metrics` and `/healthz` only, to anyone.
    pub metrics_listen: Vec<String>,
    /// Addresses and blocks (`10.0.0.0/8`) whose clients may read
    /// `/metrics` on the `listen` addresses.
    pub metrics_allow: Vec<String>,
    pub max_connections: usize,
    pub max_body_bytes: usize,
    pub header_timeout_secs: u64,
    pub request_timeout_secs: u64,
}

pub(super) fn parsed(addrs: &[String]) -> Vec<SocketAddr> {
    addrs.iter().filter_map(|a| a.parse().ok()).collect()
}

/// The `[http]` section's rules.
pub(super) fn validate_http(http: &HttpConfig) -> Result<(), (&'static str, String)> {
    for (key, addrs) in [
        ("http.listen", &http.listen),
        ("http.tls_listen", &http.tls_listen),
        ("http.metrics_listen", &http.metrics_listen),
    ] {
        for addr in addrs {
            if addr.parse::<SocketAddr>().is_err() {
                return Err((
                    key,
                    format!("{addr:?} is not an address: write IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\" (an empty list turns it off)"),
                ));
            }
        }
    }
    for entry in &http.metrics_allow {
        if let Err(e) = entry.parse::<crate::http::allow::AddressBlock>() {
            return Err(("http.metrics_allow", format!("{entry:?}: {e}")));
        }
    }
    let ranges: [(&'static str, u64, u64, u64, &str); 4] = [
        (
            "http.max_connections",
            http.max_connections as u64,
            1,
            1_000_000,
            "",
        ),
        (
            "http.max_body_bytes",
            http.max_body_bytes as u64,
            1024,
            1 << 30,
            " bytes",
        ),
        (
            "http.header_timeout_secs",
            http.header_timeout_secs,
            1,
            3600,
            " seconds",
        ),
        (
            "http.request_timeout_secs",
            http.request_timeout_secs,
            1,
            86_400,
            " seconds",
        ),
    ];
    for (key, value, min, max, unit) in ranges {
        if !(min..=max).contains(&value) {
            return Err((
                key,
                format!("{value} is out of range: allowed {min} to {max}{unit}"),
            ));
        }
    }
    Ok(())
}
