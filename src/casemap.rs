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
        match (self, c) {
            (_, 'A'..='Z') => c.to_ascii_lowercase(),
            (CaseMapping::Rfc1459, '[') => '{',
            (CaseMapping::Rfc1459, ']') => '}',
            (CaseMapping::Rfc1459, '\\') => '|',
            (CaseMapping::Rfc1459, '~') => '^',
            _ => c,
        }
    }

    pub fn fold(self, text: &str) -> String {
        text.chars().map(|c| self.fold_char(c)).collect()
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
}
