//! Numeric replies. The codes come from `irc_proto::Response`; the few that
//! table lacks are declared in [`Extra`] so that every numeric Parlor sends
//! is named in one of these two places.

pub use irc_proto::Response;

/// Numerics from the Modern IRC documents and IRCv3 that `irc_proto` does
/// not list.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Extra {
    /// Free-form figures in a STATS report (as ircd-hybrid and ircu use it).
    RPL_STATSDEBUG = 249,
    RPL_CREATIONTIME = 329,
    RPL_WHOISACCOUNT = 330,
    /// Modern IRC's RPL_INVITELIST (336): a pending invitation. Renamed
    /// because `irc_proto` gives that name to 346, the `+I` list.
    RPL_PENDINGINVITE = 336,
    /// Modern IRC's RPL_ENDOFINVITELIST (337).
    RPL_ENDOFPENDINGINVITES = 337,
    RPL_WHOISACTUALLY = 338,
    RPL_WHOSPCRPL = 354,
    ERR_INVALIDCAPCMD = 410,
    ERR_INPUTTOOLONG = 417,
    /// The connection is encrypted (Modern IRC's RPL_WHOISSECURE).
    RPL_WHOISSECURE = 671,
    ERR_INVALIDMODEPARAM = 696,
}

/// Anything that names a numeric reply.
pub trait Numeric: Copy {
    fn code(self) -> u16;
}

impl Numeric for Response {
    fn code(self) -> u16 {
        self as u16
    }
}

impl Numeric for Extra {
    fn code(self) -> u16 {
        self as u16
    }
}

/// The three-digit wire form of a numeric.
pub fn numeric_text(numeric: impl Numeric) -> [u8; 3] {
    let code = numeric.code();
    [
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_are_three_digits() {
        assert_eq!(&numeric_text(Response::RPL_WELCOME), b"001");
        assert_eq!(&numeric_text(Extra::ERR_INPUTTOOLONG), b"417");
        assert_eq!(&numeric_text(Response::RPL_MONONLINE), b"730");
    }
}
