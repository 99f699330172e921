//! The classic memcached text protocol: a zero-copy parser for one request at a time.
//!
//! [`parse`] looks at the front of a connection's read buffer and answers one of three
//! things: a whole [`Request`] (whose keys and value borrow the buffer), "incomplete"
//! (read more and call again), or "close" (framing is lost). Malformed input is not a
//! parser failure: it is a request whose command is [`Command::Error`], so its reply
//! keeps its place in the pipeline and the stream stays framed.
//!
//! The rules are memcached 1.6.18's, token counts and quirks included, with one
//! deliberate change taken from memcached's later versions: when a storage command is
//! refused but its length field is readable, its data block is still consumed
//! ([`Request::discard`]), so the value's bytes are never run as commands.
//!
//! Meta commands (`mg`, `ms`, ...) are found here, as two-letter words starting with `m`,
//! and parsed by [`super::meta`]; a parsed one is a [`Command::Meta`] (or
//! [`Command::MetaNoop`] for `mn`).

use memchr::memchr;

use super::error::ErrorReply;
use super::number::{parse_i32_wrapping, parse_u32_wrapping, parse_u64};

/// The longest key, in bytes.
pub const KEY_MAX: usize = 250;
/// A line longer than this without a newline closes the connection, unless it is a
/// `get` or `gets` (multi-gets may be long).
pub const LINE_MAX: usize = 2048;
/// memcached tokenizes at most this many tokens, the last holding the rest of the line.
const MAX_TOKENS: usize = 24;
/// The largest declared value length memcached accepts (`INT_MAX - 2`).
const VALUE_LEN_MAX: i64 = i32::MAX as i64 - 2;

/// What the parser needs to know about the server's settings.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest item (`-I`).
    pub item_size_max: usize,
    /// Bytes an item is counted beyond its key and value, against `-I`.
    pub item_overhead: usize,
    /// Bytes more when its flags are not 0 (memcached stores non-zero flags apart).
    pub flags_overhead: usize,
}

impl Limits {
    /// Whether an item with this key, flags and value length exceeds `-I`.
    pub fn too_large(&self, key_len: usize, flags: u32, value_len: usize) -> bool {
        let flags = if flags == 0 { 0 } else { self.flags_overhead };
        self.item_overhead + key_len + value_len + flags > self.item_size_max
    }
}

/// The result of looking at the front of the read buffer.
#[derive(Debug, PartialEq)]
pub enum Parse<'a> {
    /// One whole request.
    Request(Request<'a>),
    /// More bytes are needed; `need`, when known, is the total the request takes.
    Incomplete {
        /// Total bytes of the request, when its line has been read.
        need: Option<usize>,
    },
    /// Framing is lost: close the connection.
    Close(CloseReason),
}

/// Why a connection is closed without a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// More than [`LINE_MAX`] bytes without a newline, and not a multi-get.
    LineTooLong,
    /// An HTTP request line: the client is not speaking memcached.
    Http,
}

/// One request: the command, how many bytes of the buffer it spans, and how many bytes
/// after those belong to it and are to be dropped unread (a refused data block).
#[derive(Debug, PartialEq)]
pub struct Request<'a> {
    /// What to do.
    pub command: Command<'a>,
    /// Bytes of the buffer this request spans.
    pub len: usize,
    /// Bytes after `len` to drop as they arrive.
    pub discard: usize,
}

/// The get family: they differ in whether CAS is shown and whether the TTL is reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetKind {
    /// `get` (and the ancient alias `bget`).
    Get,
    /// `gets`: also the CAS.
    Gets,
    /// `gat <exptime>`: get and touch.
    Gat(i32),
    /// `gats <exptime>`: get and touch, with CAS.
    Gats(i32),
}

impl GetKind {
    /// Whether `VALUE` lines carry the CAS.
    pub fn with_cas(self) -> bool {
        matches!(self, GetKind::Gets | GetKind::Gats(_))
    }

    /// The new exptime, for the touching forms.
    pub fn touch(self) -> Option<i32> {
        match self {
            GetKind::Gat(t) | GetKind::Gats(t) => Some(t),
            GetKind::Get | GetKind::Gets => None,
        }
    }
}

/// Which storage command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// `set`
    Set,
    /// `add`
    Add,
    /// `replace`
    Replace,
    /// `append`
    Append,
    /// `prepend`
    Prepend,
    /// `cas` with the client's CAS unique.
    Cas(u64),
}

/// A storage command with its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreRequest<'a> {
    /// Which command.
    pub kind: StoreKind,
    /// The key.
    pub key: &'a [u8],
    /// Client flags.
    pub flags: u32,
    /// Expiry as the client sent it.
    pub exptime: i32,
    /// The value, without its `\r\n`.
    pub data: &'a [u8],
    /// Suppress the reply.
    pub noreply: bool,
}

/// `flush_all`'s optional delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushDelay {
    /// No delay given, or 0 or negative: flush now.
    Now,
    /// Flush at this exptime.
    After(i32),
    /// The delay was not a number (answered only once `-F` has been checked).
    Invalid,
}

/// `shutdown`'s argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownMode {
    /// No argument.
    Now,
    /// `graceful`.
    Graceful,
    /// Anything else (answered only once `-A` has been checked).
    Invalid,
}

/// Which `stats` group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsGroup {
    /// `stats`
    General,
    /// `stats reset`
    Reset,
    /// `stats settings`
    Settings,
    /// `stats items`
    Items,
    /// `stats slabs`
    Slabs,
    /// `stats sizes`
    Sizes,
    /// `stats conns`
    Conns,
    /// `stats cachedump <class> <limit>`: keys of one slab class, most recent first.
    CacheDump {
        /// The slab class id.
        class: u8,
        /// The most keys to list; 0 for all.
        limit: u32,
    },
}

/// A parsed text command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `get`, `gets`, `gat`, `gats`: keys already checked for length.
    Get {
        /// Which form.
        kind: GetKind,
        /// The keys, in order, duplicates kept.
        keys: Keys<'a>,
    },
    /// A storage command with its value.
    Store(StoreRequest<'a>),
    /// A storage command whose value exceeds `-I`: the value is discarded, the reply is
    /// `SERVER_ERROR object too large for cache`, and a `set` removes the old value.
    TooLarge {
        /// Which command.
        kind: StoreKind,
        /// The key.
        key: &'a [u8],
        /// Suppress the reply.
        noreply: bool,
    },
    /// `delete <key>`
    Delete {
        /// The key.
        key: &'a [u8],
        /// Suppress the reply.
        noreply: bool,
    },
    /// `incr` / `decr`
    Arith {
        /// The key.
        key: &'a [u8],
        /// `incr` (true) or `decr`.
        incr: bool,
        /// The amount.
        delta: u64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `touch <key> <exptime>`
    Touch {
        /// The key.
        key: &'a [u8],
        /// New expiry.
        exptime: i32,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `flush_all [delay]`
    FlushAll {
        /// When.
        delay: FlushDelay,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `version`
    Version,
    /// `verbosity <level>`
    Verbosity {
        /// The new level.
        level: u32,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `quit`: close once earlier replies are written.
    Quit,
    /// `shutdown [graceful]`
    Shutdown(ShutdownMode),
    /// `cache_memlimit <megabytes>`
    CacheMemlimit {
        /// The new limit in megabytes.
        megabytes: u32,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `stats [group]`
    Stats(StatsGroup),
    /// `mn`: answers `MN`.
    MetaNoop,
    /// `mg`, `ms`, `md`, `ma`, `me`: a meta command for one key.
    Meta(super::meta::MetaRequest<'a>),
    /// Malformed input: reply with this error (unless `noreply` hides it).
    Error {
        /// The error line.
        reply: ErrorReply,
        /// Suppress the reply.
        noreply: bool,
    },
}

impl<'a> Command<'a> {
    /// The key that decides which shard runs this command, if it has exactly one and it
    /// was sent as it is stored: a meta command's base64 key (`b`) must be decoded with
    /// [`super::meta::MetaKey::bytes`] first, so it answers `None` here.
    pub fn single_key(&self) -> Option<&'a [u8]> {
        match *self {
            Command::Store(StoreRequest { key, .. })
            | Command::TooLarge { key, .. }
            | Command::Delete { key, .. }
            | Command::Arith { key, .. }
            | Command::Touch { key, .. } => Some(key),
            Command::Meta(ref meta) => meta.key().text(),
            _ => None,
        }
    }
}

/// The keys of a get, split lazily from the request line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keys<'a> {
    rest: &'a [u8],
}

impl<'a> Keys<'a> {
    /// Keys separated by runs of spaces in `line`.
    pub fn new(line: &'a [u8]) -> Keys<'a> {
        Keys { rest: line }
    }

    /// The keys not yet iterated, as the bytes they came in.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Keys<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|&b| b != b' ')?;
        let rest = &self.rest[start..];
        let end = memchr(b' ', rest).unwrap_or(rest.len());
        self.rest = &rest[end..];
        Some(&rest[..end])
    }
}

/// Parses the request at the front of `buf`.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parse<'a> {
    let Some(newline) = memchr(b'\n', buf) else {
        return incomplete_line(buf);
    };
    let line = command_line(&buf[..newline]);
    let tokens = Tokens::split(line);
    let frame = Frame {
        buf,
        line_len: newline + 1,
        limits,
    };
    dispatch(&tokens, &frame)
}

/// A line without its newline yet: wait, unless it is too long to be anything but a
/// multi-get.
fn incomplete_line(buf: &[u8]) -> Parse<'_> {
    if buf.len() <= LINE_MAX {
        return Parse::Incomplete { need: None };
    }
    let spaces = buf.iter().take_while(|&&b| b == b' ').count();
    let rest = &buf[spaces..];
    if spaces <= 100 && (rest.starts_with(b"get ") || rest.starts_with(b"gets ")) {
        return Parse::Incomplete { need: None };
    }
    Parse::Close(CloseReason::LineTooLong)
}

/// The command line as memcached sees it: without `\r` before the newline (when the line
/// has at least one other byte), and cut at the first NUL, as C string handling does.
fn command_line(line: &[u8]) -> &[u8] {
    let line = match line {
        [rest @ .., b'\r'] if !rest.is_empty() => rest,
        _ => line,
    };
    match memchr(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    }
}

/// The request line split on spaces, as memcached's `tokenize_command` splits it: at
/// most 23 tokens, the rest of the line left unsplit.
struct Tokens<'a> {
    list: [&'a [u8]; MAX_TOKENS - 1],
    len: usize,
}

impl<'a> Tokens<'a> {
    fn split(line: &'a [u8]) -> Tokens<'a> {
        let mut tokens = Tokens {
            list: [&[]; MAX_TOKENS - 1],
            len: 0,
        };
        let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        while tokens.len < MAX_TOKENS - 1 {
            let Some(word) = words.next() else { break };
            tokens.list[tokens.len] = word;
            tokens.len += 1;
        }
        tokens
    }

    /// memcached's `ntokens`: the tokens plus its terminal one.
    fn count(&self) -> usize {
        self.len + 1
    }

    fn get(&self, i: usize) -> &'a [u8] {
        self.list[..self.len].get(i).copied().unwrap_or(&[])
    }

    /// memcached's `set_noreply_maybe`: the last token is exactly `noreply`.
    fn noreply(&self) -> bool {
        self.len > 0 && self.list[self.len - 1] == b"noreply"
    }

    /// Where in the line the token at `i` starts (for a get's key list).
    fn offset_in(&self, line: &[u8], i: usize) -> usize {
        let token = self.list[i];
        token.as_ptr() as usize - line.as_ptr() as usize
    }
}

/// The buffer around the current request line.
struct Frame<'a, 'l> {
    buf: &'a [u8],
    line_len: usize,
    limits: &'l Limits,
}

impl<'a> Frame<'a, '_> {
    fn done(&self, command: Command<'a>) -> Parse<'a> {
        self.with_discard(command, 0)
    }

    fn with_discard(&self, command: Command<'a>, discard: usize) -> Parse<'a> {
        Parse::Request(Request {
            command,
            len: self.line_len,
            discard,
        })
    }

    fn error(&self, reply: ErrorReply, noreply: bool) -> Parse<'a> {
        self.done(Command::Error { reply, noreply })
    }
}

fn dispatch<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> Parse<'a> {
    let command = tokens.get(0);
    if command.len() < 2 {
        return frame.error(ErrorReply::Error, false);
    }
    if command.len() == 2 && command[0] == b'm' {
        return meta(frame);
    }
    match command {
        b"get" | b"bget" => get(tokens, frame, GetKind::Get),
        b"gets" => get(tokens, frame, GetKind::Gets),
        b"gat" | b"gats" => get_and_touch(tokens, frame, command == b"gats"),
        b"set" => store(tokens, frame, StoreKind::Set),
        b"add" => store(tokens, frame, StoreKind::Add),
        b"replace" => store(tokens, frame, StoreKind::Replace),
        b"append" => store(tokens, frame, StoreKind::Append),
        b"prepend" => store(tokens, frame, StoreKind::Prepend),
        b"cas" => store(tokens, frame, StoreKind::Cas(0)),
        b"delete" => delete(tokens, frame),
        b"incr" | b"decr" => arith(tokens, frame, command == b"incr"),
        b"touch" => touch(tokens, frame),
        _ => admin(command, tokens, frame),
    }
}

fn admin<'a>(command: &[u8], tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> Parse<'a> {
    match command {
        b"stats" => stats(tokens, frame),
        b"flush_all" => flush_all(tokens, frame),
        b"version" => frame.done(Command::Version),
        b"quit" => frame.done(Command::Quit),
        b"verbosity" => verbosity(tokens, frame),
        b"shutdown" => shutdown(tokens, frame),
        b"cache_memlimit" => cache_memlimit(tokens, frame),
        _ => unknown(command, tokens, frame),
    }
}

/// memcached closes the connection when an unknown command's last token starts with
/// `HTTP/`; commands starting with a letter of a known family just get `ERROR`.
fn unknown<'a>(command: &[u8], tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> Parse<'a> {
    let family = matches!(command[0], b'g' | b's' | b'a' | b'c' | b'i' | b'd' | b't');
    if !family && tokens.get(tokens.len - 1).starts_with(b"HTTP/") {
        return Parse::Close(CloseReason::Http);
    }
    frame.error(ErrorReply::Error, false)
}

/// Hands a meta line to the meta parser, which answers `ERROR` for an unknown word.
fn meta<'a>(frame: &Frame<'a, '_>) -> Parse<'a> {
    super::meta::parse_line(frame.buf, frame.line_len, frame.limits).into_text(Command::Meta)
}

fn get<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>, kind: GetKind) -> Parse<'a> {
    if tokens.count() < 3 {
        return frame.error(ErrorReply::Error, false);
    }
    keys_from(tokens, frame, kind, 1)
}

fn get_and_touch<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>, cas: bool) -> Parse<'a> {
    if tokens.count() < 3 {
        return frame.error(ErrorReply::Error, false);
    }
    let Some(exptime) = parse_i32_wrapping(tokens.get(1)) else {
        return frame.error(ErrorReply::InvalidExptime, false);
    };
    let kind = if cas {
        GetKind::Gats(exptime)
    } else {
        GetKind::Gat(exptime)
    };
    keys_from(tokens, frame, kind, 2)
}

/// The keys start at token `first`; a key over 250 bytes anywhere fails the whole get.
fn keys_from<'a>(
    tokens: &Tokens<'a>,
    frame: &Frame<'a, '_>,
    kind: GetKind,
    first: usize,
) -> Parse<'a> {
    let line = command_line(&frame.buf[..frame.line_len - 1]);
    let keys = if first < tokens.len {
        Keys::new(&line[tokens.offset_in(line, first)..])
    } else {
        Keys::new(&[])
    };
    if keys.clone().any(|key| key.len() > KEY_MAX) {
        return frame.error(ErrorReply::BadFormat, false);
    }
    frame.done(Command::Get { kind, keys })
}

/// `set`/`add`/`replace`/`append`/`prepend`/`cas`, checked in memcached's order. Once the
/// length is known, every refusal still consumes the data block.
fn store<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>, kind: StoreKind) -> Parse<'a> {
    let is_cas = kind == StoreKind::Cas(0);
    let counts = if is_cas { 7..=8 } else { 6..=7 };
    let length = value_length(tokens.get(4));
    let discard = length.map_or(0, |n| n + 2);
    if !counts.contains(&tokens.count()) {
        return frame.with_discard(error(ErrorReply::Error, false), discard);
    }
    let noreply = tokens.noreply();
    let refuse = |reply| frame.with_discard(error(reply, noreply), discard);
    let key = tokens.get(1);
    if key.len() > KEY_MAX {
        return refuse(ErrorReply::BadFormat);
    }
    let flags = parse_u32_wrapping(tokens.get(2));
    let exptime = parse_i32_wrapping(tokens.get(3));
    let (Some(flags), Some(exptime), Some(length)) = (flags, exptime, length) else {
        return refuse(ErrorReply::BadFormat);
    };
    let kind = match kind {
        StoreKind::Cas(_) => match parse_u64(tokens.get(5)) {
            Some(unique) => StoreKind::Cas(unique),
            None => return refuse(ErrorReply::BadFormat),
        },
        other => other,
    };
    let header = StoreRequest {
        kind,
        key,
        flags,
        exptime,
        data: &[],
        noreply,
    };
    with_value(header, length, frame)
}

fn error(reply: ErrorReply, noreply: bool) -> Command<'static> {
    Command::Error { reply, noreply }
}

/// A declared value length memcached would accept: parsed as a 32-bit signed number,
/// between 0 and `INT_MAX - 2`.
fn value_length(token: &[u8]) -> Option<usize> {
    let n = i64::from(parse_i32_wrapping(token)?);
    if !(0..=VALUE_LEN_MAX).contains(&n) {
        return None;
    }
    usize::try_from(n).ok()
}

/// Reads the data block after the line, or discards it when the item would be too large.
fn with_value<'a>(
    mut request: StoreRequest<'a>,
    length: usize,
    frame: &Frame<'a, '_>,
) -> Parse<'a> {
    if frame
        .limits
        .too_large(request.key.len(), request.flags, length)
    {
        let command = Command::TooLarge {
            kind: request.kind,
            key: request.key,
            noreply: request.noreply,
        };
        return frame.with_discard(command, length + 2);
    }
    let total = frame.line_len + length + 2;
    let Some(block) = frame.buf.get(frame.line_len..total) else {
        return Parse::Incomplete { need: Some(total) };
    };
    let command = if block.ends_with(b"\r\n") {
        request.data = &block[..length];
        Command::Store(request)
    } else {
        error(ErrorReply::BadDataChunk, request.noreply)
    };
    Parse::Request(Request {
        command,
        len: total,
        discard: 0,
    })
}

fn delete<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> Parse<'a> {
    let count = tokens.count();
    if !(3..=5).contains(&count) {
        return frame.error(ErrorReply::Error, false);
    }
    let noreply = tokens.noreply();
    if count > 3 {
        let hold_is_zero = tokens.get(2) == b"0";
        let valid =
            (count == 4 && (hold_is_zero || noreply)) || (count == 5 && hold_is_zero && noreply);
        if !valid {
            return frame.error(ErrorReply::DeleteUsage, noreply);
        }
    }
    let key = tokens.get(1);
    if key.len() > KEY_MAX {
        return frame.error(ErrorReply::BadFormat, noreply);
    }
    frame.done(Command::Delete { key, noreply })
}

/// An error reply and whether `noreply` hides it.
type Refusal = (ErrorReply, bool);

/// The shared start of `incr`, `decr` and `touch`: `<cmd> <key> <number> [noreply]`.
/// Answers the key, the number token and `noreply`, or the error reply to send and
/// whether `noreply` hides it (not a whole [`Command`], which is large).
fn key_and_number<'a>(tokens: &Tokens<'a>) -> Result<(&'a [u8], &'a [u8], bool), Refusal> {
    if !(4..=5).contains(&tokens.count()) {
        return Err((ErrorReply::Error, false));
    }
    let noreply = tokens.noreply();
    let key = tokens.get(1);
    if key.len() > KEY_MAX {
        return Err((ErrorReply::BadFormat, noreply));
    }
    Ok((key, tokens.get(2), noreply))
}

fn arith<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>, incr: bool) -> Parse<'a> {
    let command = match key_and_number(tokens) {
        Ok((key, number, noreply)) => match parse_u64(number) {
            Some(delta) => Command::Arith {
                key,
                incr,
                delta,
                noreply,
            },
            None => error(ErrorReply::InvalidDelta, noreply),
        },
        Err((reply, noreply)) => error(reply, noreply),
    };
    frame.done(command)
}

fn touch<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> Parse<'a> {
    let command = match key_and_number(tokens) {
        Ok((key, number, noreply)) => match parse_i32_wrapping(number) {
            Some(exptime) => Command::Touch {
                key,
                exptime,
                noreply,
            },
            None => error(ErrorReply::InvalidExptime, noreply),
        },
        Err((reply, noreply)) => error(reply, noreply),
    };
    frame.done(command)
}

fn flush_all<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> Parse<'a> {
    let count = tokens.count();
    if !(2..=4).contains(&count) {
        return frame.error(ErrorReply::Error, false);
    }
    let noreply = tokens.noreply();
    let bare = if noreply { 3 } else { 2 };
    let delay = if count == bare {
        FlushDelay::Now
    } else {
        match parse_i32_wrapping(tokens.get(1)) {
            Some(t) if t > 0 => FlushDelay::After(t),
            Some(_) => FlushDelay::Now,
            None => FlushDelay::Invalid,
        }
    };
    frame.done(Command::FlushAll { delay, noreply })
}

fn verbosity<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> Parse<'a> {
    if !(3..=4).contains(&tokens.count()) {
        return frame.error(ErrorReply::Error, false);
    }
    let noreply = tokens.noreply();
    match parse_u32_wrapping(tokens.get(1)) {
        Some(level) => frame.done(Command::Verbosity { level, noreply }),
        None => frame.error(ErrorReply::BadFormat, noreply),
    }
}

fn shutdown<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> Parse<'a> {
    let mode = match (tokens.count(), tokens.get(1)) {
        (2, _) => ShutdownMode::Now,
        (3, b"graceful") => ShutdownMode::Graceful,
        _ => ShutdownMode::Invalid,
    };
    frame.done(Command::Shutdown(mode))
}

fn cache_memlimit<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> Parse<'a> {
    if !(3..=4).contains(&tokens.count()) {
        return frame.error(ErrorReply::Error, false);
    }
    let noreply = tokens.noreply();
    match parse_u32_wrapping(tokens.get(1)) {
        Some(megabytes) => frame.done(Command::CacheMemlimit { megabytes, noreply }),
        None => frame.error(ErrorReply::Error, noreply),
    }
}

fn stats<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> Parse<'a> {
    let group = match (tokens.count(), tokens.get(1)) {
        (2, _) => StatsGroup::General,
        (_, b"reset") => StatsGroup::Reset,
        (_, b"settings") => StatsGroup::Settings,
        (_, b"items") => StatsGroup::Items,
        (_, b"slabs") => StatsGroup::Slabs,
        (_, b"sizes") => StatsGroup::Sizes,
        (_, b"conns") => StatsGroup::Conns,
        (_, b"cachedump") => return cachedump(tokens, frame),
        _ => return frame.error(ErrorReply::Error, false),
    };
    frame.done(Command::Stats(group))
}

/// memcached's limit on slab class ids (`MAX_NUMBER_OF_SLAB_CLASSES`).
const CLASS_LIMIT: u32 = 64;

fn cachedump<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> Parse<'a> {
    if tokens.count() < 5 {
        return frame.error(ErrorReply::BadCommandLine, false);
    }
    let class = parse_u32_wrapping(tokens.get(2));
    let limit = parse_u32_wrapping(tokens.get(3));
    let (Some(class), Some(limit)) = (class, limit) else {
        return frame.error(ErrorReply::BadFormat, false);
    };
    if class >= CLASS_LIMIT {
        return frame.error(ErrorReply::IllegalSlabId, false);
    }
    let class = class as u8;
    frame.done(Command::Stats(StatsGroup::CacheDump { class, limit }))
}

#[cfg(test)]
mod tests;
