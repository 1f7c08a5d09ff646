//! The PROXY header parser, from the examples and limits of HAProxy's
//! `proxy-protocol.txt`.

use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn complete(len: usize, source: &str) -> Result<Parsed, HeaderError> {
    Ok(Parsed::Complete {
        len,
        source: Some(addr(source)),
    })
}

/// A version 2 header: `command` and `family` bytes, then `block`.
fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.push(0x20 | command);
    header.push(family);
    header.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    header.extend_from_slice(block);
    header
}

/// An IPv4 address block: source, destination, then the two ports.
fn v4_block(source: [u8; 4], source_port: u16) -> Vec<u8> {
    let mut block = source.to_vec();
    block.extend_from_slice(&[192, 0, 2, 1]);
    block.extend_from_slice(&source_port.to_be_bytes());
    block.extend_from_slice(&6667u16.to_be_bytes());
    block
}

/// Every prefix of a header is `Incomplete`, and the header is complete
/// whatever follows it.
fn check_prefixes(header: &[u8]) {
    let whole = parse(header);
    for end in 0..header.len() {
        assert_eq!(
            parse(&header[..end]),
            Ok(Parsed::Incomplete),
            "prefix of {end} bytes"
        );
    }
    let mut followed = header.to_vec();
    followed.extend_from_slice(b"NICK alice\r\nUSER alice 0 * :Alice\r\n");
    assert_eq!(parse(&followed), whole);
}

#[test]
fn version_1_tcp4_and_tcp6_give_the_source() {
    let line = b"PROXY TCP4 198.51.100.3 192.0.2.1 56324 6667\r\n";
    assert_eq!(parse(line), complete(line.len(), "198.51.100.3:56324"));
    check_prefixes(line);

    let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 6697\r\n";
    assert_eq!(parse(line), complete(line.len(), "[2001:db8::7]:65535"));
    check_prefixes(line);

    // The longest TCP6 line, all of 104 bytes.
    let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
    assert_eq!(line.len(), 104);
    assert_eq!(
        parse(line.as_bytes()),
        complete(104, &format!("[{full}]:65535"))
    );
    let line = b"PROXY TCP4 0.0.0.0 255.255.255.255 0 0\r\n";
    assert_eq!(parse(line), complete(line.len(), "0.0.0.0:0"));
}

#[test]
fn version_1_unknown_keeps_the_connections_address() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
        b"PROXY UNKNOWN anything at all\r\n",
    ] {
        assert_eq!(
            parse(line),
            Ok(Parsed::Complete {
                len: line.len(),
                source: None
            }),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        check_prefixes(line);
    }
    // The worst case is exactly the 107 bytes a receiver must take.
    let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
    assert_eq!(line.len(), V1_MAX);
    assert!(matches!(
        parse(line.as_bytes()),
        Ok(Parsed::Complete { len: 107, .. })
    ));
}

#[test]
fn version_1_lines_that_do_not_match_exactly_are_refused() {
    for line in [
        &b"PROXY TCP4 198.51.100.3 192.0.2.1 56324 6667\n"[..],
        b"PROXY TCP4 198.51.100.3 192.0.2.1 56324 6667\r\r\n",
        b"PROXY TCP4  198.51.100.3 192.0.2.1 56324 6667\r\n",
        b"PROXY TCP4 198.51.100.3 192.0.2.1 56324 6667 \r\n",
        b"PROXY TCP4 198.51.100.3 192.0.2.1 56324\r\n",
        b"PROXY TCP4 198.51.100.3 192.0.2.1 056324 6667\r\n",
        b"PROXY TCP4 198.51.100.3 192.0.2.1 65536 6667\r\n",
        b"PROXY TCP4 198.51.100.3 192.0.2.1 -1 6667\r\n",
        b"PROXY TCP4 198.051.100.3 192.0.2.1 56324 6667\r\n",
        b"PROXY TCP4 2001:db8::7 192.0.2.1 56324 6667\r\n",
        b"PROXY TCP6 198.51.100.3 2001:db8::1 56324 6667\r\n",
        b"PROXY TCP5 198.51.100.3 192.0.2.1 56324 6667\r\n",
        b"PROXY tcp4 198.51.100.3 192.0.2.1 56324 6667\r\n",
        b"PROXY \r\n",
        b"PROXY TCP4 \xff.51.100.3 192.0.2.1 56324 6667\r\n",
    ] {
        assert_eq!(
            parse(line),
            Err(HeaderError::V1Malformed),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    // No CRLF in the first 107 bytes.
    let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(100));
    assert_eq!(parse(long.as_bytes()), Err(HeaderError::V1TooLong));
    assert_eq!(parse(&long.as_bytes()[..106]), Ok(Parsed::Incomplete));
}

#[test]
fn version_2_tcp_over_ipv4_and_ipv6_give_the_source() {
    let header = v2(1, 0x11, &v4_block([198, 51, 100, 3], 56324));
    assert_eq!(header.len(), 28);
    assert_eq!(parse(&header), complete(28, "198.51.100.3:56324"));
    check_prefixes(&header);

    let mut block = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
    block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&[0xdb, 0xf0, 0x1a, 0x0b]);
    let header = v2(1, 0x21, &block);
    assert_eq!(parse(&header), complete(52, "[2001:db8::7]:56304"));
    check_prefixes(&header);
}

#[test]
fn version_2_tlvs_after_the_addresses_are_part_of_the_header() {
    let mut block = v4_block([203, 0, 113, 7], 40000);
    // PP2_TYPE_ALPN "irc", PP2_TYPE_AUTHORITY, PP2_TYPE_NOOP, and an SSL
    // TLV with a version sub-TLV.
    block.extend_from_slice(&[0x01, 0x00, 0x03]);
    block.extend_from_slice(b"irc");
    block.extend_from_slice(&[0x02, 0x00, 0x0f]);
    block.extend_from_slice(b"irc.example.org");
    block.extend_from_slice(&[0x04, 0x00, 0x02, 0x00, 0x00]);
    block.extend_from_slice(&[0x20, 0x00, 0x0d, 0x01, 0, 0, 0, 0, 0x21, 0x00, 0x05]);
    block.extend_from_slice(b"TLSv1");
    let header = v2(1, 0x11, &block);
    let len = header.len();
    assert_eq!(parse(&header), complete(len, "203.0.113.7:40000"));
    check_prefixes(&header);
}

#[test]
fn version_2_local_and_other_families_keep_the_connections_address() {
    let keep = |header: &[u8]| {
        assert_eq!(
            parse(header),
            Ok(Parsed::Complete {
                len: header.len(),
                source: None
            }),
            "{header:?}"
        );
        check_prefixes(header);
    };
    // A health check: LOCAL, no address.
    keep(&v2(0, 0x00, &[]));
    // LOCAL with an address block: skipped, and its family ignored.
    keep(&v2(0, 0x11, &v4_block([198, 51, 100, 3], 1)));
    keep(&v2(0, 0xff, &[1, 2, 3]));
    // PROXY over UNSPEC, UDP, or UNIX sockets.
    keep(&v2(1, 0x00, &[]));
    keep(&v2(1, 0x12, &v4_block([198, 51, 100, 3], 1)));
    keep(&v2(1, 0x31, &[0; 216]));
}

#[test]
fn version_2_headers_that_break_the_rules_are_refused() {
    let block = v4_block([198, 51, 100, 3], 1);
    let mut version_1 = v2(1, 0x11, &block);
    version_1[12] = 0x11;
    assert_eq!(parse(&version_1), Err(HeaderError::V2Version(1)));
    assert_eq!(parse(&v2(2, 0x11, &block)), Err(HeaderError::V2Command(2)));
    assert_eq!(
        parse(&v2(1, 0x41, &block)),
        Err(HeaderError::V2Family(0x41))
    );
    assert_eq!(
        parse(&v2(1, 0x13, &block)),
        Err(HeaderError::V2Family(0x13))
    );
    assert_eq!(
        parse(&v2(1, 0x11, &block[..11])),
        Err(HeaderError::V2ShortAddress)
    );
    assert_eq!(
        parse(&v2(1, 0x21, &[0; 35])),
        Err(HeaderError::V2ShortAddress)
    );
    // Oversized: refused as soon as its length is read.
    let oversized = v2(1, 0x11, &vec![0; V2_MAX_BLOCK + 1]);
    assert_eq!(
        parse(&oversized[..16]),
        Err(HeaderError::V2TooLong(V2_MAX_BLOCK + 1))
    );
    let largest = v2(1, 0x11, &vec![0; V2_MAX_BLOCK]);
    assert_eq!(largest.len(), MAX_HEADER);
    assert!(matches!(
        parse(&largest),
        Ok(Parsed::Complete {
            len: MAX_HEADER,
            ..
        })
    ));
}

#[test]
fn anything_else_is_not_a_header() {
    for start in [
        &b"NICK alice\r\n"[..],
        b"CAP LS 302\r\n",
        b"GET / HTTP/1.1\r\n",
        // A TLS ClientHello.
        b"\x16\x03\x01\x02\x00",
        b"PROXX TCP4",
        b"proxy TCP4",
        b"\r\n\r\n\0\r\nQUIx",
        b"\r\nNICK",
    ] {
        assert_eq!(parse(start), Err(HeaderError::NotProxy), "{start:?}");
    }
    assert_eq!(parse(b""), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"PRO"), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"\r\n\r\n\0"), Ok(Parsed::Incomplete));
}

/// Over a real socket: the header is taken off and nothing more, however
/// it was cut into segments, so the first IRC line is still there.
#[tokio::test]
async fn reading_takes_exactly_the_header() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let header = b"PROXY TCP4 198.51.100.3 192.0.2.1 56324 6667\r\n";
    let v2_header = v2(1, 0x11, &v4_block([203, 0, 113, 7], 40000));
    for (header, source, cut) in [
        (&header[..], "198.51.100.3:56324", header.len()),
        (&header[..], "198.51.100.3:56324", 3),
        (&header[..], "198.51.100.3:56324", 20),
        (&v2_header[..], "203.0.113.7:40000", v2_header.len()),
        (&v2_header[..], "203.0.113.7:40000", 14),
    ] {
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut accepted, _) = listener.accept().await.unwrap();
        let sender = async {
            client.write_all(&header[..cut]).await.unwrap();
            client.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut rest = header[cut..].to_vec();
            rest.extend_from_slice(b"NICK alice\r\n");
            client.write_all(&rest).await.unwrap();
        };
        let (read, ()) = tokio::join!(read_header(&mut accepted), sender);
        assert_eq!(read.unwrap(), Some(addr(source)));
        let mut after = [0; 12];
        accepted.read_exact(&mut after).await.unwrap();
        assert_eq!(&after, b"NICK alice\r\n");
    }
}
