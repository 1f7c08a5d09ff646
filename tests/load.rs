//! Load and fan-out over real sockets: one order of events per channel,
//! slow readers cut off without delaying anyone, a thousand members, peers
//! told of a nick change or a quit exactly once, and a clean shutdown of the
//! real binary on SIGINT and SIGTERM.
//!
//! Every loop is bounded in iterations, and every wait by the harness's
//! `WAIT`; nothing here sleeps to decide whether a test passes.

mod common;
use common::*;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Awaits a spawned test task, failing if it takes longer than `limit` or
/// panicked.
async fn join_task<T>(task: JoinHandle<T>, limit: Duration, what: &str) -> T {
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
        Err(_) => panic!("{what} did not finish within {limit:?}"),
    }
}

/// Reads until `end` arrives and returns every line before it; at most
/// `limit` lines.
async fn collect_until(client: &mut Client, end: &str, limit: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for _ in 0..limit {
        let line = client.next_line().await;
        if line == end {
            return lines;
        }
        lines.push(line);
    }
    panic!("{}: no {end:?} within {limit} lines", client.nick);
}

const FLOOD_CHANNEL: &str = "#load";
const SENDERS: usize = 4;
const RECEIVERS: usize = 4;
const PER_SENDER: usize = 200;

fn flood_text(sender: usize, index: usize) -> String {
    format!("sender-{sender} msg-{index}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn channel_events_reach_every_member_in_one_order() {
    events_reach_every_member_in_one_order().await;
}

/// As the binary runs (see `on_the_binarys_runtime`).
#[test]
fn channel_events_keep_one_order_when_threads_write_as_they_go_idle() {
    on_the_binarys_runtime(events_reach_every_member_in_one_order());
}

async fn events_reach_every_member_in_one_order() {
    let server = TestServer::start().await;
    // The director creates the channel (so it holds ops for MODE) and
    // interleaves membership and mode changes with the flood.
    let mut director = server.client("director").await;
    director.exchange(&format!("JOIN {FLOOD_CHANNEL}")).await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let mut c = server.client(&format!("send{i}")).await;
        c.exchange(&format!("JOIN {FLOOD_CHANNEL}")).await;
        senders.push(c);
    }
    let mut receivers = Vec::new();
    for i in 0..RECEIVERS {
        let mut c = server.client(&format!("recv{i}")).await;
        c.exchange(&format!("JOIN {FLOOD_CHANNEL}")).await;
        receivers.push(c);
    }
    let mut visitor = server.client("visitor").await;
    // Every JOIN above is complete, so one sync each leaves nothing pending.
    director.sync().await;
    for c in senders.iter_mut().chain(receivers.iter_mut()) {
        c.sync().await;
    }

    let end = format!(
        ":{} PRIVMSG {FLOOD_CHANNEL} :end of the flood",
        director.mask()
    );
    let limit = 4 * SENDERS * PER_SENDER;

    let receiver_tasks: Vec<_> = receivers
        .into_iter()
        .map(|mut c| {
            let end = end.clone();
            tokio::spawn(async move {
                let lines = collect_until(&mut c, &end, limit).await;
                (c, lines)
            })
        })
        .collect();
    let sender_tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let end = end.clone();
            tokio::spawn(async move {
                for j in 0..PER_SENDER {
                    c.send(&format!("PRIVMSG {FLOOD_CHANNEL} :{}", flood_text(i, j)))
                        .await;
                }
                let lines = collect_until(&mut c, &end, limit).await;
                (c, lines)
            })
        })
        .collect();

    // The director reads the flood and, as it passes given points, makes
    // the visitor join and part and changes a voice.
    let visitor_mask = visitor.mask();
    let director_mask = director.mask();
    let events = [
        (100, format!("JOIN {FLOOD_CHANNEL}"), true),
        (200, format!("MODE {FLOOD_CHANNEL} +v send0"), false),
        (300, format!("PART {FLOOD_CHANNEL}"), true),
        (400, format!("JOIN {FLOOD_CHANNEL}"), true),
        (500, format!("MODE {FLOOD_CHANNEL} -v send0"), false),
        (600, format!("PART {FLOOD_CHANNEL} :see you"), true),
    ];
    let expected_events: [String; 6] = [
        format!(":{visitor_mask} JOIN {FLOOD_CHANNEL}"),
        format!(":{director_mask} MODE {FLOOD_CHANNEL} +v send0"),
        format!(":{visitor_mask} PART {FLOOD_CHANNEL}"),
        format!(":{visitor_mask} JOIN {FLOOD_CHANNEL}"),
        format!(":{director_mask} MODE {FLOOD_CHANNEL} -v send0"),
        format!(":{visitor_mask} PART {FLOOD_CHANNEL} :see you"),
    ];
    let total = SENDERS * PER_SENDER;
    let director_events = expected_events.clone();
    let director_task = tokio::spawn(async move {
        let mut lines = Vec::new();
        let mut privmsgs = 0;
        let mut next_event = 0;
        // Each event waits until the previous one came back, so that the
        // director's and the visitor's commands happen in the listed order.
        let mut awaiting: Option<String> = None;
        for _ in 0..limit {
            if awaiting.is_none() && next_event < events.len() && privmsgs >= events[next_event].0 {
                let (_, command, by_visitor) = &events[next_event];
                if *by_visitor {
                    visitor.send(command).await;
                } else {
                    director.send(command).await;
                }
                awaiting = Some(director_events[next_event].clone());
                next_event += 1;
            }
            if privmsgs == total && next_event == events.len() && awaiting.is_none() {
                break;
            }
            let line = director.next_line().await;
            if line.contains(" PRIVMSG ") {
                privmsgs += 1;
            }
            if awaiting.as_ref() == Some(&line) {
                awaiting = None;
            }
            lines.push(line);
        }
        assert_eq!(privmsgs, total, "the director saw every message");
        // The visitor's commands are done once it has its PONG; the
        // director's own MODEs come before its end marker.
        visitor.sync().await;
        director
            .send(&format!("PRIVMSG {FLOOD_CHANNEL} :end of the flood"))
            .await;
        lines.extend(director.sync().await);
        (director, visitor, lines)
    });

    let wait = Duration::from_secs(60);
    let (_director, _visitor, director_lines) =
        join_task(director_task, wait, "the director").await;
    let mut receiver_lines = Vec::new();
    for task in receiver_tasks {
        receiver_lines.push(join_task(task, wait, "a receiver").await);
    }
    let mut sender_lines = Vec::new();
    for task in sender_tasks {
        sender_lines.push(join_task(task, wait, "a sender").await);
    }

    // The global order, as the first receiver saw it, must be sound on its
    // own: every message once, each sender's in order, each event once and
    // in the order they were made.
    let global = &receiver_lines[0].1;
    let mut next_index = [0usize; SENDERS];
    let mut seen_events = Vec::new();
    for line in global {
        if expected_events.contains(line) {
            seen_events.push(line.clone());
            continue;
        }
        let (i, j) = (0..SENDERS)
            .find_map(|i| {
                let prefix =
                    format!(":send{i}!~send{i}@127.0.0.1 PRIVMSG {FLOOD_CHANNEL} :sender-{i} msg-");
                let j: usize = line.strip_prefix(&prefix)?.parse().ok()?;
                Some((i, j))
            })
            .unwrap_or_else(|| panic!("unexpected line in the channel: {line:?}"));
        assert_eq!(
            j, next_index[i],
            "sender {i}'s messages out of order or duplicated"
        );
        next_index[i] += 1;
    }
    assert_eq!(next_index, [PER_SENDER; SENDERS], "every message arrived");
    assert_eq!(
        seen_events, expected_events,
        "every event arrived once, in order"
    );

    // The key property: everybody saw that one sequence.
    for (c, lines) in &receiver_lines {
        assert!(
            lines == global,
            "{} saw another order than recv0 (first difference at {:?})",
            c.nick,
            first_difference(lines, global)
        );
    }
    assert!(
        &director_lines == global,
        "the director saw another order than recv0 (first difference at {:?})",
        first_difference(&director_lines, global)
    );
    for (i, (c, lines)) in sender_lines.iter().enumerate() {
        let own = format!(":send{i}!");
        let expected: Vec<String> = global
            .iter()
            .filter(|l| !(l.starts_with(&own) && l.contains(" PRIVMSG ")))
            .cloned()
            .collect();
        assert_eq!(
            lines.len(),
            expected.len(),
            "{} got all messages but its own",
            c.nick
        );
        assert!(
            lines == &expected,
            "{} saw another order than recv0 (first difference at {:?})",
            c.nick,
            first_difference(lines, &expected)
        );
    }
}

fn first_difference(a: &[String], b: &[String]) -> Option<(usize, Option<String>, Option<String>)> {
    (0..a.len().max(b.len()))
        .find(|&i| a.get(i) != b.get(i))
        .map(|i| (i, a.get(i).cloned(), b.get(i).cloned()))
}

/// The replies to one read's worth of commands may add up to more than the
/// sendq. A client that reads them must still get them all: its socket never
/// pushed back, so it is no slow reader.
#[tokio::test]
async fn a_burst_of_replies_larger_than_the_sendq_reaches_a_reading_client() {
    const SENDQ: usize = 4096;
    /// About 12 KB of PONGs, three times the sendq, most from one read.
    const PINGS: usize = 300;
    let server = TestServer::start_with(&format!("[limits]\nsendq_bytes = {SENDQ}\n")).await;
    let mut client = server.client("burst").await;
    let burst: String = (0..PINGS).map(|i| format!("PING token-{i}\r\n")).collect();
    client.send_raw(burst.as_bytes()).await;
    for i in 0..PINGS {
        client
            .expect_line(&format!(":{SERVER} PONG {SERVER} :token-{i}"))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_cut_off_and_others_are_not_delayed() {
    const SENDQ: usize = 65536;
    /// The sender keeps at most two chunks (~23 KB) ahead of the normal
    /// reader, so that only the slow client can pass its sendq. (Under half
    /// of it: the server counts a batch against the sendq until its write
    /// returns, so bytes the reader already has can still count once.)
    const CHUNK: usize = 25;
    /// Far more than the sendq and any kernel buffering: if the slow client
    /// is not cut off by then, the server is holding its backlog somewhere.
    const MAX_MESSAGES: usize = 40_000;
    let server = TestServer::start_with(&format!("[limits]\nsendq_bytes = {SENDQ}\n")).await;
    let mut sender = server.client("flooder").await;
    sender.exchange("JOIN #flood").await;
    let mut receiver = server.client("reader").await;
    receiver.exchange("JOIN #flood").await;

    // The slow client registers and joins, then never reads. A small
    // receive buffer keeps the kernel from absorbing much of the flood.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(16 * 1024)
        .expect("set the receive buffer");
    let mut slow = tokio::time::timeout(WAIT, socket.connect(server.addr))
        .await
        .expect("connect in time")
        .expect("connect");
    slow.write_all(b"NICK slow\r\nUSER slow 0 * :Slow\r\nJOIN #flood\r\n")
        .await
        .expect("write to server");
    let slow_mask = "slow!~slow@127.0.0.1";
    // Both wait for the JOIN themselves: a PING can overtake a fan-out
    // still in progress, so one client's sync says nothing of what
    // another has seen.
    let slow_join = format!(":{slow_mask} JOIN #flood");
    receiver.skip_until(|l| l == slow_join).await;
    sender.skip_until(|l| l == slow_join).await;

    let padding = "x".repeat(390);
    let quit_line = format!(":{slow_mask} QUIT :SendQ exceeded");
    let quit_seen = Arc::new(AtomicBool::new(false));
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);

    // The reader takes everything and reports when the slow client's QUIT
    // went by.
    let reader_task = tokio::spawn({
        let quit_seen = quit_seen.clone();
        let quit_line = quit_line.clone();
        let prefix = format!(":{} PRIVMSG #flood :msg-", sender.mask());
        let end = format!(":{} PRIVMSG #flood :done", sender.mask());
        async move {
            let mut received = 0usize;
            let mut quits = Vec::new();
            for _ in 0..MAX_MESSAGES + 10 {
                let line = receiver.next_line().await;
                if line == end {
                    return (receiver, received, quits);
                }
                if line == quit_line {
                    quits.push(received);
                    quit_seen.store(true, Ordering::SeqCst);
                    continue;
                }
                let index: usize = line
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("unexpected line after {received} messages: {line:?}")
                    });
                assert_eq!(index, received, "messages lost or out of order");
                received += 1;
                progress_tx.send_replace(received);
            }
            panic!("the reader saw no end marker");
        }
    });

    // The sender floods in chunks until the reader has seen the QUIT, then
    // sends one more chunk to show the channel still flows. It only waits
    // for the normal reader, never for the slow client.
    let mut sent = 0;
    let mut quit_seen_after = None;
    while sent < MAX_MESSAGES {
        tokio::time::timeout(
            WAIT,
            progress.wait_for(|&received| received + CHUNK >= sent),
        )
        .await
        .unwrap_or_else(|_| panic!("the reader is stuck before message {sent}"))
        .expect("the reader is running");
        for _ in 0..CHUNK {
            sender
                .send(&format!("PRIVMSG #flood :msg-{sent} {padding}"))
                .await;
            sent += 1;
        }
        if quit_seen_after.is_some() {
            break;
        }
        if quit_seen.load(Ordering::SeqCst) {
            quit_seen_after = Some(sent);
        }
    }
    sender.send("PRIVMSG #flood :done").await;
    let (mut receiver, received, quits) =
        join_task(reader_task, Duration::from_secs(60), "the reader").await;

    assert!(
        quit_seen_after.is_some(),
        "the slow client was not cut off after {sent} messages of ~460 bytes"
    );
    assert_eq!(received, sent, "the reader got every message");
    assert_eq!(quits.len(), 1, "the QUIT arrived once: {quits:?}");
    let cut_at = quits[0];
    // It was cut off while the flood went on, not at its end, and not
    // before its sendq could have filled.
    assert!(cut_at < sent, "cut off at {cut_at} of {sent}");
    let line_len = format!(":flooder!~flooder@127.0.0.1 PRIVMSG #flood :msg-0 {padding}\r\n").len();
    assert!(
        cut_at >= SENDQ / line_len - 10,
        "cut off after only {cut_at} messages"
    );
    eprintln!("slow client cut off after {cut_at} of {sent} messages");

    // Nobody else heard of it twice, and it is gone. (The reader's end
    // marker was fanned out after the QUIT, so the reader would have seen
    // a second one; the sender's WHOIS waits for any fan-out in progress.)
    receiver.expect_nothing().await;
    sender.expect_line(&quit_line).await;
    for c in [&mut sender, &mut receiver] {
        let nick = c.nick.clone();
        assert_eq!(
            c.exchange("WHOIS slow").await,
            [
                numeric("401", &nick, "slow :No such nick/channel"),
                numeric("318", &nick, "slow :End of /WHOIS list"),
            ]
        );
    }

    // Its socket ends: whatever the kernel still held, then EOF or a reset.
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    let mut ended = false;
    for _ in 0..10_000 {
        match tokio::time::timeout(WAIT, slow.read(&mut buf))
            .await
            .expect("the slow client's connection ends in time")
        {
            Ok(0) | Err(_) => {
                ended = true;
                break;
            }
            Ok(n) => total += n,
        }
    }
    assert!(ended, "the slow client's connection did not end");
    assert!(
        total < MAX_MESSAGES * line_len,
        "the slow client got {total} bytes"
    );
}

/// A bare connection for the thousand-client test: reading a flood of
/// JOINs through the harness (which parses every line) would dominate the
/// run time.
struct Bare {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    buf: Vec<u8>,
}

impl Bare {
    async fn connect(addr: SocketAddr) -> Bare {
        let (reader, writer) = tcp_connect(addr).await.into_split();
        Bare {
            reader: BufReader::new(reader),
            writer,
            buf: Vec::with_capacity(512),
        }
    }

    async fn send(&mut self, text: &str) {
        self.writer
            .write_all(text.as_bytes())
            .await
            .expect("write to server");
    }

    /// The next line without its CRLF.
    async fn line(&mut self) -> &[u8] {
        self.buf.clear();
        let n = tokio::time::timeout(WAIT, self.reader.read_until(b'\n', &mut self.buf))
            .await
            .expect("a line in time")
            .expect("read");
        assert!(n > 0, "connection closed");
        assert!(self.buf.ends_with(b"\r\n"), "{:?}", self.buf);
        &self.buf[..n - 2]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_clients_join_one_channel_and_all_receive_a_message() {
    const CLIENTS: usize = 1000;
    const CONCURRENCY: usize = 50;
    let started = std::time::Instant::now();
    let server = TestServer::start().await;
    let addr = server.addr;
    let gate = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let (joined_tx, mut joined_rx) = tokio::sync::mpsc::channel::<()>(CLIENTS);
    let message = ":speaker!~speaker@127.0.0.1 PRIVMSG #big :hello, all of you";

    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let gate = gate.clone();
            let joined_tx = joined_tx.clone();
            tokio::spawn(async move {
                let nick = format!("u{i}");
                let permit = gate.acquire_owned().await.expect("semaphore open");
                let mut c = Bare::connect(addr).await;
                c.send(&format!(
                    "NICK {nick}\r\nUSER {nick} 0 * :Real {nick}\r\nJOIN #big\r\n"
                ))
                .await;
                let own_join = format!(":{nick}!~{nick}@127.0.0.1 JOIN #big");
                let end_of_names = format!(":{SERVER} 366 {nick} #big :End of /NAMES list");
                let mut welcomed = false;
                let mut named = false;
                let mut own_joins = 0;
                let mut other_joins = 0usize;
                // The welcome, its own JOIN, NAMES, and JOINs of later
                // joiners that arrive meanwhile.
                for _ in 0..5000 {
                    let line = c.line().await;
                    if line.starts_with(format!(":{SERVER} 001 {nick} ").as_bytes()) {
                        welcomed = true;
                    } else if line == own_join.as_bytes() {
                        own_joins += 1;
                    } else if line.ends_with(b" JOIN #big") {
                        other_joins += 1;
                    } else if line == end_of_names.as_bytes() {
                        named = true;
                        break;
                    }
                }
                assert!(
                    welcomed && named && own_joins == 1,
                    "{nick} registered and joined"
                );
                drop(permit);
                joined_tx.send(()).await.expect("main task waits");
                // Then everyone joining later, until the message.
                let mut messages = 0;
                for _ in 0..5000 {
                    let line = c.line().await;
                    if line == message.as_bytes() {
                        messages += 1;
                        break;
                    }
                    assert!(
                        line.ends_with(b" JOIN #big"),
                        "{nick}: unexpected {:?}",
                        String::from_utf8_lossy(line)
                    );
                    other_joins += 1;
                }
                assert_eq!(messages, 1, "{nick} got the message");
                // Kept open until every member is checked: a member leaving
                // would send the others a QUIT.
                (nick, c, other_joins)
            })
        })
        .collect();
    drop(joined_tx);

    for _ in 0..CLIENTS {
        tokio::time::timeout(WAIT, joined_rx.recv())
            .await
            .expect("clients keep joining")
            .expect("a client failed before joining");
    }
    let joined_after = started.elapsed();

    let mut speaker = server.client("speaker").await;
    let lines = speaker.exchange("JOIN #big").await;
    let names: usize = lines
        .iter()
        .filter(|l| l.contains(" 353 "))
        .map(|l| l.rsplit_once(" :").expect("names").1.split(' ').count())
        .sum();
    assert_eq!(names, CLIENTS + 1, "NAMES lists everyone");
    speaker.send("PRIVMSG #big :hello, all of you").await;
    // The speaker's PONG comes after its PRIVMSG went out to everyone.
    speaker.expect_nothing().await;

    let mut other_joins = 0;
    let mut members = Vec::new();
    for task in tasks {
        let (nick, c, joins) = join_task(task, WAIT, "a member").await;
        other_joins += joins;
        members.push((nick, c));
    }
    // Each member saw the JOIN of everyone after it, the speaker included:
    // 999 + 998 + ... + 0 + 1000.
    assert_eq!(other_joins, CLIENTS * (CLIENTS - 1) / 2 + CLIENTS);

    // Nothing more for anyone: not the message again.
    let checks: Vec<_> = members
        .into_iter()
        .map(|(nick, mut c)| {
            tokio::spawn(async move {
                c.send(&format!("PING :{nick}\r\n")).await;
                let pong = format!(":{SERVER} PONG {SERVER} :{nick}");
                let line = c.line().await;
                assert_eq!(String::from_utf8_lossy(line), pong, "{nick}: only a PONG");
                c
            })
        })
        .collect();
    let mut members = Vec::new();
    for task in checks {
        members.push(join_task(task, WAIT, "a member's last check").await);
    }
    eprintln!(
        "{CLIENTS} clients joined in {joined_after:?}; all done in {:?}",
        started.elapsed()
    );
    drop(members);
}

#[tokio::test]
async fn nick_changes_and_quits_reach_each_peer_exactly_once() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut carol = server.client("carol").await;
    let mut dave = server.client("dave").await;
    alice.exchange("JOIN #one,#two,#three").await;
    bob.exchange("JOIN #one,#two,#three").await;
    carol.exchange("JOIN #three").await;
    dave.exchange("JOIN #elsewhere").await;
    for c in [&mut alice, &mut bob, &mut carol, &mut dave] {
        c.sync().await;
    }

    alice.send("NICK alicia").await;
    let nick_line = ":alice!~alice@127.0.0.1 NICK alicia";
    assert_eq!(alice.sync().await, [nick_line]);
    assert_eq!(bob.sync().await, [nick_line]);
    assert_eq!(carol.sync().await, [nick_line]);
    dave.expect_nothing().await;

    alice.send("QUIT :going home").await;
    assert_eq!(
        alice.read_to_end().await,
        ["ERROR :Closing link: 127.0.0.1 (Quit: going home)"]
    );
    // Alice's ERROR is queued before her QUIT goes out, and a PING can
    // overtake a fan-out in progress: so each peer waits for the QUIT
    // itself, and a WHOIS (which waits for the fan-out to finish) shows
    // nothing else followed.
    let quit_line = ":alicia!~alice@127.0.0.1 QUIT :Quit: going home";
    bob.expect_line(quit_line).await;
    assert_eq!(
        bob.exchange("WHOIS alicia").await,
        [
            numeric("401", "bob", "alicia :No such nick/channel"),
            numeric("318", "bob", "alicia :End of /WHOIS list"),
        ]
    );
    carol.expect_line(quit_line).await;
    carol.expect_nothing().await;
    dave.expect_nothing().await;

    // A connection that just goes away looks like a QUIT to its peers.
    carol.sync().await;
    drop(carol);
    bob.expect_line(":carol!~carol@127.0.0.1 QUIT :Remote host closed the connection")
        .await;
    assert_eq!(
        bob.exchange("WHOIS carol").await,
        [
            numeric("401", "bob", "carol :No such nick/channel"),
            numeric("318", "bob", "carol :End of /WHOIS list"),
        ]
    );
    dave.expect_nothing().await;
}

/// The real binary on a free port with its own data directory, killed if
/// the test ends while it still runs.
struct Parlor {
    child: std::process::Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Parlor {
    /// Starts `parlor` (named `irc.test`) and waits until its port accepts
    /// a connection, which is returned.
    async fn start() -> (Parlor, TcpStream) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = dir.path().join("parlor.toml");
        std::fs::write(&config, format!("[server]\nname = \"{SERVER}\"\n")).expect("write config");
        let log = std::fs::File::create(dir.path().join("parlor.log")).expect("log file");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("address");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_parlor"))
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--http-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start parlor");
        let mut parlor = Parlor { child, addr, dir };
        // Polled without pause, so the connection comes as soon as the port
        // accepts one.
        let deadline = std::time::Instant::now() + WAIT;
        for _ in 0..10_000_000 {
            if let Some(status) = parlor.child.try_wait().expect("child status") {
                panic!("parlor exited early with {status}:\n{}", parlor.log());
            }
            if let Ok(stream) = TcpStream::connect(addr).await {
                return (parlor, stream);
            }
            if std::time::Instant::now() > deadline {
                break;
            }
            tokio::task::yield_now().await;
        }
        panic!("parlor did not listen within {WAIT:?}:\n{}", parlor.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("parlor.log")).unwrap_or_default()
    }

    /// Sends `SIGsignal` to this child (and nothing else). A direct
    /// `kill(2)` rather than the `kill` command, whose start-up would give
    /// the server time that a real signal does not.
    fn signal(&self, signal: &str) {
        extern "C" {
            fn kill(pid: i32, sig: i32) -> i32;
        }
        let number = match signal {
            "INT" => 2,
            "TERM" => 15,
            _ => panic!("no number for SIG{signal}"),
        };
        let pid = i32::try_from(self.child.id()).expect("pid fits in pid_t");
        // SAFETY: kill(2) takes two integers and touches no memory of ours;
        // the pid is our own child, not yet reaped, so it names no other
        // process.
        let result = unsafe { kill(pid, number) };
        assert_eq!(result, 0, "kill(SIG{signal}) failed");
    }

    /// Its exit status, waiting up to 10 s for it; `Err` describes how it
    /// failed to exit cleanly.
    async fn clean_exit(&mut self) -> Result<(), String> {
        for _ in 0..200 {
            match self.child.try_wait().expect("child status") {
                Some(status) if status.success() => return Ok(()),
                Some(status) => return Err(format!("parlor ended with {status}")),
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        Err("parlor still running after 10 s".to_owned())
    }
}

impl Drop for Parlor {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn shutdown_on_sigint_tells_every_client_and_exits_zero() {
    for signal in ["INT", "TERM"] {
        let (mut parlor, probe) = Parlor::start().await;
        drop(probe);
        let mut ann = Client::connect(parlor.addr).await;
        ann.register("ann").await;
        let mut ben = Client::connect(parlor.addr).await;
        ben.register("ben").await;
        ann.exchange("JOIN #bye").await;
        ben.exchange("JOIN #bye").await;
        ann.sync().await;

        parlor.signal(signal);
        for c in [&mut ann, &mut ben] {
            let other = if c.nick == "ann" { "ben" } else { "ann" };
            let lines = c.read_to_end().await;
            let ok = lines.split_last().is_some_and(|(last, before)| {
                last.starts_with("ERROR :")
                    && last.contains("shutting down")
                    // The other one may be seen leaving first.
                    && before
                        .iter()
                        .all(|l| l.starts_with(&format!(":{other}!~{other}@127.0.0.1 QUIT :")))
            });
            if !ok {
                let exit = parlor.clean_exit().await;
                panic!(
                    "SIG{signal}: {} got {lines:?} before the end ({exit:?}); log:\n{}",
                    c.nick,
                    parlor.log()
                );
            }
        }
        if let Err(e) = parlor.clean_exit().await {
            panic!("SIG{signal}: {e}; log:\n{}", parlor.log());
        }
    }
}

/// A signal that comes as soon as the server accepts connections must
/// still end it cleanly: once it serves clients, it must not die of the
/// signal's default action.
#[tokio::test]
async fn a_signal_as_soon_as_the_server_listens_still_ends_it_cleanly() {
    for signal in ["INT", "TERM"] {
        for attempt in 0..5 {
            let (mut parlor, _probe) = Parlor::start().await;
            parlor.signal(signal);
            if let Err(e) = parlor.clean_exit().await {
                panic!(
                    "SIG{signal} as soon as the port accepted a connection \
                     (attempt {attempt}): {e}; log:\n{}",
                    parlor.log()
                );
            }
        }
    }
}
