//! parlor-bench: a load generator for IRC servers (Parlor, ngIRCd,
//! InspIRCd, ircd-hybrid). Prints a short summary, then one JSON line.

mod client;
mod connect;
mod dm;
mod fanout;
mod history;
mod join_storm;
mod line;
mod login;
mod measure;
mod metrics;
mod query_stall;
mod rtt_probe;
mod seq;
mod setup;
mod ticker;
mod traffic;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::Serialize;
use tokio::time::Instant;

use crate::client::ConnectOpts;
use crate::metrics::{Probe, Report};
use crate::setup::Common;

const OUTPUT_HELP: &str = "\
Output: a short summary, then as the last line one JSON object with
scenario, label, params, clients, deliveries, expected_deliveries, losses,
duplicates, reordered, wall_secs, deliveries_per_sec, server_cpu_us,
cpu_us_per_delivery, registrations, registrations_per_sec,
cpu_us_per_registration, rss_kib_before, rss_kib_after, rss_kib_per_client,
latency_us {p50, p90, p99, max}, errors, and (extra)
cpu_us_per_delivery_with_settle (fanout, dm), bench_cpu_us, latency_of
and probe_rtt_ms {p50, p99, max} (login only); history adds an
object extra {ingest_msgs_per_sec, store_wait_ms, latest_latency_us,
latest_lines, before_timestamp, before_latency_us, before_lines, db_bytes,
db_bytes_per_message}; query-stall adds extra {quiet, querying (each
{phases, deliveries, losses, latency_us, lock {exclusive, shared: holds,
mean_ns, max_ns, over_1ms, p50_ns, p90_ns, p99_ns, p999_ns, buckets}}),
p99_ratio, queries [{name, replies, lines, latency_us}]}. null = does not
apply or could not be measured (no --server-pid, no --oper).
deliveries counts distinct messages; duplicates apart.

The measured phase: fanout/dm from the first message sent to the last one
received (CPU and RSS read right before and at the last expected delivery;
after the closing PING round when messages were lost, and always for
cpu_us_per_delivery_with_settle); connect from the first connect to the
last 001; join-storm from the first JOIN to the last JOIN line received; login from the start
of each burst of AUTHENTICATEs to its last 903, summed over the rounds
(CPU too; the logouts between rounds are not measured), with deliveries =
logins and losses = logins that failed (904, FAIL) or never ran; history
from the first message sent to the last one the member received (CPU until
a CHATHISTORY after the fill, which waits for the pending writes, answered),
with deliveries = messages the member received; query-stall from the
first phase to the end of the last (deliveries are the talkers', latency_us
that of the query phases).

Paced mode (--rate) ticks on a timerfd (a tokio interval fires up to a
millisecond late): a sender that falls behind catches up, and latency
counts from each message's scheduled time.

Exit status 0 when the scenario ran (losses and errors are reported),
1 when it could not (connection refused, timeout, invalid values), 2 for
a usage error.";

#[derive(Debug, Parser)]
#[command(version, about = "Load generator for IRC servers", after_long_help = OUTPUT_HELP)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// N members of one channel; S senders send M messages each.
    Fanout {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: fanout::Args,
    },
    /// P pairs of clients exchanging M private messages each way.
    Dm {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: dm::Args,
    },
    /// K clients register; registration rate, CPU and RSS per client.
    Connect {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: connect::Args,
    },
    /// K clients join one channel one after another.
    JoinStorm {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: join_storm::Args,
    },
    /// N clients log in to their accounts at once (SASL PLAIN), R rounds,
    /// while a probe client PINGs every 10 ms.
    Login {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: login::Args,
    },
    /// One client fills a channel with N messages while a member receives
    /// them; then CHATHISTORY LATEST and BEFORE, timed.
    History {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: history::Args,
    },
    /// N clients, T of them talking in one channel at R messages/s, while
    /// in alternate phases one more client runs WHO *, WHO *a*, LIST and
    /// WHOWAS in a loop: the talkers' latency with and without it, and
    /// the server's lock hold times (Parlor's STATS L).
    QueryStall {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: query_stall::Args,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct CommonArgs {
    /// The server, HOST:PORT. Nothing else is ever connected to.
    #[arg(long)]
    addr: String,
    /// The server's process id, to read its CPU time and RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// A name for this run in the output (e.g. the server's name).
    #[arg(long)]
    label: Option<String>,
    /// Connections registering at once.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// Nothing in the run waits longer than this in total.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// A sender (or the join chain) that makes no progress for this long
    /// stops, and that is reported.
    #[arg(long, default_value_t = 30)]
    stall_secs: u64,
    /// Nicks are this prefix and the client's number (`pb17`); keep it
    /// short for servers with NICKLEN 9.
    #[arg(long, default_value = "pb")]
    nick_prefix: String,
    /// A server password sent with PASS.
    #[arg(long)]
    password: Option<String>,
    /// Speak TLS to `--addr`, without checking the certificate (loopback
    /// benchmarking only).
    #[arg(long)]
    tls: bool,
    /// Worker threads of the bench's runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() {
    let cli = Cli::parse();
    let (common, run) = match cli.scenario {
        Scenario::Fanout { common, args } => (common, Run::Fanout(args)),
        Scenario::Dm { common, args } => (common, Run::Dm(args)),
        Scenario::Connect { common, args } => (common, Run::Connect(args)),
        Scenario::JoinStorm { common, args } => (common, Run::JoinStorm(args)),
        Scenario::Login { common, args } => (common, Run::Login(args)),
        Scenario::History { common, args } => (common, Run::History(args)),
        Scenario::QueryStall { common, args } => (common, Run::QueryStall(args)),
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = common.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = match runtime.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => fail(anyhow::anyhow!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(start(common, run)) {
        Ok(Output { report, extra }) => {
            println!("{}", report.summary());
            if let Some(extra) = &extra {
                println!("{}", extra.summary());
            }
            println!(
                "{}",
                serde_json::to_string(&Output { report, extra }).expect("the report serializes")
            );
        }
        Err(e) => fail(e),
    }
    // Don't wait for stray tasks (a connection the server never closed).
    runtime.shutdown_timeout(Duration::from_secs(1));
}

/// A scenario's own arguments.
enum Run {
    Fanout(fanout::Args),
    Dm(dm::Args),
    Connect(connect::Args),
    JoinStorm(join_storm::Args),
    Login(login::Args),
    History(history::Args),
    QueryStall(query_stall::Args),
}

/// The JSON line: the report, and `extra` for the scenarios that have one.
#[derive(Serialize)]
struct Output {
    #[serde(flatten)]
    report: Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra: Option<Extra>,
}

/// The scenarios' own figures, beyond the report's.
#[derive(Serialize)]
#[serde(untagged)]
enum Extra {
    History(Box<history::Extra>),
    QueryStall(Box<query_stall::Extra>),
}

impl Extra {
    fn summary(&self) -> String {
        match self {
            Extra::History(extra) => extra.summary(),
            Extra::QueryStall(extra) => extra.summary(),
        }
    }
}

fn fail(e: anyhow::Error) -> ! {
    eprintln!("parlor-bench: error: {e:#}");
    std::process::exit(1);
}

async fn start(args: CommonArgs, run: Run) -> anyhow::Result<Output> {
    let addr = tokio::net::lookup_host(&args.addr)
        .await
        .with_context(|| format!("--addr {}: not a HOST:PORT address", args.addr))?
        .next()
        .with_context(|| format!("--addr {}: no address found", args.addr))?;
    let probe = Probe::new(args.server_pid);
    probe.check()?;
    let tick_note = probe.ticks.note();
    let started = Instant::now();
    let common = Arc::new(Common {
        connect: ConnectOpts {
            addr,
            nick_prefix: args.nick_prefix,
            password: args.password,
            tls: args.tls.then(transport::tls_config),
        },
        concurrency: args.connect_concurrency.max(1),
        deadline: started + Duration::from_secs(args.timeout_secs),
        timeout_secs: args.timeout_secs,
        stall: Duration::from_secs(args.stall_secs.max(1)),
        label: args.label,
        probe,
        epoch: started,
    });
    let (mut report, extra) = match run {
        Run::Fanout(a) => (fanout::run(common, a).await?, None),
        Run::Dm(a) => (dm::run(common, a).await?, None),
        Run::Connect(a) => (connect::run(common, a).await?, None),
        Run::JoinStorm(a) => (join_storm::run(common, a).await?, None),
        Run::Login(a) => (login::run(common, a).await?, None),
        Run::History(a) => {
            let (report, extra) = history::run(common, a).await?;
            (report, Some(Extra::History(Box::new(extra))))
        }
        Run::QueryStall(a) => {
            let (report, extra) = query_stall::run(common, a).await?;
            (report, Some(Extra::QueryStall(Box::new(extra))))
        }
    };
    report.errors = metrics::summarize_errors(std::mem::take(&mut report.errors));
    if let Some(note) = tick_note {
        report.errors.push(note);
    }
    Ok(Output { report, extra })
}
