//! Line framing: CRLF or bare LF, with the Modern IRC size limits (512 bytes
//! for the message, 8191 more for tags). An overlong line is reported as a
//! frame of its own so the connection can answer `417` and carry on.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// Bytes allowed for the message part, line ending included.
pub const MAX_BODY_BYTES: usize = 512;
/// Bytes allowed for the tag section, `@` and the trailing space included.
pub const MAX_TAG_BYTES: usize = 8191;

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One line without its line ending; empty lines are skipped.
    Line(BytesMut),
    /// A line longer than the limits; its bytes were discarded.
    TooLong,
}

#[derive(Debug, Default)]
pub struct LineCodec {
    /// Set while skipping the rest of an overlong line.
    discarding: bool,
    /// How far the buffer was already searched for a newline.
    searched: usize,
}

impl LineCodec {
    fn fits(line: &[u8]) -> bool {
        let (tags_len, body) = if line.first() == Some(&b'@') {
            match line.iter().position(|&b| b == b' ') {
                Some(space) => (space + 1, &line[space + 1..]),
                None => (line.len(), &[][..]),
            }
        } else {
            (0, line)
        };
        // `line` has no line ending here, so two bytes of the body budget are
        // reserved for the CRLF.
        tags_len <= MAX_TAG_BYTES && body.len() + 2 <= MAX_BODY_BYTES
    }
}

impl Decoder for LineCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        const MAX_LINE: usize = MAX_TAG_BYTES + MAX_BODY_BYTES;
        loop {
            let newline = memchr::memchr(b'\n', &buf[self.searched..]).map(|i| i + self.searched);
            let Some(newline) = newline else {
                if self.discarding {
                    buf.clear();
                    self.searched = 0;
                } else if buf.len() > MAX_LINE {
                    buf.clear();
                    self.searched = 0;
                    self.discarding = true;
                    return Ok(Some(Frame::TooLong));
                } else {
                    self.searched = buf.len();
                }
                return Ok(None);
            };
            self.searched = 0;
            let mut line = buf.split_to(newline + 1);
            if self.discarding {
                self.discarding = false;
                continue;
            }
            line.truncate(newline);
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            if line.iter().all(|&b| b == b' ') {
                continue;
            }
            if !Self::fits(&line) {
                return Ok(Some(Frame::TooLong));
            }
            return Ok(Some(Frame::Line(line)));
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        // A last line without a line ending is still a line.
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if buf.is_empty() || self.discarding {
            buf.clear();
            return Ok(None);
        }
        buf.extend_from_slice(b"\n");
        self.decode(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut LineCodec, buf: &mut BytesMut) -> Vec<Frame> {
        std::iter::from_fn(|| codec.decode(buf).unwrap()).collect()
    }

    fn line(s: &str) -> Frame {
        Frame::Line(BytesMut::from(s))
    }

    #[test]
    fn splits_crlf_and_bare_lf_and_skips_empty_lines() {
        let mut codec = LineCodec::default();
        let mut buf = BytesMut::from("NICK a\r\n\r\nUSER b\n\nPING");
        let frames = decode_all(&mut codec, &mut buf);
        assert_eq!(frames, vec![line("NICK a"), line("USER b")]);
        assert_eq!(&buf[..], b"PING");
    }

    #[test]
    fn overlong_lines_are_reported_once_and_skipped() {
        let mut codec = LineCodec::default();
        let long = "PRIVMSG #a :".to_string() + &"x".repeat(600) + "\r\nPING x\r\n";
        let mut buf = BytesMut::from(long.as_str());
        assert_eq!(
            decode_all(&mut codec, &mut buf),
            vec![Frame::TooLong, line("PING x")]
        );
    }

    #[test]
    fn a_line_that_never_ends_is_discarded_up_to_its_newline() {
        let mut codec = LineCodec::default();
        let mut buf = BytesMut::from(vec![b'x'; 9000].as_slice());
        assert_eq!(decode_all(&mut codec, &mut buf), vec![Frame::TooLong]);
        buf.extend_from_slice(&[b'y'; 100]);
        assert!(decode_all(&mut codec, &mut buf).is_empty());
        buf.extend_from_slice(b"y\r\nPING z\r\n");
        assert_eq!(decode_all(&mut codec, &mut buf), vec![line("PING z")]);
    }

    #[test]
    fn tags_have_their_own_budget() {
        let mut codec = LineCodec::default();
        let tagged = format!("@k={} PING x\r\n", "v".repeat(4000));
        let mut buf = BytesMut::from(tagged.as_str());
        assert!(matches!(
            decode_all(&mut codec, &mut buf)[..],
            [Frame::Line(_)]
        ));
    }
}
