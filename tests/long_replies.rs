//! Replies made in slices, a short hold of the state lock each (WHO, LIST,
//! NAMES; see `commands/sliced.rs`): complete, ended last, answered before the
//! client's next command, labeled as one batch, made while clients come
//! and go without listing anyone twice, and paced by the client's reading,
//! so a reply longer than the sendq reaches a client that reads instead of
//! cutting it off.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::OwnedReadHalf;

/// Ten times what a slice looks at here.
const CROWD: usize = 300;
/// Entries per slice (`set_slice_entries`), so that a reply takes several
/// slices in a release build as well.
const SLICE: usize = 30;

/// A server with `extra` TOML, whose slices are of [`SLICE`] entries.
async fn start_with(extra: &str) -> TestServer {
    parlor::commands::set_slice_entries(SLICE);
    TestServer::start_with(extra).await
}

async fn crowd(server: &TestServer, prefix: &str) -> Vec<Client> {
    let mut clients = Vec::with_capacity(CROWD);
    for i in 0..CROWD {
        clients.push(server.client(&format!("{prefix}{i}")).await);
    }
    clients
}

/// The nick (sixth parameter) of each 352 line for `viewer`.
fn who_nicks(lines: &[String], viewer: &str) -> Vec<String> {
    let prefix = numeric("352", viewer, "");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| rest.split(' ').nth(4).expect("a nick").to_owned())
        .collect()
}

fn nicks(prefix: &str, range: impl Iterator<Item = usize>) -> BTreeSet<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn who_and_list_over_a_crowd_are_complete_and_end_last() {
    let server = start_with("").await;
    let mut crowd = crowd(&server, "u").await;
    for (i, c) in crowd.iter_mut().enumerate().take(100) {
        c.exchange(&format!("JOIN #c{i}")).await;
    }
    let mut alice = server.client("alice").await;

    // Answered in full, 315 last, and before the PING sent after it.
    let lines = alice.exchange("WHO *").await;
    assert_eq!(lines.len(), CROWD + 2, "{lines:?}");
    assert_eq!(
        lines.last().unwrap(),
        &numeric("315", "alice", "* :End of WHO list")
    );
    let listed = who_nicks(&lines, "alice");
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "someone listed twice");
    let mut everyone = nicks("u", 0..CROWD);
    everyone.insert("alice".into());
    assert_eq!(unique, everyone);

    // A mask: u1, u10-u19, u100-u199.
    let lines = alice.exchange("WHO u1*").await;
    let listed: BTreeSet<String> = who_nicks(&lines, "alice").into_iter().collect();
    let expected: BTreeSet<String> = nicks("u", 0..CROWD)
        .into_iter()
        .filter(|n| n.starts_with("u1"))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(lines.len(), expected.len() + 1);

    // Every channel once, between 321 and 323.
    let lines = alice.exchange("LIST").await;
    assert_eq!(lines[0], numeric("321", "alice", "Channel :Users  Name"));
    assert_eq!(
        lines.last().unwrap(),
        &numeric("323", "alice", ":End of /LIST")
    );
    let channels: BTreeSet<&str> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| {
            l.strip_prefix(&numeric("322", "alice", ""))
                .and_then(|rest| rest.strip_suffix(" 1 :"))
                .unwrap_or_else(|| panic!("not a 322 for a channel of 1: {l}"))
        })
        .collect();
    assert_eq!(channels.len(), 100);
    assert!(channels.iter().all(|c| c.starts_with("#c")));
}

#[tokio::test]
async fn who_on_a_big_channel_lists_every_member_once() {
    let server = start_with("").await;
    let mut crowd = crowd(&server, "m").await;
    for c in &mut crowd {
        c.send("JOIN #big").await;
    }
    for c in &mut crowd {
        c.sync().await;
    }
    let mut alice = server.client("alice").await;
    let lines = alice.exchange("WHO #big %n").await;
    assert_eq!(
        lines.last().unwrap(),
        &numeric("315", "alice", "#big :End of WHO list")
    );
    let prefix = numeric("354", "alice", "");
    let listed: Vec<&str> = lines[..lines.len() - 1]
        .iter()
        .map(|l| l.strip_prefix(&prefix).unwrap_or_else(|| panic!("{l}")))
        .collect();
    let unique: BTreeSet<String> = listed.iter().map(|n| n.to_string()).collect();
    assert_eq!(listed.len(), CROWD);
    assert_eq!(unique, nicks("m", 0..CROWD));
}

/// NAMES of a big channel named three times, and of one that does not
/// exist: the big one once, in full, in lines that fit, then each end.
#[tokio::test]
async fn names_answers_each_channel_once_in_full_however_often_it_is_named() {
    let server = start_with("").await;
    let mut crowd = crowd(&server, "member_with_a_long_nick_").await;
    for c in &mut crowd {
        c.send("JOIN #big").await;
    }
    for c in &mut crowd {
        c.sync().await;
    }
    let mut alice = server.client("alice").await;
    let lines = alice.exchange("NAMES #big,#BIG,#nowhere,#big").await;
    let (names, ends) = lines.split_at(lines.len() - 2);
    assert_eq!(
        ends,
        [
            numeric("366", "alice", "#big :End of /NAMES list"),
            numeric("366", "alice", "#nowhere :End of /NAMES list"),
        ]
    );
    let prefix = numeric("353", "alice", "= #big :");
    let mut listed = Vec::new();
    for line in names {
        assert!(line.len() + 2 <= 512, "too long: {line}");
        let rest = line
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{line}"));
        listed.extend(
            rest.split(' ')
                .map(|n| n.trim_start_matches('@').to_owned()),
        );
    }
    assert!(names.len() > 10, "{} lines", names.len());
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "someone listed twice");
    assert_eq!(unique, nicks("member_with_a_long_nick_", 0..CROWD));
}

#[tokio::test]
async fn a_labeled_who_is_one_batch_however_many_slices_it_takes() {
    let server = start_with("").await;
    let _crowd = crowd(&server, "u").await;
    let mut alice = server
        .client_with_caps("alice", "batch labeled-response")
        .await;
    let lines = alice.exchange("@label=big WHO *").await;
    assert_eq!(lines.len(), CROWD + 4, "start, 301 replies, 315, end");
    let reference = lines[0]
        .strip_prefix(&format!("@label=big :{SERVER} BATCH +"))
        .and_then(|rest| rest.strip_suffix(" labeled-response"))
        .unwrap_or_else(|| panic!("{}", lines[0]));
    let inside = format!("@batch={reference} :{SERVER} ");
    for line in &lines[1..CROWD + 2] {
        assert!(line.starts_with(&format!("{inside}352 alice ")), "{line}");
    }
    assert_eq!(
        lines[CROWD + 2],
        format!("{inside}315 alice * :End of WHO list")
    );
    assert_eq!(lines[CROWD + 3], format!(":{SERVER} BATCH -{reference}"));
}

#[tokio::test]
async fn clients_coming_and_going_during_a_who_are_listed_at_most_once() {
    let server = start_with("").await;
    let mut crowd = crowd(&server, "u").await;
    let mut alice = server.client("alice").await;
    alice.send("WHO *").await;
    // Meanwhile a third of the crowd leaves and a third changes nick.
    for (i, c) in crowd.iter_mut().enumerate().take(2 * CROWD / 3) {
        if i % 2 == 0 {
            c.send("QUIT").await;
        } else {
            c.send(&format!("NICK renamed{i}")).await;
        }
    }
    let lines = alice.sync().await;
    assert_eq!(
        lines.last().unwrap(),
        &numeric("315", "alice", "* :End of WHO list")
    );
    // The username stays when the nick changes: one line per user at most.
    let prefix = numeric("352", "alice", "* ");
    let users: Vec<&str> = lines[..lines.len() - 1]
        .iter()
        .map(|l| {
            let rest = l.strip_prefix(&prefix).unwrap_or_else(|| panic!("{l}"));
            rest.split(' ').next().unwrap()
        })
        .collect();
    let unique: BTreeSet<&str> = users.iter().copied().collect();
    assert_eq!(unique.len(), users.len(), "someone listed twice: {users:?}");
    // Those who stayed under their nick are all there.
    for i in (2 * CROWD / 3)..CROWD {
        assert!(unique.contains(format!("~u{i}").as_str()), "u{i} missing");
    }
}

/// A client that asks for a long reply and quits, then closes without
/// reading: the reply meets a closed socket, yet its peers see the reason
/// it gave, whether the QUIT came in the same write or was still in the
/// socket, unread, when the reply failed.
#[tokio::test]
async fn a_quit_sent_behind_a_long_reply_is_the_reason_peers_see() {
    let server = start_with("").await;
    let _crowd = crowd(&server, "u").await;
    let mut alice = server.client("alice").await;
    let mut quitter = server.client("quitter").await;
    let mut later = server.client("later").await;
    setup_channel("#c", &mut [&mut alice, &mut quitter, &mut later]).await;

    quitter.send_raw(b"WHO *\r\nQUIT :bye\r\n").await;
    drop(quitter);
    alice
        .expect_line(":quitter!~quitter@127.0.0.1 QUIT :Quit: bye")
        .await;

    later.send("WHO *").await;
    // The reply has begun: the server reads nothing more until it ends.
    later.expect_numeric("352").await;
    later.send("QUIT :see you").await;
    drop(later);
    alice
        .expect_line(":later!~later@127.0.0.1 QUIT :Quit: see you")
        .await;
}

async fn next(lines: &mut Lines<BufReader<OwnedReadHalf>>) -> String {
    tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("a line in time")
        .expect("read")
        .expect("still connected")
}

/// The sendq and the server's socket buffer for [`read_late`]: with the
/// client's receive buffer, the kernel holds about 20 KB of a reply, and
/// the queue 8 KB more before the client is cut off.
const SMALL_BUFFERS: &str = "[limits]\nsendq_bytes = 8192\nsend_buffer_bytes = 4096\n";

/// A reply of about 60 KB to a client that reads nothing for a while,
/// then everything. The socket buffers are small on both ends (loopback
/// otherwise takes megabytes), so most of the reply must wait for the
/// client: sent at once, it would pass the sendq and cut the client off.
async fn read_late(labeled: bool) {
    let server = start_with(SMALL_BUFFERS).await;
    // Long realnames, for a long reply from a few hundred clients.
    let mut crowd = Vec::with_capacity(CROWD);
    for i in 0..CROWD {
        let mut client = server.connect().await;
        client.send(&format!("NICK u{i}")).await;
        client.send(&format!("USER u{i} 0 * :{i:0>100}")).await;
        client.expect_numeric("376").await;
        crowd.push(client);
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let in_kernel = 2 * 4096 + socket.recv_buffer_size().unwrap() as usize;
    let stream = tokio::time::timeout(WAIT, socket.connect(server.addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let caps: &[u8] = if labeled {
        b"CAP REQ :batch labeled-response\r\nCAP END\r\n"
    } else {
        b""
    };
    write.write_all(caps).await.unwrap();
    write
        .write_all(b"NICK slow\r\nUSER slow 0 * :Real slow\r\n")
        .await
        .unwrap();
    while !next(&mut lines).await.contains(" 376 ") {}
    let label: &[u8] = if labeled { b"@label=w " } else { b"" };
    write.write_all(label).await.unwrap();
    write
        .write_all(b"WHO * %tcuihsnfdaor,123\r\nPING :after\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut received = 0;
    if labeled {
        let start = next(&mut lines).await;
        assert!(start.starts_with("@label=w "), "{start}");
        received += start.len() + 2;
    }
    let mut replies = 0;
    loop {
        let line = next(&mut lines).await;
        received += line.len() + 2;
        let line = untagged(&line);
        if line.contains(" 354 slow 123 ") {
            replies += 1;
        } else {
            assert_eq!(line, numeric("315", "slow", "* :End of WHO list"));
            break;
        }
    }
    assert_eq!(replies, CROWD + 1);
    if labeled {
        assert!(next(&mut lines).await.contains(" BATCH -"));
    }
    // Still connected: no ERROR, and the next command is answered.
    assert_eq!(
        next(&mut lines).await,
        format!(":{SERVER} PONG {SERVER} :after")
    );
    // Otherwise this would not test the pacing.
    assert!(
        received > 2 * (in_kernel + 8192),
        "{received} bytes fit in the buffers"
    );
}

#[tokio::test]
async fn a_reply_longer_than_the_sendq_reaches_a_client_that_reads_late() {
    read_late(false).await;
}

#[tokio::test]
async fn a_labeled_reply_longer_than_the_sendq_reaches_a_client_that_reads_late() {
    read_late(true).await;
}
