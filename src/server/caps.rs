//! IRCv3 capabilities Parlor offers, as a small bit set per client.

use crate::proto::tags::TagMask;

/// One capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    MultiPrefix,
    UserhostInNames,
    CapNotify,
    Sasl,
    AccountNotify,
    AccountTag,
    ExtendedJoin,
    AccountRegistration,
    MessageTags,
    ServerTime,
    EchoMessage,
    Batch,
    LabeledResponse,
    Chathistory,
    EventPlayback,
    AwayNotify,
    InviteNotify,
    Setname,
    Playback,
    SelfMessage,
    Chghost,
    StandardReplies,
}

impl Cap {
    /// Every capability offered, in the order `CAP LS` lists them.
    pub const ALL: [Cap; 22] = [
        Cap::AccountNotify,
        Cap::AccountTag,
        Cap::AwayNotify,
        Cap::Batch,
        Cap::CapNotify,
        Cap::Chghost,
        Cap::AccountRegistration,
        Cap::Chathistory,
        Cap::EventPlayback,
        Cap::EchoMessage,
        Cap::ExtendedJoin,
        Cap::InviteNotify,
        Cap::LabeledResponse,
        Cap::MessageTags,
        Cap::MultiPrefix,
        Cap::Sasl,
        Cap::ServerTime,
        Cap::Setname,
        Cap::StandardReplies,
        Cap::UserhostInNames,
        Cap::Playback,
        Cap::SelfMessage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cap::MultiPrefix => "multi-prefix",
            Cap::UserhostInNames => "userhost-in-names",
            Cap::CapNotify => "cap-notify",
            Cap::Sasl => "sasl",
            Cap::AccountNotify => "account-notify",
            Cap::AccountTag => "account-tag",
            Cap::ExtendedJoin => "extended-join",
            Cap::AccountRegistration => "draft/account-registration",
            Cap::MessageTags => "message-tags",
            Cap::ServerTime => "server-time",
            Cap::EchoMessage => "echo-message",
            Cap::Batch => "batch",
            Cap::LabeledResponse => "labeled-response",
            Cap::Chathistory => "draft/chathistory",
            Cap::EventPlayback => "draft/event-playback",
            Cap::AwayNotify => "away-notify",
            Cap::InviteNotify => "invite-notify",
            Cap::Setname => "setname",
            Cap::Playback => "znc.in/playback",
            Cap::SelfMessage => "znc.in/self-message",
            Cap::Chghost => "chghost",
            Cap::StandardReplies => "standard-replies",
        }
    }

    pub fn from_name(name: &str) -> Option<Cap> {
        Cap::ALL.into_iter().find(|cap| cap.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The capabilities one client has enabled.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Caps(u32);

impl Caps {
    pub fn has(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    pub fn set(&mut self, cap: Cap, enabled: bool) {
        if enabled {
            self.0 |= cap.bit();
        } else {
            self.0 &= !cap.bit();
        }
    }

    /// The tags lines reach this client with.
    pub fn tag_mask(self) -> TagMask {
        TagMask::NONE
            .with(TagMask::TIME, self.has(Cap::ServerTime))
            .with(TagMask::MESSAGE_TAGS, self.has(Cap::MessageTags))
            .with(TagMask::ACCOUNT, self.has(Cap::AccountTag))
    }

    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Cap::ALL
            .into_iter()
            .filter(move |c| self.has(*c))
            .map(Cap::name)
    }
}
