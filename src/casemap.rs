//! Case mapping: the one place where nick and channel names are folded so
//! that `Nick`, `nick` and (under rfc1459) `nick[` / `nick{` compare equal.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CaseMapping {
    /// ASCII letters plus `[]\~` folded to `{}|^` (RFC 1459).
    #[default]
    Rfc1459,
    /// ASCII letters only.
    Ascii,
}

impl CaseMapping {
    /// The name advertised in `CASEMAPPING=`.
    pub fn name(self) -> &'static str {
        match self {
            CaseMapping::Rfc1459 => "rfc1459",
            CaseMapping::Ascii => "ascii",
        }
    }

    pub fn fold_char(self, c: char) -> char {
        match u8::try_from(c) {
            Ok(byte) => char::from(self.fold_byte(byte)),
            Err(_) => c,
        }
    }

    /// Both mappings fold ASCII only, so folding works on bytes: any byte
    /// of a multi-byte character (0x80 and up) is left as it is.
    fn fold_byte(self, b: u8) -> u8 {
        match (self, b) {
            (_, b'A'..=b'Z') => b.to_ascii_lowercase(),
            (CaseMapping::Rfc1459, b'[') => b'{',
            (CaseMapping::Rfc1459, b']') => b'}',
            (CaseMapping::Rfc1459, b'\\') => b'|',
            (CaseMapping::Rfc1459, b'~') => b'^',
            _ => b,
        }
    }

    pub fn fold(self, text: &str) -> String {
        text.chars().map(|c| self.fold_char(c)).collect()
    }

    /// Like [`CaseMapping::fold`], without allocating when `text` is
    /// already folded (most names on the message path are).
    pub fn fold_cow(self, text: &str) -> std::borrow::Cow<'_, str> {
        if text.bytes().all(|b| self.fold_byte(b) == b) {
            std::borrow::Cow::Borrowed(text)
        } else {
            std::borrow::Cow::Owned(self.fold(text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1459_folds_brackets() {
        assert_eq!(CaseMapping::Rfc1459.fold("Nick[]\\~"), "nick{}|^");
        assert_eq!(CaseMapping::Ascii.fold("Nick[]\\~"), "nick[]\\~");
    }

    #[test]
    fn fold_cow_borrows_only_what_is_already_folded() {
        use std::borrow::Cow;
        let rfc = CaseMapping::Rfc1459;
        assert!(matches!(rfc.fold_cow("#chan{}"), Cow::Borrowed("#chan{}")));
        assert_eq!(
            rfc.fold_cow("#Chan[]"),
            Cow::<str>::Owned("#chan{}".to_owned())
        );
    }
}
