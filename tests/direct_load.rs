//! Private messages under load. A message to people only holds the network
//! state's lock shared, so several threads relay at once; a message to a
//! channel holds it alone. Every line must still arrive once, in the order
//! its sender sent it, whichever way each one took.
//!
//! Every loop is bounded in iterations, and every wait by the harness's
//! `WAIT`; nothing here sleeps to decide whether a test passes.

mod common;
use common::*;

use std::time::Duration;

const SENDERS: usize = 4;
const PER_SENDER: usize = 150;
const ROOM: &str = "#room";

fn nick(sender: usize) -> String {
    format!("send{sender}")
}

/// Who `sender` also writes to privately: the next sender, in a ring.
fn partner(sender: usize) -> usize {
    (sender + 1) % SENDERS
}

/// Reads until `count` lines have come that `keep` accepts, and returns
/// them; at most `limit` lines in all.
async fn collect(
    client: &mut Client,
    count: usize,
    limit: usize,
    keep: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut kept = Vec::new();
    for _ in 0..limit {
        if kept.len() == count {
            return kept;
        }
        let line = client.next_line().await;
        if keep(&line) {
            kept.push(line);
        }
    }
    panic!(
        "{}: {} of {count} lines within {limit}; the last: {:?}",
        client.nick,
        kept.len(),
        kept.last()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_and_channel_messages_from_many_threads_keep_each_senders_order() {
    each_senders_order_is_kept().await;
}

/// As the binary runs (see `on_the_binarys_runtime`).
#[test]
fn the_order_is_kept_when_threads_write_as_they_go_idle() {
    on_the_binarys_runtime(each_senders_order_is_kept());
}

async fn each_senders_order_is_kept() {
    let server = TestServer::start().await;
    let mut inbox = server.client("inbox").await;
    join(&mut inbox, ROOM).await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let mut c = server.client(&nick(i)).await;
        join(&mut c, ROOM).await;
        senders.push(c);
    }
    // Every JOIN above is complete, so one sync each leaves nothing pending.
    inbox.sync().await;
    for c in &mut senders {
        c.sync().await;
    }

    // Each sender writes, in turn, to the inbox alone, to the channel, and
    // to its partner and the inbox in one line: private messages (shared
    // lock) and channel ones (exclusive) interleaved, from all senders at
    // once.
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(async move {
                for j in 0..PER_SENDER {
                    c.send(&format!("PRIVMSG inbox :dm {i} {j}")).await;
                    c.send(&format!("PRIVMSG {ROOM} :room {i} {j}")).await;
                    c.send(&format!("PRIVMSG {},inbox :pair {i} {j}", nick(partner(i))))
                        .await;
                }
                c
            })
        })
        .collect();
    let mut senders = Vec::new();
    for task in tasks {
        let c = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the senders finish")
            .expect("a sender panicked");
        senders.push(c);
    }

    // The inbox gets three lines per message round from every sender, in
    // each sender's order.
    let total = 3 * SENDERS * PER_SENDER;
    let lines = collect(&mut inbox, total, total + 100, |line| {
        line.contains(" PRIVMSG ")
    })
    .await;
    let mut next = [0usize; SENDERS];
    for line in &lines {
        let (prefix, text) = line.split_once(" :").expect("a trailing text");
        let sender: usize = prefix
            .strip_prefix(":send")
            .and_then(|rest| rest.split('!').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not from a sender: {line}"));
        let round = next[sender] / 3;
        let expected = match next[sender] % 3 {
            0 => ("PRIVMSG inbox".to_owned(), format!("dm {sender} {round}")),
            1 => (format!("PRIVMSG {ROOM}"), format!("room {sender} {round}")),
            _ => ("PRIVMSG inbox".to_owned(), format!("pair {sender} {round}")),
        };
        assert!(
            prefix.ends_with(&expected.0) && text == expected.1,
            "line {} from send{sender}: expected {expected:?}, got {line}",
            next[sender]
        );
        next[sender] += 1;
    }
    assert_eq!(next, [3 * PER_SENDER; SENDERS]);

    // Each sender gets its own partner's private lines, in order, between
    // the other senders' channel messages.
    for (i, c) in senders.iter_mut().enumerate() {
        let from = (i + SENDERS - 1) % SENDERS;
        let head = format!(":{}!", nick(from));
        let private = format!(" PRIVMSG {} :", nick(i));
        let lines = collect(c, PER_SENDER, (SENDERS + 1) * PER_SENDER + 100, |line| {
            line.starts_with(&head) && line.contains(&private)
        })
        .await;
        for (j, line) in lines.iter().enumerate() {
            assert!(
                line.ends_with(&format!("{private}pair {from} {j}")),
                "{}: message {j} from {from}: {line}",
                c.nick
            );
        }
    }
    server.shutdown().await;
}
