//! The querying client: `WHO *`, `WHO *a*`, `LIST` and `WHOWAS <nick>`,
//! one after another, each sent when the previous reply has ended, until
//! it is told to stop. Each reply is counted (lines) and timed from the
//! request to its end numeric.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::client::{Conn, Msg};
use crate::metrics::{histogram, Latency};

/// One kind of query: what is sent, the numeric that ends its reply, and
/// its name in the report.
struct Query {
    name: &'static str,
    line: String,
    end: u16,
}

/// What one kind of query did over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueryFigures {
    pub name: &'static str,
    pub replies: u64,
    /// Lines of the last reply, its end numeric included.
    pub lines: Option<u64>,
    /// From the request to the end numeric, in µs.
    pub latency_us: Latency,
    #[serde(skip)]
    histogram: Option<Histogram<u64>>,
}

impl QueryFigures {
    fn new(name: &'static str) -> QueryFigures {
        QueryFigures {
            name,
            histogram: Some(histogram()),
            ..QueryFigures::default()
        }
    }

    fn record(&mut self, us: u64, lines: u64) {
        self.replies += 1;
        self.lines = Some(lines);
        if let Some(h) = self.histogram.as_mut() {
            h.record(us).ok();
            self.latency_us = Latency::from_histogram(h);
        }
    }

    /// Adds another run's figures of the same query.
    pub fn add(&mut self, more: &QueryFigures) {
        self.replies += more.replies;
        self.lines = more.lines.or(self.lines);
        if let (Some(mine), Some(theirs)) = (self.histogram.as_mut(), more.histogram.as_ref()) {
            let _ = mine.add(theirs);
            self.latency_us = Latency::from_histogram(mine);
        }
    }
}

/// The queries, in the order they are sent; `whowas` names a nick that
/// was given up during the setup.
fn queries(whowas: &str) -> Vec<Query> {
    vec![
        Query {
            name: "who_all",
            line: "WHO *\r\n".into(),
            end: 315,
        },
        Query {
            name: "who_mask",
            line: "WHO *a*\r\n".into(),
            end: 315,
        },
        Query {
            name: "list",
            line: "LIST\r\n".into(),
            end: 323,
        },
        Query {
            name: "whowas",
            line: format!("WHOWAS {whowas}\r\n"),
            end: 369,
        },
    ]
}

/// The figures of every query, in the order they are sent.
pub fn empty_figures() -> Vec<QueryFigures> {
    queries("")
        .into_iter()
        .map(|q| QueryFigures::new(q.name))
        .collect()
}

/// Queries until `stop` is set; the reply under way then is read to its
/// end. Gives the connection back with the figures, or the error that
/// ended the run.
pub async fn run(
    mut conn: Conn,
    whowas: String,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) -> (Conn, Vec<QueryFigures>, Option<String>) {
    let queries = queries(&whowas);
    let mut figures = empty_figures();
    let mut error = None;
    // Bounded by `stop` and by the deadline.
    for index in (0..queries.len()).cycle() {
        if stop.load(Ordering::Acquire) || Instant::now() >= deadline {
            break;
        }
        let query = &queries[index];
        let sent = Instant::now();
        if let Err(e) = conn.send(query.line.as_bytes(), deadline).await {
            error = Some(format!("querier: {e}"));
            break;
        }
        let mut lines = 0;
        let ended = conn
            .read_until(deadline, |msg| {
                lines += 1;
                match msg {
                    Msg::Numeric(code, _) if code == query.end => Some(Ok(())),
                    Msg::Numeric(code, _) if code >= 400 => Some(Err(code)),
                    _ => None,
                }
            })
            .await;
        let what = query.line.trim_end();
        match ended {
            Ok(Ok(())) => figures[index].record(sent.elapsed().as_micros() as u64, lines),
            Ok(Err(code)) => {
                error = Some(format!("querier: {what} answered with {code}"));
                break;
            }
            Err(e) => {
                error = Some(format!("querier: waiting for the end of {what}: {e}"));
                break;
            }
        }
    }
    (conn, figures, error)
}
