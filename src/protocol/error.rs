//! Every error line a client can receive, in one enum whose text is memcached's, byte
//! for byte.
//!
//! memcached writes these literals inline, and their case and wording drift between call
//! sites; keeping them here means one spelling per meaning. The enum is `Copy` and
//! carries no data, so the hot path returns it without allocating.

use std::fmt;

/// An error reply, without its `\r\n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorReply {
    /// Unknown command, or a known one with the wrong number of tokens.
    Error,
    /// A malformed command line: a key over 250 bytes, a bad number, and the like.
    BadFormat,
    /// `delete` with a time other than 0 (memcached 1.6.18's text, two spaces and all).
    DeleteUsage,
    /// A data block that does not end in `\r\n` where the declared length says.
    BadDataChunk,
    /// An exptime that is not a number (`touch`, `gat`, `flush_all`).
    InvalidExptime,
    /// An `incr`/`decr` delta that is not a 64-bit unsigned number.
    InvalidDelta,
    /// `incr`/`decr` on a value that is not a decimal number.
    NonNumeric,
    /// A value whose item would exceed `-I`.
    TooLarge,
    /// No memory for the item (`-M`, or nothing could be evicted).
    OutOfMemory,
    /// No memory for the longer number `incr` produced.
    ArithOutOfMemory,
    /// `flush_all` when started with `-F`.
    FlushDisabled,
    /// `shutdown` when not started with `-A` (memcached 1.6.18's text).
    ShutdownDisabled,
    /// `shutdown` with an argument other than `graceful`.
    InvalidShutdownMode,
    /// `cache_memlimit` below 8 megabytes.
    MemlimitTooSmall,
    /// `cache_memlimit` with a value that looks like bytes rather than megabytes.
    MemlimitUnits,
    /// `cache_memlimit` that could not be applied.
    MemlimitFailed,
    /// A new connection past `-c`.
    TooManyConnections,
    /// A connection whose read buffer would pass `read_buf_mem_limit`.
    ReadOutOfMemory,
    /// `stats cachedump` without its two numbers.
    BadCommandLine,
    /// `stats cachedump` with a class id of 64 or more.
    IllegalSlabId,
    /// A meta flag letter memcached does not know.
    MetaInvalidFlag,
    /// A meta flag letter given twice, or a flag byte of 127 or more.
    MetaDuplicateFlag,
    /// A meta opaque (`O`) of 32 bytes or more.
    MetaOpaqueTooLong,
    /// A meta flag whose number does not parse (`T`, `N`, `R`, `C`, `E`).
    MetaBadToken,
    /// A `b` key that is not base64.
    MetaKeyDecoding,
    /// An `M` flag that is not one letter long.
    MetaModeLength,
    /// `ms` with a mode other than `E A P R S`.
    MetaInvalidSetMode,
    /// `ma` with a mode other than `I + D -`.
    MetaInvalidArithMode,
    /// Any flag error in `md` or `ma`: memcached 1.6.18 names none more precisely.
    MetaInvalidOrDuplicateFlag,
    /// A `D` delta that is not a 64-bit unsigned number (in `mg`/`ms`, which ignore it).
    MetaInvalidDelta,
    /// A `J` initial value that is not a 64-bit unsigned number (in `mg`/`ms`).
    MetaInvalidInitial,
    /// An `mg` line of 20 tokens or more (this spelling is `mg`'s own).
    MetaGetTooManyFlags,
    /// An `ms`, `md` or `ma` line of 20 tokens or more.
    MetaTooManyFlags,
}

impl ErrorReply {
    /// The exact text memcached sends, without the line ending.
    pub const fn text(self) -> &'static str {
        match self {
            ErrorReply::Error => "ERROR",
            ErrorReply::BadFormat => "CLIENT_ERROR bad command line format",
            ErrorReply::DeleteUsage => {
                "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
            }
            ErrorReply::BadDataChunk => "CLIENT_ERROR bad data chunk",
            ErrorReply::InvalidExptime => "CLIENT_ERROR invalid exptime argument",
            ErrorReply::InvalidDelta => "CLIENT_ERROR invalid numeric delta argument",
            ErrorReply::NonNumeric => {
                "CLIENT_ERROR cannot increment or decrement non-numeric value"
            }
            ErrorReply::TooLarge => "SERVER_ERROR object too large for cache",
            ErrorReply::OutOfMemory => "SERVER_ERROR out of memory storing object",
            ErrorReply::ArithOutOfMemory => "SERVER_ERROR out of memory",
            ErrorReply::FlushDisabled => "CLIENT_ERROR flush_all not allowed",
            ErrorReply::ShutdownDisabled => "ERROR: shutdown not enabled",
            ErrorReply::InvalidShutdownMode => "CLIENT_ERROR invalid shutdown mode",
            ErrorReply::MemlimitTooSmall => {
                "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m"
            }
            ErrorReply::MemlimitUnits => {
                "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes"
            }
            ErrorReply::MemlimitFailed => {
                "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust"
            }
            ErrorReply::TooManyConnections => "ERROR Too many open connections",
            ErrorReply::ReadOutOfMemory => "SERVER_ERROR out of memory reading request",
            ErrorReply::BadCommandLine => "CLIENT_ERROR bad command line",
            ErrorReply::IllegalSlabId => "CLIENT_ERROR Illegal slab id",
            ErrorReply::MetaInvalidFlag => "CLIENT_ERROR invalid flag",
            ErrorReply::MetaDuplicateFlag => "CLIENT_ERROR duplicate flag",
            ErrorReply::MetaOpaqueTooLong => "CLIENT_ERROR opaque token too long",
            ErrorReply::MetaBadToken => "CLIENT_ERROR bad token in command line format",
            ErrorReply::MetaKeyDecoding => "CLIENT_ERROR error decoding key",
            ErrorReply::MetaModeLength => "CLIENT_ERROR incorrect length for M token",
            ErrorReply::MetaInvalidSetMode => "CLIENT_ERROR invalid mode for ms M token",
            ErrorReply::MetaInvalidArithMode => "CLIENT_ERROR invalid mode for ma M token",
            ErrorReply::MetaInvalidOrDuplicateFlag => "CLIENT_ERROR invalid or duplicate flag",
            ErrorReply::MetaInvalidDelta => "CLIENT_ERROR invalid numeric delta value",
            ErrorReply::MetaInvalidInitial => "CLIENT_ERROR invalid numeric initial value",
            ErrorReply::MetaGetTooManyFlags => "CLIENT_ERROR options flags are too long",
            ErrorReply::MetaTooManyFlags => "CLIENT_ERROR options flags too long",
        }
    }

    /// Appends the reply line, `\r\n` included.
    pub fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.text().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_in_crlf() {
        let mut out = Vec::new();
        ErrorReply::DeleteUsage.write(&mut out);
        assert_eq!(
            out,
            b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
        );
    }

    #[test]
    fn display_is_the_wire_text() {
        assert_eq!(ErrorReply::Error.to_string(), "ERROR");
        assert_eq!(
            ErrorReply::TooLarge.to_string(),
            "SERVER_ERROR object too large for cache"
        );
    }
}
