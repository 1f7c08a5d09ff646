//! Tags the server adds (`time`, `msgid`) and the view of a line's tags
//! that each recipient gets: only those of the capabilities it enabled.
//!
//! A relayed line is built once with every tag it can carry; recipients
//! that enabled all of them share it, recipients that enabled none get the
//! same bytes without the tag section (a zero-copy slice), and the rare
//! client in between gets a filtered copy made once per line, not once per
//! recipient.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

/// The tag families one client receives, one bit per capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TagMask(u8);

impl TagMask {
    pub const NONE: TagMask = TagMask(0);
    /// `server-time`: the `time` tag.
    pub const TIME: TagMask = TagMask(1);
    /// `message-tags`: `msgid`, client-only tags and any other tag.
    pub const MESSAGE_TAGS: TagMask = TagMask(2);
    /// `account-tag`: the `account` tag.
    pub const ACCOUNT: TagMask = TagMask(4);
    pub const ALL: TagMask = TagMask(7);

    pub const fn contains(self, other: TagMask) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn with(self, other: TagMask, enabled: bool) -> TagMask {
        if enabled {
            TagMask(self.0 | other.0)
        } else {
            TagMask(self.0 & !other.0)
        }
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn from_bits(bits: u8) -> TagMask {
        TagMask(bits & TagMask::ALL.0)
    }

    /// The capability a tag key needs.
    fn of_key(key: &[u8]) -> TagMask {
        match key {
            b"time" => TagMask::TIME,
            b"account" => TagMask::ACCOUNT,
            _ => TagMask::MESSAGE_TAGS,
        }
    }
}

thread_local! {
    /// The last filtered view made on this thread: a broadcast asks for
    /// the same one for every member with the same capabilities. It holds
    /// the original line, so the pointer it is found by cannot be reused.
    static LAST_VIEW: RefCell<Option<(Bytes, TagMask, Bytes)>> = const { RefCell::new(None) };
}

/// `line` as a client receiving the tags in `mask` must see it.
pub fn view(line: &Bytes, mask: TagMask) -> Bytes {
    if mask == TagMask::ALL || line.first() != Some(&b'@') {
        return line.clone();
    }
    let Some(space) = memchr::memchr(b' ', line) else {
        return line.clone();
    };
    if mask == TagMask::NONE {
        return line.slice(space + 1..);
    }
    LAST_VIEW.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((original, cached_mask, cached_view)) = last.as_ref() {
            if *cached_mask == mask
                && original.as_ptr() == line.as_ptr()
                && original.len() == line.len()
            {
                return cached_view.clone();
            }
        }
        let filtered = filter(line, space, mask);
        *last = Some((line.clone(), mask, filtered.clone()));
        filtered
    })
}

fn filter(line: &Bytes, space: usize, mask: TagMask) -> Bytes {
    let section = &line[1..space];
    let mut kept = BytesMut::with_capacity(line.len());
    let mut dropped_any = false;
    for tag in section.split(|&byte| byte == b';') {
        let key_end = memchr::memchr(b'=', tag).unwrap_or(tag.len());
        if mask.contains(TagMask::of_key(&tag[..key_end])) {
            kept.put_u8(if kept.is_empty() { b'@' } else { b';' });
            kept.put_slice(tag);
        } else {
            dropped_any = true;
        }
    }
    if !dropped_any {
        return line.clone();
    }
    if kept.is_empty() {
        return line.slice(space + 1..);
    }
    kept.put_u8(b' ');
    kept.put_slice(&line[space + 1..]);
    kept.freeze()
}

/// `line` with `tags` (already escaped `key=value` pairs) put in front of
/// the tags it has: a label or a batch reference, which belong to one
/// recipient's copy.
pub fn prepend(line: &Bytes, tags: &[(&str, &str)]) -> Bytes {
    let mut out = BytesMut::with_capacity(line.len() + 64);
    for (index, (key, value)) in tags.iter().enumerate() {
        out.put_u8(if index == 0 { b'@' } else { b';' });
        out.put_slice(key.as_bytes());
        if !value.is_empty() {
            out.put_u8(b'=');
            crate::proto::serialize::escape_tag_value_into(value, &mut out);
        }
    }
    match line.first() {
        Some(b'@') if !out.is_empty() => {
            out.put_u8(b';');
            out.put_slice(&line[1..]);
        }
        _ => {
            if !out.is_empty() {
                out.put_u8(b' ');
            }
            out.put_slice(line);
        }
    }
    out.freeze()
}

/// When a message was handled and the id it is known by, the same for
/// every recipient and in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub id: MessageId,
}

/// A server-assigned message id: unique, and increasing in the order the
/// server handled the messages, so that ids sort like the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

/// Ids are the time in milliseconds shifted left by this, plus a counter,
/// so 65,536 ids fit in one millisecond before borrowing from the next.
const COUNTER_BITS: u32 = 16;

static LAST_ID: AtomicU64 = AtomicU64::new(0);

/// The wall clock in milliseconds since the Unix epoch.
pub fn clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

impl Stamp {
    pub fn now() -> Stamp {
        Stamp::at(clock_ms())
    }

    /// A stamp for a message handled now, with `clock_ms` read a moment
    /// earlier (before taking a lock, say). Its time is its id's, so that
    /// times never go back in the order ids are handed out, even when
    /// another message read the clock later and was stamped first; it is
    /// also the time a stored line shows, which is rebuilt from its id.
    pub fn at(clock_ms: u64) -> Stamp {
        let id = MessageId::next(clock_ms);
        Stamp {
            time_ms: id.0 >> COUNTER_BITS,
            id,
        }
    }
}

impl MessageId {
    /// The next id: from the clock, or one past the last if the clock has
    /// not moved on (or went back).
    fn next(time_ms: u64) -> MessageId {
        let from_clock = time_ms << COUNTER_BITS;
        let previous = LAST_ID
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(from_clock.max(last + 1))
            })
            .unwrap_or_else(|last| last);
        MessageId(from_clock.max(previous + 1))
    }

    /// The smallest id the millisecond `time_ms` can have: every message
    /// stamped later has a greater id.
    pub fn first_of(time_ms: u64) -> u64 {
        time_ms << COUNTER_BITS
    }

    /// The last id handed out (or the one later ids must pass).
    pub fn latest() -> MessageId {
        MessageId(LAST_ID.load(Ordering::Relaxed))
    }

    /// Makes later ids greater than `id`: at start, ids already stored must
    /// stay unique and in order even if the clock went back meanwhile.
    pub fn ensure_after(id: MessageId) {
        LAST_ID.fetch_max(id.0, Ordering::Relaxed);
    }

    /// 16 lowercase hex digits, so that ids sort as text too.
    pub fn encode(self) -> [u8; 16] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for (index, byte) in self.0.to_be_bytes().into_iter().enumerate() {
            out[2 * index] = HEX[usize::from(byte >> 4)];
            out[2 * index + 1] = HEX[usize::from(byte & 0xf)];
        }
        out
    }

    pub fn decode(text: &str) -> Option<MessageId> {
        if text.len() != 16 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        u64::from_str_radix(text, 16).ok().map(MessageId)
    }
}

thread_local! {
    /// The last time formatted on this thread: a busy server stamps many
    /// lines within one millisecond.
    static LAST_FORMATTED: std::cell::Cell<(u64, [u8; 24])> =
        const { std::cell::Cell::new((u64::MAX, [0; 24])) };
}

/// The stamp a line carries in its `time` and `msgid` tags.
pub fn stamp_of(line: &[u8]) -> Option<Stamp> {
    let section = line.strip_prefix(b"@")?;
    let section = &section[..memchr::memchr(b' ', section)?];
    let (mut time_ms, mut id) = (None, None);
    for tag in section.split(|&byte| byte == b';') {
        if let Some(value) = tag.strip_prefix(b"time=") {
            time_ms = parse_time(std::str::from_utf8(value).ok()?);
        } else if let Some(value) = tag.strip_prefix(b"msgid=") {
            id = MessageId::decode(std::str::from_utf8(value).ok()?);
        }
    }
    Some(Stamp {
        time_ms: time_ms?,
        id: id?,
    })
}

/// `YYYY-MM-DDThh:mm:ss.sssZ`, the format of the `time` tag.
pub fn format_time(time_ms: u64) -> [u8; 24] {
    let (cached_ms, cached) = LAST_FORMATTED.get();
    if cached_ms == time_ms {
        return cached;
    }
    let mut text = if cached_ms / 1000 == time_ms / 1000 {
        cached
    } else {
        format_second(time_ms / 1000)
    };
    let millis = time_ms % 1000;
    text[20] = b'0' + (millis / 100) as u8;
    text[21] = b'0' + (millis / 10 % 10) as u8;
    text[22] = b'0' + (millis % 10) as u8;
    LAST_FORMATTED.set((time_ms, text));
    text
}

fn format_second(secs: u64) -> [u8; 24] {
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, value: u64, width: usize| {
        let mut value = value;
        for index in (at..at + width).rev() {
            out[index] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year.clamp(0, 9999) as u64, 4);
    put(5, month as u64, 2);
    put(8, day as u64, 2);
    put(11, of_day / 3600, 2);
    put(14, of_day / 60 % 60, 2);
    put(17, of_day % 60, 2);
    out
}

/// Parses a `time` value (or a `timestamp=` chathistory bound) back into
/// milliseconds: `YYYY-MM-DDThh:mm:ss[.sss]Z`.
pub fn parse_time(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = bytes.get(range)?;
        digits.iter().try_fold(0u64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
        })
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
        || bytes[13] != b':'
        || bytes[16] != b':'
        || *bytes.last()? != b'Z'
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let millis = match &bytes[19..bytes.len() - 1] {
        [] => 0,
        [b'.', fraction @ ..] if !fraction.is_empty() && fraction.len() <= 9 => {
            let digits = number(20..20 + fraction.len())?;
            let scale = 10u64.pow(fraction.len() as u32);
            digits * 1000 / scale
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let days = days_from_civil(year as i64, month as u32, day as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_and_parsed_back() {
        // 2026-11-23T16:20:00.123Z, counted by hand from 2026-01-01
        // (20,454 days after the epoch) plus 326 days.
        let ms = (20_454 + 326) * 86_400_000 + 16 * 3_600_000 + 20 * 60_000 + 123;
        assert_eq!(&format_time(ms), b"2026-11-23T16:20:00.123Z");
        assert_eq!(parse_time("2026-11-23T16:20:00.123Z"), Some(ms));
        assert_eq!(parse_time("2026-11-23T16:20:00Z"), Some(ms - 123));
        assert_eq!(parse_time("2026-11-23T16:20:00.1Z"), Some(ms - 23));
        assert_eq!(&format_time(0), b"1970-01-01T00:00:00.000Z");
        assert_eq!(&format_time(951_782_400_000), b"2000-02-29T00:00:00.000Z");
        for bad in [
            "",
            "2026-11-23",
            "2026-13-01T00:00:00Z",
            "2026-11-23T16:20:00.Z",
            "x026-11-23T16:20:00Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    /// A message that read the clock before another was stamped, and was
    /// stamped after it, must not show an earlier time than it.
    #[test]
    fn a_stamp_from_an_older_clock_reading_shows_no_earlier_time() {
        let read_early = clock_ms() - 1_000;
        let stamped_first = Stamp::now();
        let stamped_later = Stamp::at(read_early);
        assert!(stamped_later.id > stamped_first.id);
        assert!(
            stamped_later.time_ms >= stamped_first.time_ms,
            "{} < {}",
            stamped_later.time_ms,
            stamped_first.time_ms
        );
        assert_eq!(stamped_later.time_ms, stamped_later.id.0 >> COUNTER_BITS);
    }

    #[test]
    fn ids_increase_and_round_trip_as_text() {
        let first = Stamp::now().id;
        let second = Stamp::now().id;
        assert!(second > first);
        let text = second.encode();
        assert!(first.encode() < text, "text sorts like the number");
        assert_eq!(
            MessageId::decode(std::str::from_utf8(&text).unwrap()),
            Some(second)
        );
        assert_eq!(MessageId::decode("0000000000000001"), Some(MessageId(1)));
        assert_eq!(
            MessageId::decode("ffffffffffffffff"),
            Some(MessageId(u64::MAX))
        );
        assert_eq!(
            MessageId::decode("fffffffffffffffff"),
            None,
            "more than 64 bits"
        );
        assert_eq!(MessageId::decode("short"), None);
        assert_eq!(
            MessageId::decode("000000000000000g"),
            None,
            "not a hex digit"
        );
        assert_eq!(
            MessageId::decode("+00000000000000f"),
            None,
            "not a hex digit"
        );
    }

    #[test]
    fn each_recipient_sees_the_tags_of_its_capabilities() {
        let line = Bytes::from_static(b"@time=t;msgid=m;account=a;+x=1 :n!u@h PRIVMSG #c :hi\r\n");
        let view_of = |mask| view(&line, mask);
        assert_eq!(&view_of(TagMask::ALL)[..], &line[..]);
        assert_eq!(&view_of(TagMask::NONE)[..], b":n!u@h PRIVMSG #c :hi\r\n");
        assert_eq!(
            &view_of(TagMask::TIME)[..],
            b"@time=t :n!u@h PRIVMSG #c :hi\r\n"
        );
        assert_eq!(
            &view_of(TagMask::TIME.with(TagMask::ACCOUNT, true))[..],
            b"@time=t;account=a :n!u@h PRIVMSG #c :hi\r\n"
        );
        assert_eq!(
            &view_of(TagMask::MESSAGE_TAGS)[..],
            b"@msgid=m;+x=1 :n!u@h PRIVMSG #c :hi\r\n"
        );
        // Asked again: the cached view.
        assert_eq!(
            &view_of(TagMask::MESSAGE_TAGS)[..],
            b"@msgid=m;+x=1 :n!u@h PRIVMSG #c :hi\r\n"
        );
        let untagged = Bytes::from_static(b":srv 001 n :hi\r\n");
        assert_eq!(view(&untagged, TagMask::TIME), untagged);
    }

    #[test]
    fn per_recipient_tags_go_first() {
        let line = Bytes::from_static(b"@time=t :n!u@h PRIVMSG #c :hi\r\n");
        assert_eq!(
            &prepend(&line, &[("label", "a b")])[..],
            b"@label=a\\sb;time=t :n!u@h PRIVMSG #c :hi\r\n"
        );
        let plain = Bytes::from_static(b":srv PONG srv :x\r\n");
        assert_eq!(
            &prepend(&plain, &[("batch", "1")])[..],
            b"@batch=1 :srv PONG srv :x\r\n"
        );
    }
}
