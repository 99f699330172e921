//! The memcached binary protocol (request magic 0x80, response magic 0x81): a zero-copy
//! parser for one request packet at a time, and encoders for the response packets
//! memcached sends back.
//!
//! [`parse`] looks at the front of a connection's read buffer and answers one of three
//! things: a whole [`Packet`] whose extras, key and value borrow the buffer; "incomplete"
//! with the total the packet takes; or [`Parse::Invalid`], a header memcached answers with
//! an error status (or nothing) and then closes the connection for. Every refusal is
//! decided from the 24-byte header alone, so a refused packet's body is never waited for.
//!
//! The acceptance rules are those of memcached 1.6.18's `dispatch_bin_command`
//! (`proto_bin.c`), checked against the real server. Where 1.6.18 loses framing (it reads
//! only the extras and key of an unknown opcode, a TOUCH, a GAT or a STAT and runs any
//! value bytes as the next packet), corecache consumes the declared body instead, so the
//! stream stays framed: see [`ProtocolError`] and [`Parse`] for each choice.
//!
//! Not here: what a command does, which replies a quiet opcode suppresses (the rule is
//! stated on [`Opcode::is_quiet`], the choice is the server's), SASL itself, and the text
//! and meta protocols.

use std::fmt::Display;
use std::io::Write;

/// Bytes in a request or response header.
pub const HEADER_LEN: usize = 24;
/// The longest key memcached stores; the 16-bit key length field allows more.
pub const KEY_MAX: usize = super::text::KEY_MAX;
/// The first byte of every request packet.
pub const REQUEST_MAGIC: u8 = 0x80;
/// The first byte of every response packet.
pub const RESPONSE_MAGIC: u8 = 0x81;

/// Declares [`Opcode`] and its two conversions from one list, so that the byte a variant
/// parses from and the byte it is written as cannot drift apart.
macro_rules! opcodes {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// A request's command byte. Every opcode memcached 1.6 serves has a variant (plus
        /// VERBOSITY, which older memcached served); any other byte is kept in
        /// [`Opcode::Unknown`] so that it can be answered "Unknown command" and echoed.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Opcode {
            $($(#[$doc])* $name,)*
            /// A byte memcached does not serve: answered 0x0081 `Unknown command`.
            Unknown(u8),
        }

        impl Opcode {
            /// The opcode a command byte stands for; never fails, unknown bytes are kept.
            pub const fn from_u8(code: u8) -> Opcode {
                match code {
                    $($code => Opcode::$name,)*
                    other => Opcode::Unknown(other),
                }
            }

            /// The command byte, as a response echoes it.
            pub const fn code(self) -> u8 {
                match self {
                    $(Opcode::$name => $code,)*
                    Opcode::Unknown(code) => code,
                }
            }
        }
    };
}

opcodes! {
    /// Fetch one item.
    Get = 0x00,
    /// Store unconditionally.
    Set = 0x01,
    /// Store only if the key is absent.
    Add = 0x02,
    /// Store only if the key is present.
    Replace = 0x03,
    /// Remove an item.
    Delete = 0x04,
    /// Add to a decimal value, creating it unless the exptime is `0xffffffff`.
    Increment = 0x05,
    /// Subtract from a decimal value, stopping at 0.
    Decrement = 0x06,
    /// Answer, then close the connection.
    Quit = 0x07,
    /// Invalidate every item, now or after a delay.
    Flush = 0x08,
    /// Quiet GET: a miss sends nothing.
    GetQ = 0x09,
    /// Do nothing; the reply marks the end of a pipeline of quiet commands.
    Noop = 0x0a,
    /// The server's version string.
    Version = 0x0b,
    /// GET that echoes the key.
    GetK = 0x0c,
    /// Quiet GETK.
    GetKQ = 0x0d,
    /// Add bytes after an item's value.
    Append = 0x0e,
    /// Add bytes before an item's value.
    Prepend = 0x0f,
    /// Statistics, one packet per stat and an empty one to end.
    Stat = 0x10,
    /// Quiet SET.
    SetQ = 0x11,
    /// Quiet ADD.
    AddQ = 0x12,
    /// Quiet REPLACE.
    ReplaceQ = 0x13,
    /// Quiet DELETE.
    DeleteQ = 0x14,
    /// Quiet INCREMENT.
    IncrementQ = 0x15,
    /// Quiet DECREMENT.
    DecrementQ = 0x16,
    /// Close the connection without a reply.
    QuitQ = 0x17,
    /// Quiet FLUSH.
    FlushQ = 0x18,
    /// Quiet APPEND.
    AppendQ = 0x19,
    /// Quiet PREPEND.
    PrependQ = 0x1a,
    /// Set the log level. memcached 1.6 no longer serves it (see [`ProtocolError`]).
    Verbosity = 0x1b,
    /// Reset an item's expiry; the reply has the flags and no value.
    Touch = 0x1c,
    /// GET and TOUCH.
    Gat = 0x1d,
    /// Quiet GAT.
    GatQ = 0x1e,
    /// List the SASL mechanisms.
    SaslListMechs = 0x20,
    /// Start SASL authentication.
    SaslAuth = 0x21,
    /// Continue SASL authentication.
    SaslStep = 0x22,
    /// GAT that echoes the key.
    GatK = 0x23,
    /// Quiet GATK.
    GatKQ = 0x24,
}

impl From<u8> for Opcode {
    fn from(code: u8) -> Opcode {
        Opcode::from_u8(code)
    }
}

impl Opcode {
    /// Whether this is a quiet variant. memcached's rule for them: a quiet get sends its
    /// hits and nothing on a miss; a quiet mutation (SETQ, DELETEQ, INCREMENTQ...) sends
    /// its errors and nothing on success (a DELETEQ miss is an error, so it is sent);
    /// QUITQ closes without a reply.
    pub const fn is_quiet(self) -> bool {
        self.loud().code() != self.code()
    }

    /// The non-quiet opcode with the same meaning, so a server handles GETQ and GET with
    /// one handler; non-quiet opcodes map to themselves.
    pub const fn loud(self) -> Opcode {
        match self {
            Opcode::GetQ => Opcode::Get,
            Opcode::GetKQ => Opcode::GetK,
            Opcode::SetQ => Opcode::Set,
            Opcode::AddQ => Opcode::Add,
            Opcode::ReplaceQ => Opcode::Replace,
            Opcode::DeleteQ => Opcode::Delete,
            Opcode::IncrementQ => Opcode::Increment,
            Opcode::DecrementQ => Opcode::Decrement,
            Opcode::QuitQ => Opcode::Quit,
            Opcode::FlushQ => Opcode::Flush,
            Opcode::AppendQ => Opcode::Append,
            Opcode::PrependQ => Opcode::Prepend,
            Opcode::GatQ => Opcode::Gat,
            Opcode::GatKQ => Opcode::GatK,
            other => other,
        }
    }

    /// Whether a hit (and a miss) echoes the request's key: GETK, GETKQ, GATK, GATKQ.
    pub const fn returns_key(self) -> bool {
        matches!(
            self,
            Opcode::GetK | Opcode::GetKQ | Opcode::GatK | Opcode::GatKQ
        )
    }

    /// Whether the key field names a cache item, and so decides which shard serves the
    /// request. STAT's key names a stats group and SASL's a mechanism: not item keys.
    pub const fn carries_key(self) -> bool {
        matches!(
            self.loud(),
            Opcode::Get
                | Opcode::GetK
                | Opcode::Set
                | Opcode::Add
                | Opcode::Replace
                | Opcode::Delete
                | Opcode::Increment
                | Opcode::Decrement
                | Opcode::Append
                | Opcode::Prepend
                | Opcode::Touch
                | Opcode::Gat
                | Opcode::GatK
        )
    }
}

/// A response status. Kept as an enum so that each status has one body text, memcached's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Status {
    /// Success.
    NoError = 0x0000,
    /// No such item (also STAT with an unknown group).
    KeyNotFound = 0x0001,
    /// ADD on a present key, or a CAS mismatch.
    KeyExists = 0x0002,
    /// The item would exceed `-I`.
    TooLarge = 0x0003,
    /// A malformed packet; memcached closes the connection after it.
    InvalidArguments = 0x0004,
    /// APPEND/PREPEND on a missing key, or an INCR-created item that could not be added.
    NotStored = 0x0005,
    /// INCR/DECR on a value that is not a decimal number.
    NonNumeric = 0x0006,
    /// SASL refused, or FLUSH when flushing is disabled (`-F`).
    AuthError = 0x0020,
    /// SASL wants another step; the body carries the mechanism's data.
    AuthContinue = 0x0021,
    /// An opcode the server does not serve.
    UnknownCommand = 0x0081,
    /// No memory for the item.
    OutOfMemory = 0x0082,
}

impl Status {
    /// The status as the 16-bit wire value.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The body text memcached sends with this status as an error, byte for byte. Success
    /// and AuthContinue have none: their bodies carry data instead.
    pub const fn text(self) -> &'static str {
        match self {
            Status::NoError | Status::AuthContinue => "",
            Status::KeyNotFound => "Not found",
            Status::KeyExists => "Data exists for key.",
            Status::TooLarge => "Too large.",
            Status::InvalidArguments => "Invalid arguments",
            Status::NotStored => "Not stored.",
            Status::NonNumeric => "Non-numeric server-side value for incr or decr",
            Status::AuthError => "Auth failure.",
            Status::UnknownCommand => "Unknown command",
            Status::OutOfMemory => "Out of memory",
        }
    }
}

/// Why a request header is refused. After each of these memcached 1.6.18 closes the
/// connection, so the parser does not look past the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolError {
    /// The first byte is not 0x80. memcached closes without a reply once it has 24 bytes
    /// (`try_read_command_binary`: "Invalid magic", `conn_closing`); verified live.
    BadMagic,
    /// The key and extras are longer than the whole body. memcached answers 0x0081
    /// `Unknown command` (not 0x0004) and closes (`dispatch_bin_command`'s first check);
    /// verified live. memcached first waits for key plus extras bytes, which may never
    /// come; corecache answers as soon as the header is read.
    BodyTooShort,
    /// A key longer than 250 bytes, whatever the opcode (unknown ones included): 0x0004
    /// `Invalid arguments`, then close (`KEY_MAX_LENGTH` check); verified live.
    KeyTooLong,
    /// Extras, key or value lengths the opcode does not allow: 0x0004 `Invalid
    /// arguments`, then close (`protocol_error` in `dispatch_bin_command`); verified live
    /// for GET, SET, DELETE, INCR, APPEND, FLUSH, NOOP, VERSION, QUIT, STAT, SASL_AUTH,
    /// GAT and TOUCH. The rules per opcode are listed on [`parse`].
    BadShape,
}

impl ProtocolError {
    /// The status to answer with before closing; `None` for a bad magic byte, which
    /// memcached answers with nothing.
    pub const fn status(self) -> Option<Status> {
        match self {
            ProtocolError::BadMagic => None,
            ProtocolError::BodyTooShort => Some(Status::UnknownCommand),
            ProtocolError::KeyTooLong | ProtocolError::BadShape => Some(Status::InvalidArguments),
        }
    }
}

/// The 24-byte header that starts every packet, fields in host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// 0x80 for a request, 0x81 for a response.
    pub magic: u8,
    /// The command; a response echoes the request's.
    pub opcode: Opcode,
    /// Bytes of key in the body.
    pub key_len: u16,
    /// Bytes of extras in the body, before the key.
    pub extras_len: u8,
    /// Always 0 (raw bytes); memcached ignores it in requests.
    pub data_type: u8,
    /// The vbucket id in a request (ignored by memcached); the status in a response.
    pub vbucket_or_status: u16,
    /// Bytes after the header: extras, key and value.
    pub body_len: u32,
    /// A client cookie echoed in the response, so pipelined replies can be matched.
    pub opaque: u32,
    /// A CAS unique: a precondition in a request when non-zero, the item's in a reply.
    pub cas: u64,
}

impl Header {
    /// Reads the header at the front of `buf`, or `None` when fewer than 24 bytes are
    /// there. Nothing is checked, so a server can look at a packet (its length, say)
    /// before [`parse`] decides on it.
    pub fn decode(buf: &[u8]) -> Option<Header> {
        let head = buf.get(..HEADER_LEN)?;
        Some(Header {
            magic: head[0],
            opcode: Opcode::from_u8(head[1]),
            key_len: u16::from_be_bytes([head[2], head[3]]),
            extras_len: head[4],
            data_type: head[5],
            vbucket_or_status: u16::from_be_bytes([head[6], head[7]]),
            body_len: be_u32(head, 8)?,
            opaque: be_u32(head, 12)?,
            cas: be_u64(head, 16)?,
        })
    }

    /// Appends the header's 24 bytes, big-endian.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.magic, self.opcode.code()]);
        out.extend_from_slice(&self.key_len.to_be_bytes());
        out.extend_from_slice(&[self.extras_len, self.data_type]);
        out.extend_from_slice(&self.vbucket_or_status.to_be_bytes());
        out.extend_from_slice(&self.body_len.to_be_bytes());
        out.extend_from_slice(&self.opaque.to_be_bytes());
        out.extend_from_slice(&self.cas.to_be_bytes());
    }

    /// Bytes the whole packet takes, header included. Saturates where `usize` is too
    /// small for a 4 GiB body, so that such a packet simply never completes.
    pub fn packet_len(&self) -> usize {
        let body = usize::try_from(self.body_len).unwrap_or(usize::MAX);
        HEADER_LEN.saturating_add(body)
    }

    /// Bytes of value: the body after the extras and key (0 if they overrun it).
    fn value_len(&self) -> u32 {
        let framed = u32::from(self.key_len) + u32::from(self.extras_len);
        self.body_len.saturating_sub(framed)
    }
}

/// The result of looking at the front of the read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parse<'a> {
    /// One whole request packet, consuming [`Packet::len`] bytes. An unknown opcode is a
    /// request too ([`Opcode::Unknown`]): it is answered 0x0081 with its whole body
    /// consumed and the connection kept. memcached 1.6.18 swallows `body_len` more bytes
    /// after the extras and key it already read, eating the start of the next packet;
    /// corecache does not copy that.
    Request(Packet<'a>),
    /// More bytes are needed. `need` is the total the packet takes once the header is
    /// readable (it may be up to 4 GiB: a server that caps its buffer reads the header
    /// with [`Header::decode`] and refuses or discards a packet that will not fit), else
    /// 24.
    Incomplete {
        /// Total bytes, from the front of the buffer, before calling again is useful.
        need: usize,
    },
    /// A header memcached refuses: answer [`ProtocolError::status`] (if any) with this
    /// opcode and opaque, then close the connection.
    Invalid {
        /// Why.
        error: ProtocolError,
        /// Bytes the decision read: always the 24-byte header. Nothing is consumed
        /// since the connection closes.
        len: usize,
        /// The request's opaque, for the reply.
        opaque: u32,
        /// The request's opcode, echoed in the reply.
        opcode: Opcode,
    },
}

/// One request packet; its extras, key and value are slices of the read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The header as sent.
    pub header: Header,
    /// The extras (flags and exptime for a SET, delta and initial for an INCR...).
    pub extras: &'a [u8],
    /// The key; for STAT the group name, for SASL the mechanism.
    pub key: &'a [u8],
    /// The value: what a SET stores, the SASL data; empty for most commands.
    pub value: &'a [u8],
    /// Bytes of the buffer the packet spans: 24 plus the body length.
    pub len: usize,
}

/// The extras of SET, ADD and REPLACE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreExtras {
    /// Client flags, stored with the item.
    pub flags: u32,
    /// Expiry as sent. memcached reads it unsigned, so values of 2^31 and over are
    /// far-future absolute times, never "already expired" as a negative text exptime is.
    pub exptime: u32,
}

/// The extras of INCREMENT and DECREMENT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArithExtras {
    /// The amount to add or subtract.
    pub delta: u64,
    /// The value to create on a miss.
    pub initial: u64,
    /// Expiry of a created item; `0xffffffff` means "do not create, answer Not found".
    pub exptime: u32,
}

impl<'a> Packet<'a> {
    /// Splits a body whose lengths [`parse`] has checked into extras, key and value.
    fn split(header: Header, body: &'a [u8]) -> Packet<'a> {
        let (extras, rest) = body.split_at(usize::from(header.extras_len));
        let (key, value) = rest.split_at(usize::from(header.key_len));
        Packet {
            header,
            extras,
            key,
            value,
            len: HEADER_LEN + body.len(),
        }
    }

    /// The command.
    pub fn opcode(&self) -> Opcode {
        self.header.opcode
    }

    /// The client's cookie, to echo in every reply to this packet.
    pub fn opaque(&self) -> u32 {
        self.header.opaque
    }

    /// The CAS precondition; 0 for none.
    pub fn cas(&self) -> u64 {
        self.header.cas
    }

    /// Flags and exptime of a SET, ADD or REPLACE (quiet or not); `None` for other
    /// opcodes or other extras.
    pub fn store_extras(&self) -> Option<StoreExtras> {
        let extras = self.extras_for(&[Opcode::Set, Opcode::Add, Opcode::Replace], 8)?;
        Some(StoreExtras {
            flags: be_u32(extras, 0)?,
            exptime: be_u32(extras, 4)?,
        })
    }

    /// Delta, initial value and exptime of an INCREMENT or DECREMENT (quiet or not).
    pub fn arith_extras(&self) -> Option<ArithExtras> {
        let extras = self.extras_for(&[Opcode::Increment, Opcode::Decrement], 20)?;
        Some(ArithExtras {
            delta: be_u64(extras, 0)?,
            initial: be_u64(extras, 8)?,
            exptime: be_u32(extras, 16)?,
        })
    }

    /// The new exptime of a TOUCH or of the GAT family.
    pub fn touch_exptime(&self) -> Option<u32> {
        be_u32(
            self.extras_for(&[Opcode::Touch, Opcode::Gat, Opcode::GatK], 4)?,
            0,
        )
    }

    /// A FLUSH's delay in seconds (or absolute time): 0, meaning now, when no extras
    /// were sent.
    pub fn flush_delay(&self) -> Option<u32> {
        if self.extras.is_empty() && self.opcode().loud() == Opcode::Flush {
            return Some(0);
        }
        be_u32(self.extras_for(&[Opcode::Flush], 4)?, 0)
    }

    /// A VERBOSITY's level.
    pub fn verbosity(&self) -> Option<u32> {
        be_u32(self.extras_for(&[Opcode::Verbosity], 4)?, 0)
    }

    /// The extras, if the opcode (quiet or not) is one of `family` and they are `len`
    /// bytes long.
    fn extras_for(&self, family: &[Opcode], len: usize) -> Option<&'a [u8]> {
        let wanted = family.contains(&self.opcode().loud()) && self.extras.len() == len;
        wanted.then_some(self.extras)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(word))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let word = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(word))
}

/// Parses the request packet at the front of `buf`.
///
/// Checks run in memcached 1.6.18's order, all on the header: magic, then key plus
/// extras against the body, then the key length, then the shape the opcode needs
/// (`dispatch_bin_command` in `proto_bin.c`):
///
/// | opcode (and its quiet form) | extras | key | value |
/// |---|---|---|---|
/// | GET, GETK | 0 | required | none |
/// | SET, ADD, REPLACE | 8 | required | any |
/// | APPEND, PREPEND | 0 | required | any |
/// | DELETE | 0 | required | none |
/// | INCREMENT, DECREMENT | 20 | required | none |
/// | TOUCH, GAT, GATK | 4 | required | any (ignored) |
/// | FLUSH | 0 or 4 | none | none |
/// | NOOP, VERSION, QUIT, SASL_LIST_MECHS | 0 | none | none |
/// | STAT | 0 | optional | any (ignored) |
/// | SASL_AUTH, SASL_STEP | 0 | required | any |
/// | VERBOSITY | 4 | none | none |
/// | unknown | any | any | any |
///
/// A value where the table says "ignored" is allowed by memcached 1.6.18, which then runs
/// those bytes as the next packet; corecache consumes them. VERBOSITY is not served by
/// 1.6.18 at all (it becomes an unknown command whose swallow stalls the connection);
/// its rule is the one older memcached and the protocol's documentation give.
///
/// # Examples
///
/// ```
/// use corecache::protocol::binary::{parse, Opcode, Parse};
///
/// let mut noop = vec![0x80, 0x0a];
/// noop.resize(24, 0);
/// match parse(&noop) {
///     Parse::Request(packet) => assert_eq!(packet.opcode(), Opcode::Noop),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(parse(&noop[..5]), Parse::Incomplete { need: 24 });
/// ```
pub fn parse(buf: &[u8]) -> Parse<'_> {
    let Some(header) = Header::decode(buf) else {
        return Parse::Incomplete { need: HEADER_LEN };
    };
    if let Err(error) = check(&header) {
        return Parse::Invalid {
            error,
            len: HEADER_LEN,
            opaque: header.opaque,
            opcode: header.opcode,
        };
    }
    let need = header.packet_len();
    match buf.get(HEADER_LEN..need) {
        Some(body) => Parse::Request(Packet::split(header, body)),
        None => Parse::Incomplete { need },
    }
}

fn check(header: &Header) -> Result<(), ProtocolError> {
    let framed = u32::from(header.key_len) + u32::from(header.extras_len);
    if header.magic != REQUEST_MAGIC {
        Err(ProtocolError::BadMagic)
    } else if framed > header.body_len {
        Err(ProtocolError::BodyTooShort)
    } else if usize::from(header.key_len) > KEY_MAX {
        Err(ProtocolError::KeyTooLong)
    } else if !shape_ok(header) {
        Err(ProtocolError::BadShape)
    } else {
        Ok(())
    }
}

/// The extras, key and value lengths each opcode accepts (the table on [`parse`]).
fn shape_ok(header: &Header) -> bool {
    let extras = header.extras_len;
    let key = header.key_len > 0;
    let value = header.value_len() > 0;
    match header.opcode {
        Opcode::Get | Opcode::GetQ | Opcode::GetK | Opcode::GetKQ => extras == 0 && key && !value,
        Opcode::Set
        | Opcode::SetQ
        | Opcode::Add
        | Opcode::AddQ
        | Opcode::Replace
        | Opcode::ReplaceQ => extras == 8 && key,
        Opcode::Append | Opcode::AppendQ | Opcode::Prepend | Opcode::PrependQ => extras == 0 && key,
        Opcode::Delete | Opcode::DeleteQ => extras == 0 && key && !value,
        Opcode::Increment | Opcode::IncrementQ | Opcode::Decrement | Opcode::DecrementQ => {
            extras == 20 && key && !value
        }
        Opcode::Touch | Opcode::Gat | Opcode::GatQ | Opcode::GatK | Opcode::GatKQ => {
            extras == 4 && key
        }
        Opcode::Flush | Opcode::FlushQ => (extras == 0 || extras == 4) && !key && !value,
        Opcode::Noop | Opcode::Version | Opcode::Quit | Opcode::QuitQ => {
            extras == 0 && !key && !value
        }
        Opcode::SaslListMechs => extras == 0 && !key && !value,
        Opcode::SaslAuth | Opcode::SaslStep => extras == 0 && key,
        Opcode::Stat => extras == 0,
        Opcode::Verbosity => extras == 4 && !key && !value,
        Opcode::Unknown(_) => true,
    }
}

/// Every field of a response packet, for [`response`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    /// The request's opcode, echoed (a quiet one stays quiet).
    pub opcode: Opcode,
    /// The outcome.
    pub status: Status,
    /// The request's opaque, echoed.
    pub opaque: u32,
    /// The item's CAS unique, or 0.
    pub cas: u64,
    /// Extras: the flags of a get hit, else empty.
    pub extras: &'a [u8],
    /// The key, for the K opcodes and STAT.
    pub key: &'a [u8],
    /// The value, or an error's text.
    pub value: &'a [u8],
}

impl Response<'static> {
    /// An empty-bodied reply with CAS 0, whose other fields the caller sets.
    pub const fn new(opcode: Opcode, status: Status, opaque: u32) -> Response<'static> {
        Response {
            opcode,
            status,
            opaque,
            cas: 0,
            extras: &[],
            key: &[],
            value: &[],
        }
    }
}

/// Appends a response packet with every field given: the general encoder the others
/// use, and the one for replies without a helper (SASL's).
///
/// # Panics
///
/// If the key is over 65,535 bytes, the extras over 255 or the body over 4 GiB; none of
/// these can come from a parsed request or a stored item.
pub fn response(out: &mut Vec<u8>, response: &Response<'_>) {
    begin(out, response, response.value.len());
    out.extend_from_slice(response.value);
}

/// Writes the header, extras and key of `response` for a value of `value_len` bytes,
/// which the caller writes next.
fn begin(out: &mut Vec<u8>, response: &Response<'_>, value_len: usize) {
    let body = response.extras.len() + response.key.len() + value_len;
    let header = Header {
        magic: RESPONSE_MAGIC,
        opcode: response.opcode,
        key_len: u16::try_from(response.key.len()).expect("a reply key fits in 16 bits"),
        extras_len: u8::try_from(response.extras.len()).expect("reply extras fit in 8 bits"),
        data_type: 0,
        vbucket_or_status: response.status.code(),
        body_len: u32::try_from(body).expect("a reply body fits in 32 bits"),
        opaque: response.opaque,
        cas: response.cas,
    };
    header.write(out);
    out.extend_from_slice(response.extras);
    out.extend_from_slice(response.key);
}

/// Appends an error reply: the status, and its text as the body, with CAS 0, as
/// memcached's `write_bin_error` sends it.
pub fn error(out: &mut Vec<u8>, opcode: Opcode, status: Status, opaque: u32) {
    let mut reply = Response::new(opcode, status, opaque);
    reply.value = status.text().as_bytes();
    response(out, &reply);
}

/// What could not get memory, for the body of an `Out of memory` (0x0082) reply, which
/// memcached words by the operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortage {
    /// A store could not allocate its item.
    AllocatingItem,
    /// An INCREMENT/DECREMENT could not store the longer number.
    IncrementingValue,
}

impl Shortage {
    /// memcached's body text.
    pub const fn text(self) -> &'static str {
        match self {
            Shortage::AllocatingItem => "Out of memory allocating item",
            Shortage::IncrementingValue => "Out of memory incrementing value",
        }
    }
}

/// Appends an `Out of memory` reply with memcached's wording for what failed.
pub fn out_of_memory(out: &mut Vec<u8>, opcode: Opcode, opaque: u32, what: Shortage) {
    let mut reply = Response::new(opcode, Status::OutOfMemory, opaque);
    reply.value = what.text().as_bytes();
    response(out, &reply);
}

/// Appends a success with an empty body: a store, APPEND/PREPEND or DELETE (CAS 0 for a
/// delete, the new item's for a store).
pub fn success(out: &mut Vec<u8>, opcode: Opcode, opaque: u32, cas: u64) {
    let mut reply = Response::new(opcode, Status::NoError, opaque);
    reply.cas = cas;
    response(out, &reply);
}

/// Appends the header, flags and (for the K opcodes) key of a get hit whose value is
/// `value_len` bytes, for a caller that sends the value itself, as a vectored write from
/// the item's chunks. For TOUCH the value length is ignored: its reply has none.
pub fn get_hit_header(
    out: &mut Vec<u8>,
    opcode: Opcode,
    opaque: u32,
    cas: u64,
    flags: u32,
    key: &[u8],
    value_len: usize,
) {
    let flags = flags.to_be_bytes();
    let mut reply = Response::new(opcode, Status::NoError, opaque);
    reply.cas = cas;
    reply.extras = &flags;
    if opcode.returns_key() {
        reply.key = key;
    }
    let touch = opcode == Opcode::Touch;
    begin(out, &reply, if touch { 0 } else { value_len });
}

/// Appends a get hit (GET, GETK, GAT, GATK and their quiet forms, or TOUCH): the flags
/// as extras, the key for the K opcodes (pass it always; it is written only for them),
/// then the value, which may arrive in several slices because large items are stored in
/// chunks. Their total length is summed before anything is written.
///
/// # Examples
///
/// ```
/// use corecache::protocol::binary::{get_hit, Opcode};
///
/// let mut out = Vec::new();
/// get_hit(&mut out, Opcode::GetK, 7, 1, 0, b"k", [&b"va"[..], &b"lue"[..]]);
/// assert_eq!(out.len(), 24 + 4 + 1 + 5);
/// assert_eq!(&out[28..], b"kvalue");
/// ```
pub fn get_hit<'v, I>(
    out: &mut Vec<u8>,
    opcode: Opcode,
    opaque: u32,
    cas: u64,
    flags: u32,
    key: &[u8],
    value: I,
) where
    I: IntoIterator<Item = &'v [u8]>,
    I::IntoIter: Clone,
{
    let parts = value.into_iter();
    let len = parts.clone().map(<[u8]>::len).sum();
    get_hit_header(out, opcode, opaque, cas, flags, key, len);
    if opcode != Opcode::Touch {
        parts.for_each(|part| out.extend_from_slice(part));
    }
}

/// Appends a get miss: for the K opcodes, status 0x0001 with the key as key and body and
/// no text; for the others, the `Not found` error. (Quiet gets send nothing on a miss;
/// that choice is the caller's.)
pub fn get_miss(out: &mut Vec<u8>, opcode: Opcode, opaque: u32, key: &[u8]) {
    if !opcode.returns_key() {
        return error(out, opcode, Status::KeyNotFound, opaque);
    }
    let mut reply = Response::new(opcode, Status::KeyNotFound, opaque);
    reply.key = key;
    response(out, &reply);
}

/// Appends a TOUCH hit: the flags as extras, no key and no value.
pub fn touch(out: &mut Vec<u8>, opaque: u32, cas: u64, flags: u32) {
    get_hit_header(out, Opcode::Touch, opaque, cas, flags, &[], 0);
}

/// Appends an INCREMENT/DECREMENT result: the new value as 8 big-endian bytes of body,
/// with the item's CAS.
pub fn arith(out: &mut Vec<u8>, opcode: Opcode, opaque: u32, cas: u64, value: u64) {
    let value = value.to_be_bytes();
    let mut reply = Response::new(opcode, Status::NoError, opaque);
    reply.cas = cas;
    reply.value = &value;
    response(out, &reply);
}

/// Appends the VERSION reply: the version string as the body.
pub fn version(out: &mut Vec<u8>, opaque: u32, version: &str) {
    let mut reply = Response::new(Opcode::Version, Status::NoError, opaque);
    reply.value = version.as_bytes();
    response(out, &reply);
}

/// Appends the NOOP reply, which tells a client its quiet pipeline is done.
pub fn noop(out: &mut Vec<u8>, opaque: u32) {
    response(out, &Response::new(Opcode::Noop, Status::NoError, opaque));
}

/// Appends the FLUSH success reply (FLUSHQ sends none).
pub fn flush(out: &mut Vec<u8>, opaque: u32) {
    response(out, &Response::new(Opcode::Flush, Status::NoError, opaque));
}

/// Appends the QUIT reply, sent before the connection closes (QUITQ sends none).
pub fn quit(out: &mut Vec<u8>, opaque: u32) {
    response(out, &Response::new(Opcode::Quit, Status::NoError, opaque));
}

/// Appends one STAT packet: the name as key, the value's text as value. The value is
/// formatted straight into `out` and the body length filled in afterwards.
///
/// # Panics
///
/// If the name is over 65,535 bytes or the value's text over 4 GiB.
pub fn stat(out: &mut Vec<u8>, opaque: u32, name: &str, value: impl Display) {
    let start = out.len();
    let mut reply = Response::new(Opcode::Stat, Status::NoError, opaque);
    reply.key = name.as_bytes();
    begin(out, &reply, 0);
    write!(out, "{value}").expect("writing to a Vec cannot fail");
    let body = u32::try_from(out.len() - start - HEADER_LEN).expect("a stat fits in 4 GiB");
    out[start + 8..start + 12].copy_from_slice(&body.to_be_bytes());
}

/// Appends the empty STAT packet that ends a group of stats.
pub fn stat_end(out: &mut Vec<u8>, opaque: u32) {
    response(out, &Response::new(Opcode::Stat, Status::NoError, opaque));
}

#[cfg(test)]
mod tests;
