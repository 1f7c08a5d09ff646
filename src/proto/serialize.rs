//! Building outgoing lines. A line is built once into [`Bytes`] and the same
//! handle is shared with every recipient.

use bytes::{BufMut, Bytes, BytesMut};

use super::numeric::{numeric_text, Numeric};
use super::Message;

/// Builds one line: `[@tags] [:source] COMMAND params… \r\n`.
///
/// Middle parameters go through [`LineBuilder::param`]; the final one through
/// [`LineBuilder::last`] (shortest correct form: a colon only where needed)
/// or [`LineBuilder::trailing`] (always a colon, used for free text such as a
/// message body, so that clients see one consistent shape whatever the text).
#[must_use]
pub struct LineBuilder {
    buf: BytesMut,
    /// Where the message starts, after any tags: the 512-byte limit counts
    /// from here.
    body_start: usize,
}

/// Bytes a message may have on the wire, CRLF included (tags apart).
const MAX_MESSAGE_BYTES: usize = 512;

impl LineBuilder {
    pub fn new(source: Option<&str>, command: &str) -> Self {
        Self::with_tags(std::iter::empty::<(&str, &str)>(), source, command)
    }

    pub fn with_tags<'t>(
        tags: impl IntoIterator<Item = (&'t str, &'t str)>,
        source: Option<&str>,
        command: &str,
    ) -> Self {
        // Most lines are short; a message body needs one regrowth at most.
        let mut buf = BytesMut::with_capacity(128);
        let mut first = true;
        for (key, value) in tags {
            buf.put_u8(if first { b'@' } else { b';' });
            first = false;
            buf.put_slice(key.as_bytes());
            if !value.is_empty() {
                buf.put_u8(b'=');
                escape_tag_value_into(value, &mut buf);
            }
        }
        if !first {
            buf.put_u8(b' ');
        }
        LineBuilder::after_tags(buf, source, command)
    }

    /// A line whose tag section (with its space) is already in `buf`.
    pub fn after_tags(mut buf: BytesMut, source: Option<&str>, command: &str) -> Self {
        let body_start = buf.len();
        if let Some(source) = source {
            buf.put_u8(b':');
            buf.put_slice(source.as_bytes());
            buf.put_u8(b' ');
        }
        buf.put_slice(command.as_bytes());
        LineBuilder { buf, body_start }
    }

    /// `:server 123 target` — the start of a numeric reply.
    pub fn numeric(server: &str, numeric: impl Numeric, target: &str) -> LineBuilder {
        let code = numeric_text(numeric);
        let code = std::str::from_utf8(&code).expect("numerics are ASCII digits");
        LineBuilder::new(Some(server), code).param(target)
    }

    /// A middle parameter. Replies often echo what a client sent (`432
    /// <nick>` for `NICK :a b`), so a value that cannot stand in the middle
    /// is cut at its first space, and an empty one (or one starting with a
    /// colon) becomes `*`: the line stays well-formed whatever the input.
    pub fn param(mut self, param: &str) -> Self {
        let word = param.split(' ').next().unwrap_or("");
        let word = if word.is_empty() || word.starts_with(':') {
            "*"
        } else {
            word
        };
        self.buf.put_u8(b' ');
        self.buf.put_slice(word.as_bytes());
        self
    }

    /// Several middle parameters.
    pub fn params<'p>(self, params: impl IntoIterator<Item = &'p str>) -> Self {
        params.into_iter().fold(self, LineBuilder::param)
    }

    /// The final parameter in its shortest correct form.
    pub fn last(mut self, param: &str) -> Bytes {
        self.buf.put_u8(b' ');
        if !is_middle_safe(param) {
            self.buf.put_u8(b':');
        }
        self.buf.put_slice(param.as_bytes());
        self.finish()
    }

    /// The final parameter, always introduced by a colon. Text that would
    /// take the line past 512 bytes is cut (at a character boundary): a
    /// relayed message carries a longer source than the sender's own line,
    /// and clients may cut or refuse longer lines themselves.
    pub fn trailing(mut self, text: &str) -> Bytes {
        self.buf.put_slice(b" :");
        let used = self.buf.len() - self.body_start + 2;
        let mut room = MAX_MESSAGE_BYTES.saturating_sub(used).min(text.len());
        while !text.is_char_boundary(room) {
            room -= 1;
        }
        self.buf.put_slice(&text.as_bytes()[..room]);
        self.finish()
    }

    pub fn finish(mut self) -> Bytes {
        self.buf.put_slice(b"\r\n");
        self.buf.freeze()
    }
}

fn is_middle_safe(param: &str) -> bool {
    !param.is_empty() && !param.starts_with(':') && !param.contains(' ')
}

pub(crate) fn escape_tag_value_into(value: &str, buf: &mut BytesMut) {
    let bytes = value.as_bytes();
    // Most values (accounts, ids, typing states) need no escape at all.
    if memchr::memchr3(b';', b' ', b'\\', bytes).is_none()
        && memchr::memchr2(b'\r', b'\n', bytes).is_none()
    {
        buf.put_slice(bytes);
        return;
    }
    for byte in value.bytes() {
        match byte {
            b';' => buf.put_slice(b"\\:"),
            b' ' => buf.put_slice(b"\\s"),
            b'\\' => buf.put_slice(b"\\\\"),
            b'\r' => buf.put_slice(b"\\r"),
            b'\n' => buf.put_slice(b"\\n"),
            other => buf.put_u8(other),
        }
    }
}

/// Serializes a whole message in its shortest correct form, without the
/// line ending.
pub fn serialize_message(message: &Message<'_>) -> String {
    let tags = message.tags.iter().map(|t| (t.key, t.value.as_ref()));
    let mut builder = LineBuilder::with_tags(tags, message.source, message.command);
    let line = match message.params.split_last() {
        Some((last, middle)) => builder.params(middle.iter().copied()).last(last),
        None => {
            builder.buf.put_slice(b"\r\n");
            builder.buf.freeze()
        }
    };
    String::from_utf8_lossy(&line[..line.len() - 2]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_form_uses_colon_only_when_needed() {
        let line = LineBuilder::new(Some("srv"), "001")
            .param("nick")
            .last("hi");
        assert_eq!(&line[..], b":srv 001 nick hi\r\n");
        let line = LineBuilder::new(None, "PRIVMSG").param("#c").last("a b");
        assert_eq!(&line[..], b"PRIVMSG #c :a b\r\n");
        let line = LineBuilder::new(None, "X").last("");
        assert_eq!(&line[..], b"X :\r\n");
    }

    #[test]
    fn unsafe_middle_parameters_are_made_safe() {
        let line = LineBuilder::new(None, "432")
            .param("a b")
            .param("")
            .param(":x")
            .last("t");
        assert_eq!(&line[..], b"432 a * * t\r\n");
    }

    #[test]
    fn free_text_is_cut_to_keep_the_message_within_512_bytes() {
        let text = "é".repeat(300);
        let source = "n".repeat(30) + "!~user@host.example";
        let line = LineBuilder::with_tags([("k", "v")], Some(&source), "PRIVMSG")
            .param("#chan")
            .trailing(&text);
        let body = &line[b"@k=v ".len()..];
        assert!(body.len() <= 512, "{}", body.len());
        assert!(body.len() >= 511, "cut no more than needed: {}", body.len());
        assert!(
            std::str::from_utf8(&line).is_ok(),
            "cut at a character boundary"
        );
        assert!(line.ends_with(b"\r\n"));
    }

    #[test]
    fn tag_values_are_escaped() {
        let line = LineBuilder::with_tags([("k", "a b;c\\")], None, "TAGMSG").finish();
        assert_eq!(&line[..], b"@k=a\\sb\\:c\\\\ TAGMSG\r\n");
    }
}
