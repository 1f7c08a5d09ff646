//! A message from a user, built once for all its recipients. Most clients
//! take no tags, so the tag section (time, msgid, account, client-only
//! tags) is only formatted when a recipient wants it, and the others get
//! the bare line without looking for where its tags end.

use std::cell::OnceCell;

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

use crate::proto::serialize::escape_tag_value_into;
use crate::proto::tags::{self, Stamp};
use crate::proto::LineBuilder;

pub struct StampedLine<'a> {
    pub stamp: Stamp,
    account: Option<&'a str>,
    client_tags: SmallVec<[(&'a str, &'a str); 2]>,
    /// The line without tags.
    body: Bytes,
    /// The line with every tag, made on first use.
    tagged: OnceCell<Bytes>,
}

impl<'a> StampedLine<'a> {
    /// The line `finish` makes of `:mask command`, stamped now with the
    /// clock read at `clock_ms` (see [`Stamp::at`]).
    pub fn new(
        clock_ms: u64,
        mask: &str,
        account: Option<&'a str>,
        command: &str,
        client_tags: impl Iterator<Item = (&'a str, &'a str)>,
        finish: impl FnOnce(LineBuilder) -> Bytes,
    ) -> StampedLine<'a> {
        StampedLine {
            stamp: Stamp::at(clock_ms),
            account,
            client_tags: client_tags.collect(),
            body: finish(LineBuilder::new(Some(mask), command)),
            tagged: OnceCell::new(),
        }
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The bodies of `lines`, one after another, in one buffer: what a
    /// client that takes no tags receives of them.
    pub fn joined_bodies(lines: &[StampedLine<'_>]) -> Bytes {
        let length = lines.iter().map(|line| line.body.len()).sum();
        let mut joined = BytesMut::with_capacity(length);
        for line in lines {
            joined.put_slice(&line.body);
        }
        joined.freeze()
    }

    /// The line with all its tags, in the order `time`, `msgid`,
    /// `account`, then the client-only tags as the sender gave them.
    pub fn tagged(&self) -> &Bytes {
        self.tagged.get_or_init(|| {
            let mut line = BytesMut::with_capacity(self.body.len() + 96);
            line.put_slice(b"@time=");
            line.put_slice(&tags::format_time(self.stamp.time_ms));
            line.put_slice(b";msgid=");
            line.put_slice(&self.stamp.id.encode());
            let account = self.account.map(|account| ("account", account));
            for (key, value) in account.into_iter().chain(self.client_tags.iter().copied()) {
                line.put_u8(b';');
                line.put_slice(key.as_bytes());
                if !value.is_empty() {
                    line.put_u8(b'=');
                    escape_tag_value_into(value, &mut line);
                }
            }
            line.put_u8(b' ');
            line.put_slice(&self.body);
            line.freeze()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tags::{view, TagMask};

    #[test]
    fn the_tagged_line_is_the_body_with_its_tags() {
        let line = StampedLine::new(
            tags::clock_ms(),
            "n!u@h",
            Some("acc"),
            "PRIVMSG",
            [("+react", "a b")].into_iter(),
            |b| b.param("#c").trailing("hi"),
        );
        assert_eq!(&line.body()[..], b":n!u@h PRIVMSG #c :hi\r\n");
        let tagged = line.tagged().clone();
        let text = std::str::from_utf8(&tagged).unwrap();
        let time = std::str::from_utf8(&tags::format_time(line.stamp.time_ms))
            .unwrap()
            .to_owned();
        let msgid = String::from_utf8(line.stamp.id.encode().to_vec()).unwrap();
        assert_eq!(
            text,
            format!(
                "@time={time};msgid={msgid};account=acc;+react=a\\sb :n!u@h PRIVMSG #c :hi\r\n"
            )
        );
        assert_eq!(view(&tagged, TagMask::NONE), line.body());
    }
}
