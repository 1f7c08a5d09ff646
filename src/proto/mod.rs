//! The IRC wire format: parsing, serializing, framing, numerics and masks.

pub mod codec;
pub mod mask;
pub mod message;
pub mod numeric;
pub mod serialize;
pub mod tags;

pub use message::{parse_message, Message, ParseError, Source, Tag};
pub use serialize::LineBuilder;
