//! Message tags on the wire: server-time, msgid, client-only tags and
//! TAGMSG (message-tags), echo-message and labeled-response, each checked
//! with and without the capability.

mod common;
use common::*;

/// Parses `YYYY-MM-DDThh:mm:ss.sssZ` into seconds since the epoch, by hand
/// so the test does not share the server's code.
fn seconds_of(time: &str) -> u64 {
    assert_eq!(time.len(), 24, "time tag {time:?}");
    let field = |range: std::ops::Range<usize>| time[range].parse::<u64>().unwrap();
    let (year, month, day) = (field(0..4), field(5..7), field(8..10));
    assert!(time.ends_with('Z') && &time[10..11] == "T" && &time[19..20] == ".");
    let days_before_month = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap_days = (1970..year)
        .filter(|y| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        .count() as u64;
    let leap_this_year = month > 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = (year - 1970) * 365 + leap_days + days_before_month[month as usize - 1] + day - 1
        + u64::from(leap_this_year);
    days * 86_400 + field(11..13) * 3600 + field(14..16) * 60 + field(17..19)
}

#[tokio::test]
async fn each_member_gets_the_tags_it_asked_for() {
    let server = TestServer::start().await;
    let mut all = server
        .client_with_caps("all", "message-tags server-time")
        .await;
    let mut timed = server.client_with_caps("timed", "server-time").await;
    let mut plain = server.client("plain").await;
    let mut bob = server.client("bob").await;
    setup_channel("#c", &mut [&mut bob, &mut all, &mut timed, &mut plain]).await;

    bob.send("PRIVMSG #c :hello").await;
    let to_all = all.next_line().await;
    let to_timed = timed.next_line().await;
    let body = format!(":{} PRIVMSG #c :hello", bob.mask());
    plain.expect_line(&body).await;
    assert_eq!(untagged(&to_all), body);
    assert_eq!(untagged(&to_timed), body);

    let time = tag(&to_all, "time").expect("server-time gives time");
    assert_eq!(tag(&to_timed, "time"), Some(time), "one time for everyone");
    assert!(seconds_of(time).abs_diff(unix_now()) <= 5, "{time} is now");
    let msgid = tag(&to_all, "msgid").expect("message-tags gives msgid");
    assert!(!msgid.is_empty());
    assert_eq!(tag(&to_timed, "msgid"), None, "msgid needs message-tags");

    // Another message gets another id, and events are stamped too.
    bob.send("PRIVMSG #c :again").await;
    let again = all.next_line().await;
    assert_ne!(tag(&again, "msgid"), Some(msgid));
    bob.send("PART #c").await;
    let part = all.next_line().await;
    assert_eq!(untagged(&part), format!(":{} PART #c", bob.mask()));
    assert!(tag(&part, "time").is_some() && tag(&part, "msgid").is_some());
    timed.sync().await;
    plain.sync().await;
}

/// Milliseconds since the epoch, from a time tag.
fn millis_of(time: &str) -> u64 {
    seconds_of(time) * 1000 + time[20..23].parse::<u64>().unwrap()
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.unwrap().as_millis() as u64
}

#[tokio::test]
async fn a_message_is_stamped_when_it_comes_in() {
    let server = TestServer::start().await;
    let mut timed = server.client_with_caps("timed", "server-time").await;
    let mut bob = server.client("bob").await;
    // Long enough after bob connected that a clock read then would show.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let sent = now_ms();
    bob.send("PRIVMSG timed :now").await;
    let line = timed.next_line().await;
    let received = now_ms();
    assert_eq!(
        untagged(&line),
        format!(":{} PRIVMSG timed :now", bob.mask())
    );
    let time = millis_of(tag(&line, "time").expect("server-time gives time"));
    assert!(
        (sent..=received).contains(&time),
        "stamped {time}, sent at {sent}, received at {received}"
    );
}

#[tokio::test]
async fn client_only_tags_and_tagmsg_reach_only_message_tags_clients() {
    let server = TestServer::start().await;
    let mut alice = server.client_with_caps("alice", "message-tags").await;
    let mut dave = server.client_with_caps("dave", "message-tags").await;
    let mut plain = server.client("plain").await;
    setup_channel("#c", &mut [&mut alice, &mut dave, &mut plain]).await;

    alice
        .send("@+draft/react=\\:)\\s;+example.org/x PRIVMSG #c :hi")
        .await;
    let line = dave.next_line().await;
    assert_eq!(untagged(&line), format!(":{} PRIVMSG #c :hi", alice.mask()));
    assert_eq!(
        tag(&line, "+draft/react"),
        Some("\\:)\\s"),
        "escaped as sent"
    );
    assert_eq!(tag(&line, "+example.org/x"), Some(""));
    assert!(line.starts_with("@msgid="), "server tags first: {line}");
    plain
        .expect_line(&format!(":{} PRIVMSG #c :hi", alice.mask()))
        .await;

    // TAGMSG is for those who understand tags; the others never see it.
    alice.send("@+typing=active TAGMSG #c").await;
    let line = dave.next_line().await;
    assert_eq!(untagged(&line), format!(":{} TAGMSG #c", alice.mask()));
    assert_eq!(tag(&line, "+typing"), Some("active"));
    alice.send("@+typing=active TAGMSG plain").await;
    alice.send("@+typing=paused TAGMSG dave").await;
    let line = dave.next_line().await;
    assert_eq!(untagged(&line), format!(":{} TAGMSG dave", alice.mask()));
    assert_eq!(tag(&line, "+typing"), Some("paused"));
    plain.expect_nothing().await;
    assert!(alice.sync().await.is_empty(), "no reply to a TAGMSG");

    // Tags from a client that did not enable message-tags are not relayed,
    // and server tags can never be forged.
    plain
        .send("@+x=1;msgid=forged;time=never PRIVMSG #c :from plain")
        .await;
    let line = dave.next_line().await;
    assert_eq!(tag(&line, "+x"), None);
    assert_ne!(tag(&line, "msgid"), Some("forged"));
    alice.send("@msgid=forged;+y=2 PRIVMSG dave :direct").await;
    let line = dave.next_line().await;
    assert_ne!(tag(&line, "msgid"), Some("forged"));
    assert_eq!(tag(&line, "+y"), Some("2"));
    alice.sync().await;
}

#[tokio::test]
async fn client_tag_data_past_4094_bytes_is_refused() {
    let server = TestServer::start().await;
    let mut alice = server.client_with_caps("alice", "message-tags").await;
    let mut dave = server.client_with_caps("dave", "message-tags").await;
    // "+a=" and 4091 bytes: exactly 4094 bytes of tag data.
    let fits = format!("@+a={} TAGMSG dave", "x".repeat(4091));
    alice.send(&fits).await;
    let line = dave.next_line().await;
    assert_eq!(tag(&line, "+a").map(str::len), Some(4091));
    let too_long = format!("@+a={} TAGMSG dave", "x".repeat(4092));
    assert_eq!(
        alice.exchange(&too_long).await,
        [numeric("417", "alice", ":Input line was too long")]
    );
    dave.expect_nothing().await;
}

#[tokio::test]
async fn echo_message_returns_the_message_with_its_msgid() {
    let server = TestServer::start().await;
    let mut alice = server
        .client_with_caps("alice", "echo-message message-tags")
        .await;
    let mut dave = server.client_with_caps("dave", "message-tags").await;
    let mut plain = server.client("plain").await;
    setup_channel("#c", &mut [&mut alice, &mut dave, &mut plain]).await;

    alice.send("PRIVMSG #c :to the channel").await;
    let echo = alice.next_line().await;
    let delivered = dave.next_line().await;
    assert_eq!(echo, delivered, "the same line, msgid included");
    assert!(tag(&echo, "msgid").is_some());
    plain.next_line().await;

    alice.send("NOTICE plain :to a user").await;
    let echo = alice.next_line().await;
    assert_eq!(
        untagged(&echo),
        format!(":{} NOTICE plain :to a user", alice.mask())
    );
    plain.next_line().await;

    // To oneself: delivered, and echoed ("duplicate messages being sent by
    // the server, as both sent and received messages").
    assert_eq!(alice.exchange("PRIVMSG alice :me").await.len(), 2);

    // Without echo-message, nothing comes back.
    dave.send("PRIVMSG #c :no echo").await;
    assert!(dave.sync().await.is_empty());
    alice.next_line().await;
    plain.next_line().await;
}

#[tokio::test]
async fn labeled_commands_get_one_labeled_answer() {
    let server = TestServer::start().await;
    let mut alice = server
        .client_with_caps("alice", "batch labeled-response")
        .await;
    let mut plain = server.client("plain").await;

    // One line: labeled itself.
    assert_eq!(
        alice.exchange("@label=one PING tok").await,
        [format!("@label=one :{SERVER} PONG {SERVER} :tok")]
    );
    // Nothing: an ACK.
    assert_eq!(
        alice.exchange("@label=none PRIVMSG plain :hi").await,
        [format!("@label=none :{SERVER} ACK")]
    );
    plain.next_line().await;
    // Several: a labeled-response batch.
    let lines = alice.exchange("@label=many JOIN #c").await;
    assert_eq!(lines.len(), 5, "{lines:?}");
    let start = &lines[0];
    assert!(
        start.starts_with(&format!("@label=many :{SERVER} BATCH +")),
        "{start}"
    );
    assert!(start.ends_with(" labeled-response"));
    let reference = start.split(' ').nth(3).unwrap().trim_start_matches('+');
    let in_batch = format!("@batch={reference} ");
    assert_eq!(lines[1], format!("{in_batch}:{} JOIN #c", alice.mask()));
    assert!(lines[2].starts_with(&format!("{in_batch}:{SERVER} 353 alice = #c :")));
    assert!(lines[3].starts_with(&format!("{in_batch}:{SERVER} 366 alice #c ")));
    assert_eq!(lines[4], format!(":{SERVER} BATCH -{reference}"));
    // An error is a reply too.
    assert_eq!(
        alice.exchange("@label=err PRIVMSG nobody :x").await,
        [format!(
            "@label=err :{SERVER} 401 alice nobody :No such nick/channel"
        )]
    );
    // Lines others cause meanwhile are not part of the reply.
    plain.send("PRIVMSG alice :unrelated").await;
    plain.sync().await;
    assert_eq!(
        alice.exchange("@label=two PING tok").await,
        [
            format!(":{} PRIVMSG alice :unrelated", plain.mask()),
            format!("@label=two :{SERVER} PONG {SERVER} :tok")
        ]
    );
}

#[tokio::test]
async fn labels_need_labeled_response_and_batch() {
    let server = TestServer::start().await;
    let mut only_labels = server.client_with_caps("half", "labeled-response").await;
    assert_eq!(
        only_labels.exchange("@label=x PING tok").await,
        [format!(":{SERVER} PONG {SERVER} :tok")]
    );
    let mut plain = server.client("plain").await;
    assert_eq!(
        plain.exchange("@label=x PING tok").await,
        [format!(":{SERVER} PONG {SERVER} :tok")]
    );
}

#[tokio::test]
async fn slow_commands_are_labeled_when_they_finish() {
    let server = TestServer::start_with(
        "[accounts]\nargon2_memory_kib = 1024\nargon2_iterations = 1\nnick_protection = false\n",
    )
    .await;
    let mut alice = server
        .client_with_caps("alice", "batch labeled-response")
        .await;
    let lines = alice.exchange("@label=reg REGISTER * * hunter22").await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].starts_with(&format!("@label=reg :{SERVER} BATCH +")));
    assert!(lines[1].ends_with(" REGISTER SUCCESS alice :Account successfully registered"));
    assert!(lines[2].contains(" 900 alice "));
    assert!(lines[3].starts_with(&format!(":{SERVER} BATCH -")));
}
