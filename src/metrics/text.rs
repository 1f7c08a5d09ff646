//! The Prometheus text exposition format (version 0.0.4): for each metric
//! a `# HELP` and a `# TYPE` line, then its samples, `name{labels} value`.
//! Names carry their unit (`_seconds`, `_bytes`) and counters end in
//! `_total`.

use std::fmt::{Display, Write as _};

use super::histogram::{Snapshot, BOUNDS};
use super::hot::{self, Hot};
use super::process::Process;
use super::{Mechanism, Refusal, Transport, COUNTERS, HISTORY_COMMIT};
use std::sync::atomic::Ordering::Relaxed;

/// The figures read from the server's state at scrape time.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub registered_clients: u64,
    pub channels: u64,
    /// Accounts with at least one client logged in to them.
    pub accounts_online: u64,
    /// History records queued and not yet written.
    pub history_queue: u64,
    /// History records refused because the queue was full.
    pub history_backlog_dropped: u64,
    /// When the server started, in seconds since 1970.
    pub start_time_seconds: f64,
}

/// The whole exposition: counters, `state` and `process`.
pub fn render(state: &State, process: &Process) -> String {
    let mut out = Exposition(String::with_capacity(8 * 1024));
    let out = &mut out;

    let by_transport = |counts: &[std::sync::atomic::AtomicU64]| {
        Transport::ALL.map(|t| (t.label(), counts[t as usize].load(Relaxed)))
    };
    out.labelled(
        "parlor_connections",
        "gauge",
        "Client connections open, registered or not, by transport.",
        "transport",
        by_transport(&COUNTERS.open),
    );
    out.labelled(
        "parlor_connections_accepted_total",
        "counter",
        "Connections accepted by the listeners, by transport, refused ones included.",
        "transport",
        by_transport(&COUNTERS.accepted),
    );
    out.labelled(
        "parlor_connections_refused_total",
        "counter",
        "New connections turned away, by reason.",
        "reason",
        Refusal::ALL.map(|r| (r.label(), COUNTERS.refused[r as usize].load(Relaxed))),
    );
    out.gauge(
        "parlor_clients_registered",
        "Clients that completed registration.",
        state.registered_clients,
    );
    out.gauge("parlor_channels", "Channels that exist.", state.channels);
    out.gauge(
        "parlor_accounts_online",
        "Accounts with at least one client logged in to them.",
        state.accounts_online,
    );

    out.labelled(
        "parlor_messages_relayed_total",
        "counter",
        "PRIVMSG, NOTICE and TAGMSG relayed, one per message and target.",
        "command",
        [
            ("PRIVMSG", Hot::RelayedPrivmsg),
            ("NOTICE", Hot::RelayedNotice),
            ("TAGMSG", Hot::RelayedTagmsg),
        ]
        .map(|(command, counter)| (command, hot::sum(counter))),
    );
    out.counter(
        "parlor_deliveries_total",
        "Relayed messages queued for a recipient (echoes not included).",
        hot::sum(Hot::Deliveries),
    );
    out.counter(
        "parlor_written_bytes_total",
        "Bytes of IRC lines written to clients.",
        hot::sum(Hot::BytesWritten),
    );
    out.counter(
        "parlor_sendq_disconnects_total",
        "Clients disconnected because their sendq overflowed.",
        COUNTERS.sendq_disconnects.load(Relaxed),
    );
    out.counter(
        "parlor_flood_delayed_lines_total",
        "Input lines held back by flood control.",
        COUNTERS.flood_delayed.load(Relaxed),
    );
    out.counter(
        "parlor_registrations_total",
        "Connections that completed registration.",
        COUNTERS.registrations.load(Relaxed),
    );
    out.counter(
        "parlor_account_registrations_total",
        "Accounts created by clients.",
        COUNTERS.account_registrations.load(Relaxed),
    );
    out.head(
        "parlor_logins_total",
        "counter",
        "Password checks, by mechanism and result.",
    );
    for mechanism in Mechanism::ALL {
        for (result, index) in [("success", 0), ("failure", 1)] {
            let count = COUNTERS.logins[mechanism as usize][index].load(Relaxed);
            out.sample(
                "parlor_logins_total",
                &[("mechanism", mechanism.label()), ("result", result)],
                count,
            );
        }
    }
    out.counter(
        "parlor_tls_handshake_failures_total",
        "TLS handshakes that did not complete.",
        COUNTERS.tls_handshake_failures.load(Relaxed),
    );

    out.gauge(
        "parlor_history_queue_length",
        "History records queued for the writer and not yet written.",
        state.history_queue,
    );
    out.histogram(
        "parlor_history_commit_duration_seconds",
        "Time of each history transaction, from its start to its commit.",
        &HISTORY_COMMIT.snapshot(),
    );
    out.counter(
        "parlor_history_rows_written_total",
        "History rows committed to the database.",
        COUNTERS.history_rows_written.load(Relaxed),
    );
    out.counter(
        "parlor_history_rows_dropped_total",
        "History rows never stored: refused while the queue was full, or given up after failed writes.",
        state
            .history_backlog_dropped
            .wrapping_add(COUNTERS.history_rows_dropped.load(Relaxed)),
    );
    out.counter(
        "parlor_database_errors_total",
        "Database operations that failed.",
        COUNTERS.database_errors.load(Relaxed),
    );

    out.counter(
        "parlor_http_requests_total",
        "Requests answered by the HTTP door.",
        COUNTERS.http_requests.load(Relaxed),
    );
    out.counter(
        "parlor_http_connections_refused_total",
        "HTTP connections turned away at http.max_connections.",
        COUNTERS.http_refused.load(Relaxed),
    );

    if let Some(seconds) = process.cpu_seconds {
        out.counter(
            "parlor_process_cpu_seconds_total",
            "User and system CPU time of the server process.",
            seconds,
        );
    }
    if let Some(bytes) = process.resident_bytes {
        out.gauge(
            "parlor_process_resident_memory_bytes",
            "Resident memory of the server process.",
            bytes,
        );
    }
    if let Some(fds) = process.open_fds {
        out.gauge(
            "parlor_process_open_fds",
            "Open file descriptors of the server process.",
            fds,
        );
    }
    if let Some(fds) = process.max_fds {
        out.gauge(
            "parlor_process_max_fds",
            "The limit on open file descriptors (ulimit -n).",
            fds,
        );
    }
    out.gauge(
        "parlor_process_start_time_seconds",
        "When the server started, in seconds since 1970.",
        state.start_time_seconds,
    );
    out.head(
        "parlor_build_info",
        "gauge",
        "The running version, as a label; the value is always 1.",
    );
    out.sample(
        "parlor_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    let Exposition(text) = std::mem::take(out);
    text
}

#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.0.push_str(label);
                self.0.push_str("=\"");
                escape_label_value(&mut self.0, text);
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family with one label, one sample per value of it.
    fn labelled<V: Display>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label: &str,
        samples: impl IntoIterator<Item = (&'static str, V)>,
    ) {
        self.head(name, kind, help);
        for (value_of_label, value) in samples {
            self.sample(name, &[(label, value_of_label)], value);
        }
    }

    fn counter(&mut self, name: &str, help: &str, value: impl Display) {
        self.head(name, "counter", help);
        self.sample(name, &[], value);
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.head(name, "gauge", help);
        self.sample(name, &[], value);
    }

    fn histogram(&mut self, name: &str, help: &str, snapshot: &Snapshot) {
        self.head(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (bound, count) in BOUNDS.iter().zip(&snapshot.cumulative) {
            self.sample(&bucket, &[("le", &bound.to_string())], count);
        }
        self.sample(&bucket, &[("le", "+Inf")], snapshot.count);
        self.sample(&format!("{name}_sum"), &[], snapshot.sum_seconds);
        self.sample(&format!("{name}_count"), &[], snapshot.count);
    }
}

/// A label value as the format writes it: backslash, double quote and
/// line feed escaped.
fn escape_label_value(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_follows_its_type_line_and_counters_end_in_total() {
        let text = render(&State::default(), &Process::default());
        let mut declared: Option<(String, String)> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                }
                assert!(name.starts_with("parlor_"), "{name}");
                declared = Some((name.to_owned(), kind.to_owned()));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let name = line.split(['{', ' ']).next().unwrap();
            let (family, kind) = declared.as_ref().expect("a TYPE line first");
            let belongs = name == family
                || (kind == "histogram"
                    && [
                        format!("{family}_bucket"),
                        format!("{family}_sum"),
                        format!("{family}_count"),
                    ]
                    .iter()
                    .any(|n| n == name));
            assert!(belongs, "{name} under {family}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label_value(&mut out, "a\"b\\c\nd");
        assert_eq!(out, "a\\\"b\\\\c\\nd");
    }
}
