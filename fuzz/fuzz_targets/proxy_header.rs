//! The PROXY protocol header parser (`server::proxy::parse`), as the
//! first bytes of a connection on a PROXY listener reach it, cut into
//! segments anywhere. Beyond "no panic":
//! - a complete header is at most `MAX_HEADER` bytes long, and never
//!   longer than the input;
//! - every shorter prefix of a complete header is `Incomplete`, and the
//!   header alone parses the same: the reader may take all it saw of an
//!   incomplete header off the socket, and stops at the header's end;
//! - an error for a prefix is the error for the whole input or
//!   `Incomplete` was wrong: once refused, more bytes never make a header;
//! - a v1 line that names a client names one the line itself holds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use parlor::server::proxy::{parse, Parsed, MAX_HEADER};

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Ok(Parsed::Complete { len, source }) = whole {
        assert!(len <= MAX_HEADER && len <= data.len(), "length {len}");
        assert_eq!(parse(&data[..len]), whole, "the header alone");
        for end in 0..len {
            assert_eq!(parse(&data[..end]), Ok(Parsed::Incomplete), "prefix {end}");
        }
        if let (Some(source), Some(b'P')) = (source, data.first()) {
            let line = std::str::from_utf8(&data[..len]).expect("a v1 line is text");
            let fields: Vec<&str> = line.trim_end().split(' ').collect();
            assert_eq!(fields[2].parse().ok(), Some(source.ip()), "{line:?}");
            assert_eq!(fields[4].parse().ok(), Some(source.port()), "{line:?}");
        }
    }
    // A refusal holds for every longer input: the reader refuses at the
    // first segment that shows it.
    for end in 0..data.len().min(MAX_HEADER) {
        if let Err(error) = parse(&data[..end]) {
            assert_eq!(whole, Err(error), "prefix {end} was refused");
            break;
        }
    }
});
