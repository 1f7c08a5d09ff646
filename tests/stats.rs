//! STATS: the end of an empty report for any query, and `STATS L`, the
//! state lock's hold times, for operators. Every server in this file is
//! timed (`lock_timing::enable`).

mod common;
use common::*;

async fn timed_server() -> TestServer {
    parlor::server::lock_timing::enable();
    TestServer::start_with(OPER_CONFIG).await
}

/// The value of `key=` in a `STATS L` summary line.
fn figure(line: &str, key: &str) -> u64 {
    let prefix = format!("{key}=");
    line.split(' ')
        .find_map(|word| word.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {line}"))
}

#[tokio::test]
async fn any_query_ends_with_219_and_the_lock_is_for_operators() {
    let server = timed_server().await;
    let mut alice = server.client("alice").await;
    assert_eq!(
        alice.exchange("STATS u").await,
        [numeric("219", "alice", "u :End of /STATS report")]
    );
    assert_eq!(
        alice.exchange("STATS L").await,
        [numeric(
            "481",
            "alice",
            ":Permission Denied- You're not an IRC operator"
        )]
    );
    assert_eq!(
        alice.exchange("STATS").await,
        [numeric("461", "alice", "STATS :Not enough parameters")]
    );
}

#[tokio::test]
async fn the_lock_report_counts_every_hold_in_one_bucket() {
    let server = timed_server().await;
    let mut oscar = server.client("oscar").await;
    make_oper(&mut oscar).await;
    let lines = oscar.exchange("STATS L").await;
    let prefix = numeric("249", "oscar", "L :");
    let texts: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect();
    assert_eq!(texts.len() + 1, lines.len(), "{lines:?}");
    assert_eq!(
        lines.last().unwrap(),
        &numeric("219", "oscar", "L :End of /STATS report")
    );
    let exclusive = texts
        .iter()
        .find(|t| t.starts_with("exclusive holds="))
        .expect("an exclusive summary");
    assert!(
        texts.iter().any(|t| t.starts_with("shared holds=")),
        "{texts:?}"
    );
    // Registering and OPER took the lock: counted, each in a bucket.
    let holds = figure(exclusive, "holds");
    assert!(holds > 0, "{exclusive}");
    assert!(figure(exclusive, "max_ns") > 0, "{exclusive}");
    // The holding thread's CPU time: the most one hold took, and how many
    // took over 1 ms. A loaded machine may stretch any hold, so neither is
    // bounded here, but a hold cannot use more CPU than it lasts (its CPU
    // time is read after the lock is let go: a few µs of slack).
    assert!(
        figure(exclusive, "max_cpu_ns") <= figure(exclusive, "max_ns") + 10_000,
        "{exclusive}"
    );
    assert!(
        figure(exclusive, "cpu_over_1ms") <= figure(exclusive, "over_1ms"),
        "{exclusive}"
    );
    let in_buckets: u64 = texts
        .iter()
        .filter_map(|t| t.strip_prefix("exclusive buckets "))
        .flat_map(|pairs| pairs.split(' '))
        .map(|pair| pair.split_once('=').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(in_buckets, holds, "{texts:?}");

    // The next report counts on; its maximum covers only what came since.
    let again = oscar.exchange("STATS L").await;
    let exclusive = again
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .find(|t| t.starts_with("exclusive holds="))
        .unwrap()
        .to_owned();
    assert!(figure(&exclusive, "holds") > holds, "{exclusive}");
}
