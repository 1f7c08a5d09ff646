//! The `time` tag's format, `YYYY-MM-DDThh:mm:ss.sssZ` (UTC), to and from
//! milliseconds since the Unix epoch, with the civil-date conversions they
//! need (no date library).

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = (year - era * 400) as u64;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i64 - 719_468
}

/// The civil date of a day since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe as i64 + era * 400 + (month <= 2) as i64;
    (year, month, day)
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` → milliseconds since the Unix epoch.
pub(super) fn parse_time(text: &[u8]) -> Option<u64> {
    if text.len() != 24 {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u64> {
        text[from..to].iter().try_fold(0u64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + (b - b'0') as u64)
        })
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| text[i] != c) || &text[19..20] != b"." || text[23] != b'Z' {
        return None;
    }
    let (month, day) = (num(5, 7)?, num(8, 10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(num(0, 4)? as i64, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + num(11, 13)? * 3600 + num(14, 16)? * 60;
    Some((secs + num(17, 19)?) * 1000 + num(20, 23)?)
}

/// Milliseconds since the Unix epoch → `YYYY-MM-DDThh:mm:ss.sssZ`.
pub(super) fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::super::EARLIEST;
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(parse_time(b"1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_time(EARLIEST.as_bytes()), Some(946_684_800_000));
        let t = "2024-02-29T23:59:58.123Z";
        let ms = parse_time(t.as_bytes()).unwrap();
        assert_eq!(ms, 1_709_251_198_123);
        assert_eq!(format_time(ms), t);
        assert_eq!(format_time(ms + 1877), "2024-03-01T00:00:00.000Z");
        assert_eq!(parse_time(b"2024-02-29T23:59:58Z"), None);
        assert_eq!(parse_time(b"2024-13-01T00:00:00.000Z"), None);
    }
}
