//! Pure parsers and reply encoders for the protocols corecache speaks. Nothing here
//! touches a socket or the cache: a parser reads a byte slice and returns a request
//! borrowing it; an encoder appends bytes to an output buffer.

pub mod binary;
pub mod error;
pub mod meta;
pub mod number;
pub mod reply;
pub mod text;

pub use error::ErrorReply;
