//! Tests of the outbox on real loopback sockets.

use super::*;
use crate::server::flush::{flush_on_park, write_held, DelayedWrites, FlushScope, MAX_HELD_SCOPES};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// An outbox on one end of a loopback connection, and the other end.
async fn connected(limit: usize) -> (Outbox, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    // A small send buffer, so that a peer that is not reading fills it
    // quickly, as on a real network.
    socket2::SockRef::from(&server)
        .set_send_buffer_size(8192)
        .unwrap();
    (Outbox::new(limit, server), client)
}

async fn read_all(mut peer: TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), peer.read_to_end(&mut received))
        .await
        .expect("the outbox closed its socket")
        .unwrap();
    String::from_utf8(received).unwrap()
}

#[tokio::test]
async fn passing_the_limit_overflows_and_ends_the_connection() {
    let (outbox, peer) = connected(10).await;
    assert!(outbox.send(&Bytes::from_static(b"12345\r\n")));
    // The first line went straight to the socket, so it no longer counts.
    assert_eq!(outbox.queued_bytes(), 0);
    assert!(!outbox.send(&Bytes::from_static(b"12345678901\r\n")));
    assert!(outbox.is_overflowed());
    assert!(outbox.is_ended());
    assert_eq!(outbox.serve_until_ended().await, "SendQ exceeded");
    outbox.finish().await;
    assert_eq!(
        read_all(peer).await,
        "12345\r\n\r\nERROR :SendQ exceeded\r\n"
    );
}

#[tokio::test]
async fn closing_flushes_what_was_queued_and_refuses_more() {
    let (outbox, peer) = connected(1024).await;
    outbox.send(&Bytes::from_static(b"A\r\n"));
    outbox.close_with(Bytes::from_static(b"ERROR :bye\r\n"));
    assert!(!outbox.send(&Bytes::from_static(b"late\r\n")));
    assert_eq!(outbox.serve_until_ended().await, "Connection closed");
    outbox.finish().await;
    assert_eq!(read_all(peer).await, "A\r\nERROR :bye\r\n");
}

#[tokio::test]
async fn a_scope_puts_writes_off_until_it_ends() {
    let (outbox, peer) = connected(1024).await;
    {
        let _scope = FlushScope::enter();
        {
            let _inner = FlushScope::enter();
            outbox.send(&Bytes::from_static(b"one\r\n"));
        }
        outbox.send(&Bytes::from_static(b"two\r\n"));
        assert_eq!(outbox.queued_bytes(), 10, "nothing written inside");
    }
    assert_eq!(outbox.queued_bytes(), 0);
    outbox.close_with(Bytes::from_static(b"ERROR :bye\r\n"));
    outbox.finish().await;
    assert_eq!(read_all(peer).await, "one\r\ntwo\r\nERROR :bye\r\n");
}

#[tokio::test]
async fn input_scopes_hold_their_writes_until_the_thread_goes_idle() {
    let (outbox, peer) = connected(1024).await;
    let delayed_writes = DelayedWrites::default();
    let send_in_scope = |line: &'static [u8]| {
        let _scope = FlushScope::enter_for_input(&delayed_writes);
        outbox.send(&Bytes::from_static(line));
    };
    send_in_scope(b"one\r\n");
    assert_eq!(
        outbox.queued_bytes(),
        0,
        "no idle hook yet: written at once"
    );

    // As the runtime does before this thread goes idle; from now on it
    // counts on that.
    flush_on_park();
    send_in_scope(b"two\r\n");
    assert_eq!(outbox.queued_bytes(), 5, "left for the idle hook");
    // A task that keeps the thread busy without input writes them too.
    write_held();
    assert_eq!(outbox.queued_bytes(), 0);

    // A thread that never goes idle still writes every MAX_HELD_SCOPES.
    for _ in 1..MAX_HELD_SCOPES {
        send_in_scope(b"x\r\n");
    }
    assert_eq!(outbox.queued_bytes(), 3 * (MAX_HELD_SCOPES as usize - 1));
    send_in_scope(b"x\r\n");
    assert_eq!(outbox.queued_bytes(), 0, "the last scope wrote them all");

    // Other scopes write what was held at once.
    send_in_scope(b"three\r\n");
    {
        let _scope = FlushScope::enter();
    }
    assert_eq!(outbox.queued_bytes(), 0);
    outbox.close_with(Bytes::from_static(b"ERROR :bye\r\n"));
    outbox.finish().await;
    let xs = "x\r\n".repeat(MAX_HELD_SCOPES as usize);
    assert_eq!(
        read_all(peer).await,
        format!("one\r\ntwo\r\n{xs}three\r\nERROR :bye\r\n")
    );
}

#[tokio::test]
async fn delayed_lines_wait_for_the_next_urgent_line_in_order() {
    let (outbox, peer) = connected(1024).await;
    let delayed_writes = DelayedWrites::default();
    {
        let _scope = FlushScope::enter_with(Some(&delayed_writes));
        outbox.send_delayed(&Bytes::from_static(b"JOIN\r\n"));
    }
    assert_eq!(outbox.queued_bytes(), 6, "still waiting for company");
    {
        let _scope = FlushScope::enter_with(Some(&delayed_writes));
        outbox.send(&Bytes::from_static(b"PRIVMSG\r\n"));
    }
    assert_eq!(outbox.queued_bytes(), 0);
    outbox.close_with(Bytes::from_static(b"ERROR :bye\r\n"));
    outbox.finish().await;
    assert_eq!(read_all(peer).await, "JOIN\r\nPRIVMSG\r\nERROR :bye\r\n");
}

#[tokio::test]
async fn delayed_lines_alone_are_written_by_the_delayed_writer() {
    let (outbox, peer) = connected(1024).await;
    let delayed_writes = Arc::new(DelayedWrites::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = tokio::spawn({
        let delayed_writes = delayed_writes.clone();
        let stop = stop.clone();
        async move { delayed_writes.run(stop.cancelled()).await }
    });
    {
        let _scope = FlushScope::enter_with(Some(&delayed_writes));
        outbox.send_delayed(&Bytes::from_static(b"QUIT\r\n"));
        outbox.send_delayed(&Bytes::from_static(b"PART\r\n"));
    }
    let written = Instant::now() + Duration::from_secs(5);
    while outbox.queued_bytes() > 0 {
        assert!(Instant::now() < written, "the delayed writer never wrote");
        tokio::time::sleep(DELAYED_WRITE_WINDOW).await;
    }
    stop.cancel();
    writer.await.unwrap();
    outbox.close_with(Bytes::from_static(b"ERROR :bye\r\n"));
    outbox.finish().await;
    assert_eq!(read_all(peer).await, "QUIT\r\nPART\r\nERROR :bye\r\n");
}

#[tokio::test]
async fn a_full_socket_is_drained_by_the_connection_task_in_order() {
    let (outbox, peer) = connected(64 << 20).await;
    let lines: Vec<String> = (0..100_000)
        .map(|i| format!("PRIVMSG #c :line {i}\r\n"))
        .collect();
    for line in &lines {
        assert!(outbox.send(&Bytes::from(line.clone())));
    }
    assert!(
        outbox.queued_bytes() > 0,
        "a peer that is not reading cannot take 2.4 MB at once"
    );
    let reader = tokio::spawn(read_all(peer));
    let serving = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.serve_until_ended().await }
    });
    let drained = Instant::now() + Duration::from_secs(10);
    while outbox.queued_bytes() > 0 {
        assert!(Instant::now() < drained, "the queue never drained");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    outbox.close_with(Bytes::from_static(b"ERROR :bye\r\n"));
    assert_eq!(serving.await.unwrap(), "Connection closed");
    outbox.finish().await;
    assert_eq!(reader.await.unwrap(), lines.concat() + "ERROR :bye\r\n");
}

#[tokio::test]
async fn a_disconnect_request_ends_the_serving_loop() {
    let (outbox, _peer) = connected(1024).await;
    let serving = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.serve_until_ended().await }
    });
    outbox.request_disconnect("Killed (oper (spam))".to_owned());
    let reason = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("the loop noticed")
        .unwrap();
    assert_eq!(reason, "Killed (oper (spam))");
}

#[tokio::test]
async fn a_burst_keeps_its_lines_in_order_and_cuts_tags_per_client() {
    let (outbox, peer) = connected(1 << 20).await;
    let mut burst = Burst::new(&outbox);
    burst.send(&Bytes::from_static(b":s 001 a :first\r\n"));
    // A client without tag capabilities gets a tagged line bare, and the
    // lines before it first.
    burst.send(&Bytes::from_static(
        b"@time=t;msgid=m :s NOTICE a :tagged\r\n",
    ));
    burst.send(&Bytes::from_static(b":s 002 a :third\r\n"));
    burst.send(&Bytes::from_static(b":s 003 a :fourth\r\n"));
    burst.finish();
    outbox.close_with(Bytes::from_static(b"ERROR :bye\r\n"));
    outbox.finish().await;
    assert_eq!(
        read_all(peer).await,
        ":s 001 a :first\r\n:s NOTICE a :tagged\r\n:s 002 a :third\r\n\
         :s 003 a :fourth\r\nERROR :bye\r\n"
    );
}

#[tokio::test]
async fn a_long_fan_out_is_written_by_two_threads_in_order() {
    use crate::server::second_writer::{outboxes_taken, SHARE_AT};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut pairs = Vec::new();
    for _ in 0..2 * SHARE_AT {
        let peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        pairs.push((Outbox::new(1 << 20, server), peer));
    }
    // The second writer is one per process; no other test in this binary
    // fans out to SHARE_AT outboxes, so its count moves for this test alone.
    let taken_before = outboxes_taken();
    let rounds = 50;
    let deadline = Instant::now() + Duration::from_secs(10);
    for round in 0..rounds {
        let line = Bytes::from(format!("line {round}\r\n"));
        {
            let _scope = FlushScope::enter();
            for (outbox, _) in &pairs {
                outbox.send(&line);
            }
        }
        // Gives the second writer a moment to get a CPU, or the caller
        // writes every list alone before it wakes.
        tokio::time::sleep(Duration::from_millis(2)).await;
        if outboxes_taken() > taken_before {
            break;
        }
        assert!(Instant::now() < deadline, "the second writer never helped");
    }
    while pairs.iter().any(|(outbox, _)| outbox.queued_bytes() > 0) {
        assert!(Instant::now() < deadline, "lines were left unwritten");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        outboxes_taken() > taken_before,
        "the second writer never helped"
    );
    let mut expected = String::new();
    for (index, (outbox, peer)) in pairs.into_iter().enumerate() {
        outbox.close_with(Bytes::new());
        outbox.finish().await;
        let received = read_all(peer).await;
        if index == 0 {
            assert!(received.starts_with("line 0\r\n"), "{received}");
            expected = received.clone();
        }
        // Every member got the same lines, in the order they were sent.
        assert_eq!(received, expected);
    }
    let rounds_sent = expected.lines().count();
    let in_order: String = (0..rounds_sent)
        .map(|round| format!("line {round}\r\n"))
        .collect();
    assert_eq!(expected, in_order);
}
