//! `dm`: P pairs of clients; each side sends M private messages to its
//! partner.

use std::sync::Arc;

use anyhow::ensure;
use serde_json::json;

use crate::fanout::paced;
use crate::measure;
use crate::metrics::Report;
use crate::setup::{self, Common};
use crate::traffic::{Pace, Receiver, SendSpec};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Pairs of clients (2P clients).
    #[arg(long, default_value_t = 500)]
    pub pairs: usize,
    /// Messages each client sends to its partner.
    #[arg(long, default_value_t = 200)]
    pub messages: u64,
    /// At most W of a client's messages in flight (sent, not yet received
    /// by its partner).
    #[arg(long, default_value_t = 64)]
    pub window: u64,
    /// Paced mode instead: R messages per second in total across all
    /// clients.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Filler bytes in each message.
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
}

pub async fn run(common: Arc<Common>, a: Args) -> anyhow::Result<Report> {
    ensure!(a.pairs >= 1, "--pairs must be at least 1");
    ensure!(a.messages >= 1, "--messages must be at least 1");
    ensure!(a.window >= 1, "--window must be at least 1");
    let n = 2 * a.pairs;

    let conns = setup::register_all(&common, n, 16 * 1024).await.all()?;
    let conns = setup::sync_all(&common, conns, "syncing after registration").await?;

    let partner = |i: usize| i ^ 1;
    let receivers = (0..n)
        .map(|me| Receiver {
            slots: vec![partner(me)],
            probe_for: vec![partner(me)],
            is_sender: true,
            messages: a.messages,
        })
        .collect();
    let mut senders = Vec::with_capacity(n);
    for (sender, conn) in conns.iter().enumerate() {
        debug_assert_eq!(conn.idx, sender);
        let pace = match a.rate {
            Some(rate) => paced(rate, n, sender)?,
            None => Pace::Window(a.window),
        };
        senders.push(SendSpec {
            sender,
            target: conns[partner(sender)].nick.clone(),
            messages: a.messages,
            pad: a.pad,
            pace,
        });
    }
    let m = measure::run(&common, conns, receivers, senders).await?;
    let expected = n as u64 * a.messages;
    let params = json!({
        "pairs": a.pairs, "messages": a.messages,
        "window": a.rate.is_none().then_some(a.window), "rate": a.rate,
        "mode": if a.rate.is_some() { "paced" } else { "flood" },
        "pad": a.pad,
    });
    Ok(m.finish("dm", &common, params, expected).await)
}
