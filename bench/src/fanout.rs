//! `fanout`: N clients in one channel, S of them sending M messages each;
//! every other member must receive every message.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use serde_json::json;

use crate::measure;
use crate::metrics::Report;
use crate::setup::{self, Common};
use crate::traffic::{Pace, Receiver, SendSpec};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Members of the channel, senders included.
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Members that send.
    #[arg(long, default_value_t = 4)]
    pub senders: usize,
    /// Messages each sender sends.
    #[arg(long, default_value_t = 500)]
    pub messages: u64,
    /// Flood mode: at most W of a sender's messages in flight (sent, not
    /// yet received by one designated member, its probe).
    #[arg(long, default_value_t = 64)]
    pub window: u64,
    /// Paced mode: R messages per second in total, spread evenly across
    /// senders (overrides --window).
    #[arg(long)]
    pub rate: Option<f64>,
    /// The channel.
    #[arg(long, default_value = "#bench")]
    pub channel: String,
    /// Filler bytes in each message after the sender, sequence number and
    /// timestamp.
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
}

/// Paces `senders` to `rate` messages per second in total: each sends one
/// every `senders / rate` seconds, the senders offset evenly.
pub fn paced(rate: f64, senders: usize, sender: usize) -> anyhow::Result<Pace> {
    ensure!(rate > 0.0 && rate.is_finite(), "--rate must be positive");
    let period = Duration::from_secs_f64(senders as f64 / rate);
    let offset = Duration::from_secs_f64(sender as f64 / rate);
    Ok(Pace::Every(period, offset))
}

pub async fn run(common: Arc<Common>, a: Args) -> anyhow::Result<Report> {
    let (n, s) = (a.clients, a.senders);
    ensure!(n >= 2, "--clients must be at least 2");
    ensure!(
        s >= 1 && s <= n,
        "--senders must be between 1 and --clients"
    );
    ensure!(a.messages >= 1, "--messages must be at least 1");
    ensure!(a.window >= 1, "--window must be at least 1");

    let conns = setup::register_all(&common, n, 64 * 1024).await.all()?;
    let conns = setup::join_all(&common, conns, &a.channel).await?;
    let conns = setup::sync_all(&common, conns, "syncing after the JOINs").await?;

    // One member checks each sender's window: the last client, or the one
    // before it for the last client's own messages.
    let probe_of = |sender: usize| if sender == n - 1 { n - 2 } else { n - 1 };
    let receivers = (0..n)
        .map(|me| Receiver {
            slots: (0..s).filter(|&x| x != me).collect(),
            probe_for: (0..s).filter(|&x| probe_of(x) == me).collect(),
            is_sender: me < s,
            messages: a.messages,
        })
        .collect();
    let mut senders = Vec::with_capacity(s);
    for sender in 0..s {
        let pace = match a.rate {
            Some(rate) => paced(rate, s, sender)?,
            None => Pace::Window(a.window),
        };
        senders.push(SendSpec {
            sender,
            target: a.channel.clone(),
            messages: a.messages,
            pad: a.pad,
            pace,
        });
    }
    let m = measure::run(&common, conns, receivers, senders).await?;
    let expected = s as u64 * a.messages * (n as u64 - 1);
    let params = json!({
        "clients": n, "senders": s, "messages": a.messages,
        "window": a.rate.is_none().then_some(a.window), "rate": a.rate,
        "mode": if a.rate.is_some() { "paced" } else { "flood" },
        "channel": a.channel, "pad": a.pad,
    });
    Ok(m.finish("fanout", &common, params, expected).await)
}
