//! Wildcard masks (`*` any run, `?` one character) as used by bans, WHO,
//! LIST and MONITOR. Matching is done on casefolded text.

/// Whether `text` matches the glob `mask`. Both must already be casefolded.
/// `?` matches one character, not one byte, so masks work on UTF-8 text.
pub fn wildcard_match(mask: &str, text: &str) -> bool {
    let char_len = |s: &str, at: usize| s[at..].chars().next().map_or(1, char::len_utf8);
    let (mask_bytes, text_bytes) = (mask.as_bytes(), text.as_bytes());
    let (mut m, mut t) = (0, 0);
    // Where to resume after the last `*`: (mask index after it, text index).
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match mask_bytes.get(m) {
            Some(b'*') => {
                backtrack = Some((m + 1, t));
                m += 1;
            }
            Some(b'?') => {
                m += 1;
                t += char_len(text, t);
            }
            Some(&c) if c == text_bytes[t] => {
                m += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((after_star, from)) => {
                    let next = from + char_len(text, from);
                    m = after_star;
                    t = next;
                    backtrack = Some((after_star, next));
                }
                None => return false,
            },
        }
    }
    mask_bytes[m..].iter().all(|&c| c == b'*')
}

/// Turns a partial ban mask into a full `nick!user@host` mask, as users type
/// `/ban nick` or `/ban *@host`.
pub fn normalize_ban_mask(mask: &str) -> String {
    let (left, host) = match mask.split_once('@') {
        Some((left, host)) => (left, if host.is_empty() { "*" } else { host }),
        None => (mask, "*"),
    };
    let (nick, user) = match left.split_once('!') {
        Some((nick, user)) => (nick, if user.is_empty() { "*" } else { user }),
        None if mask.contains('@') => ("*", left),
        None => (left, "*"),
    };
    let nick = if nick.is_empty() { "*" } else { nick };
    format!("{nick}!{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_question_marks() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*!*@*.example", "n!u@host.example"));
        assert!(!wildcard_match("*!*@*.example", "n!u@example"));
        assert!(wildcard_match("**a", "bba"));
        assert!(wildcard_match("caf?", "café"));
        assert!(wildcard_match("*?", "é"));
        assert!(!wildcard_match("caf??", "café"));
    }

    #[test]
    fn ban_masks_are_completed() {
        assert_eq!(normalize_ban_mask("nick"), "nick!*@*");
        assert_eq!(normalize_ban_mask("*@host"), "*!*@host");
        assert_eq!(normalize_ban_mask("u@host"), "*!u@host");
        assert_eq!(normalize_ban_mask("n!u"), "n!u@*");
        assert_eq!(normalize_ban_mask("n!u@h"), "n!u@h");
    }
}
