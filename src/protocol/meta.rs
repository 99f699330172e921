//! The memcached meta protocol (`mg`, `ms`, `md`, `ma`, `mn`, `me`): a zero-copy parser
//! for one request (line and, for `ms`, data block) and the encoders for its replies.
//!
//! A meta command is a two-letter word, a key and single-letter flags, some of which carry
//! a token (`T30`, `Oabc`). memcached checks the flags of every meta command in one shared
//! pass, so each command accepts every flag memcached knows and ignores those it has no use
//! for; this module does the same. It records the flags' values ([`Options`]) and the
//! flags to return, in request order ([`Returns`]), and the order of the flags whose effect
//! depends on it ([`Steps`]), and leaves what they do to the cache to
//! the executor. A key sent in base64 (`b`) is checked here but kept as sent, so that a
//! request never copies its key; [`MetaKey::bytes`] decodes it into a [`KeyRoom`] on the
//! caller's stack. This module does not find lines: [`super::text`] does, and hands every
//! two-letter word starting with `m` to [`parse_line`]; [`parse`] does both, for tests
//! and fuzzing.
//!
//! The rules and error texts are memcached 1.6.18's, with these later changes: the flags
//! `E` (give the item this CAS) and `x` (drop the value, keep the item) are accepted, `N`
//! is recorded for `ms` (append and prepend that create the item), `C` on `mg` is recorded
//! (skip the value when the CAS matches), `s` is returned by `ms`, and a refused `ms`
//! consumes its data block whenever its length is readable, so the value's bytes are never
//! run as commands. Keys given with `b` must be canonical base64: memcached also skips
//! bytes outside the alphabet and anything after a padded group, corecache refuses them.

use std::fmt;

use base64::alphabet::STANDARD as ALPHABET;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use memchr::memchr;

use super::error::ErrorReply;
use super::number::parse_i32_wrapping;
use super::text::{Command, Limits, Parse, Request, KEY_MAX};

mod encode;
mod flags;

use flags::read_flags;

pub use encode::{
    write_debug, write_noop, write_reply, write_value, Code, DebugInfo, ItemInfo, Markers,
};

/// memcached 1.6.18 refuses a meta line of this many tokens or more (command and key
/// included), so `mg` takes at most 17 flags and `ms` 16.
const TOKENS_MAX: usize = 20;
/// The longest opaque memcached echoes; a longer one is refused.
pub const OPAQUE_MAX: usize = 31;
/// The longest key `b` can decode: a key token is at most 250 bytes, and base64 comes
/// in whole groups of 4 bytes that decode to 3.
pub const BINARY_KEY_MAX: usize = KEY_MAX / 4 * 3;
/// The largest declared value length memcached accepts (`INT_MAX - 2`).
const VALUE_LEN_MAX: i64 = i32::MAX as i64 - 2;
/// A reply returns each of the eight value flags at most once.
const RETURNS_MAX: usize = 8;
/// `T`, `N`, `R` and `t`, each at most once.
const STEPS_MAX: usize = 4;

/// base64 as memcached reads keys: the standard alphabet, whole groups only (padding
/// required), and stray low bits in the last group tolerated, as memcached tolerates them.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &ALPHABET,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// The flags each command returns, by letter, as memcached's reply code picks them.
const GET_RETURNS: &[u8] = b"stcflhOk";
const SET_RETURNS: &[u8] = b"Okcs";
const DELETE_RETURNS: &[u8] = b"Ok";
const ARITH_RETURNS: &[u8] = b"Oktc";

/// The key a meta command names, as a slice of the request line either way: a key sent
/// in base64 (`b`) was checked by the parser and is decoded on demand, so parsing copies
/// nothing and a request stays small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKey<'a> {
    /// The key as sent.
    Text(&'a [u8]),
    /// Valid base64 (`b`); the key is what it decodes to, which may hold any byte.
    Base64(&'a [u8]),
}

impl<'a> MetaKey<'a> {
    /// The key's bytes, what the cache stores: the token itself, or the token decoded into
    /// `room`.
    pub fn bytes<'r>(&self, room: &'r mut KeyRoom) -> &'r [u8]
    where
        'a: 'r,
    {
        match *self {
            MetaKey::Text(key) => key,
            MetaKey::Base64(encoded) => room.decode(encoded).unwrap_or_default(),
        }
    }

    /// The key without decoding, when it was sent as text: the zero-copy path.
    pub fn text(&self) -> Option<&'a [u8]> {
        match *self {
            MetaKey::Text(key) => Some(key),
            MetaKey::Base64(_) => None,
        }
    }

    /// Whether the client sent the key in base64, so that `k` answers in base64 too.
    pub fn is_binary(&self) -> bool {
        matches!(self, MetaKey::Base64(_))
    }
}

/// Room on the caller's stack for a key decoded from base64, so decoding never
/// allocates.
pub struct KeyRoom {
    bytes: [u8; BINARY_KEY_MAX],
}

impl KeyRoom {
    /// Empty room.
    pub const fn new() -> KeyRoom {
        KeyRoom {
            bytes: [0; BINARY_KEY_MAX],
        }
    }

    /// Decodes a key token; `None` when it is not base64 or decodes to nothing.
    fn decode(&mut self, encoded: &[u8]) -> Option<&[u8]> {
        let len = KEY_BASE64.decode_slice(encoded, &mut self.bytes).ok()?;
        self.bytes.get(..len).filter(|key| !key.is_empty())
    }
}

impl Default for KeyRoom {
    fn default() -> KeyRoom {
        KeyRoom::new()
    }
}

/// A value the client asked the reply to carry, named by its flag letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnFlag {
    /// `s`: the value's length.
    Size,
    /// `t`: seconds left to live, `-1` for never.
    Ttl,
    /// `c`: the CAS.
    Cas,
    /// `f`: the client flags.
    ClientFlags,
    /// `l`: seconds since the item was last accessed.
    LastAccess,
    /// `h`: whether the item had been fetched before, `0` or `1`.
    HitBefore,
    /// `O`: the request's opaque, echoed.
    Opaque,
    /// `k`: the key.
    Key,
}

impl ReturnFlag {
    fn from_letter(letter: u8) -> Option<ReturnFlag> {
        Some(match letter {
            b's' => ReturnFlag::Size,
            b't' => ReturnFlag::Ttl,
            b'c' => ReturnFlag::Cas,
            b'f' => ReturnFlag::ClientFlags,
            b'l' => ReturnFlag::LastAccess,
            b'h' => ReturnFlag::HitBefore,
            b'O' => ReturnFlag::Opaque,
            b'k' => ReturnFlag::Key,
            _ => return None,
        })
    }

    /// The letter the reply writes before the value (and the request used to ask for it).
    pub const fn letter(self) -> u8 {
        match self {
            ReturnFlag::Size => b's',
            ReturnFlag::Ttl => b't',
            ReturnFlag::Cas => b'c',
            ReturnFlag::ClientFlags => b'f',
            ReturnFlag::LastAccess => b'l',
            ReturnFlag::HitBefore => b'h',
            ReturnFlag::Opaque => b'O',
            ReturnFlag::Key => b'k',
        }
    }
}

/// The flags a reply returns, in the order the request gave them (replies must keep that
/// order), in a fixed array so that a request allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Returns {
    list: [ReturnFlag; RETURNS_MAX],
    len: u8,
}

impl Returns {
    const NONE: Returns = Returns {
        list: [ReturnFlag::Size; RETURNS_MAX],
        len: 0,
    };

    /// Adds a flag; the flag pass refuses repeated letters, so there is always room.
    fn push(&mut self, flag: ReturnFlag) {
        if let Some(slot) = self.list.get_mut(usize::from(self.len)) {
            *slot = flag;
            self.len += 1;
        }
    }

    /// The flags, in request order.
    pub fn as_slice(&self) -> &[ReturnFlag] {
        &self.list[..usize::from(self.len)]
    }

    /// Whether the request asked for this flag.
    pub fn contains(&self, flag: ReturnFlag) -> bool {
        self.as_slice().contains(&flag)
    }
}

impl fmt::Debug for Returns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// A flag whose effect depends on where it stands in the request: memcached's `mg` and
/// `ma` apply `T`, `N` and `R` in request order, and `t` reports the TTL as it is at its
/// own place, so `t T30` returns the old TTL and `T30 t` the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `T<exptime>`: set the TTL.
    Touch,
    /// `N<exptime>`: give an item just created its TTL.
    Vivify,
    /// `R<exptime>`: win the recache token if less time than this is left.
    Recache,
    /// `t`: report the TTL as it stands here.
    ReturnTtl,
}

impl Step {
    fn from_letter(letter: u8) -> Option<Step> {
        Some(match letter {
            b'T' => Step::Touch,
            b'N' => Step::Vivify,
            b'R' => Step::Recache,
            b't' => Step::ReturnTtl,
            _ => return None,
        })
    }
}

/// The [`Step`]s of a request, in request order, in a fixed array so that a request
/// allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    list: [Step; STEPS_MAX],
    len: u8,
}

impl Steps {
    const NONE: Steps = Steps {
        list: [Step::Touch; STEPS_MAX],
        len: 0,
    };

    /// Adds a step; the flag pass refuses repeated letters, so there is always room.
    fn push(&mut self, step: Step) {
        if let Some(slot) = self.list.get_mut(usize::from(self.len)) {
            *slot = step;
            self.len += 1;
        }
    }

    /// The steps, in request order.
    pub fn as_slice(&self) -> &[Step] {
        &self.list[..usize::from(self.len)]
    }
}

impl fmt::Debug for Steps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The values a meta command's flags carry. Every command accepts every flag (memcached
/// checks them in one shared pass) and ignores those it has no use for; each field names
/// the commands that use it. Numbers are as the client sent them, exptimes included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `v`: return the value (`mg`, `ma`).
    pub value: bool,
    /// `q`: hide the reply that says nothing new; see [`MetaRequest::hides`].
    pub quiet: bool,
    /// `u`: leave the item where it is in the LRU (`mg`).
    pub no_bump: bool,
    /// `I`: mark the item stale rather than delete it (`md`), or let a store with an older
    /// `C` land as stale (`ms`).
    pub invalidate: bool,
    /// `x`: drop the value but keep the item (`md`; memcached 1.6.27 and later).
    pub remove_value: bool,
    /// `T<exptime>`: the item's expiry (`ms`), or a new one (`mg`, `ma`, `md` with `I`
    /// or `x`).
    pub ttl: Option<i32>,
    /// `N<exptime>`: create the item on a miss, with this expiry (`mg`, `ma`, and `ms` in
    /// append or prepend mode).
    pub vivify: Option<i32>,
    /// `R<exptime>`: win the recache token when less time than this is left (`mg`).
    pub recache: Option<i32>,
    /// `F<flags>`: client flags (`ms`, `md` with `x`), wrapping at 32 bits as in `set`.
    pub client_flags: Option<u32>,
    /// `C<cas>`: act only when the item's CAS is this (`ms`, `md`, `ma`); on `mg`, leave
    /// the value out when it is (memcached 1.6.40 and later).
    pub compare_cas: Option<u64>,
    /// `E<cas>`: give the item this CAS rather than the next one (memcached 1.6.27 and
    /// later).
    pub new_cas: Option<u64>,
    /// `D<delta>`: the amount (`ma`; 1 when absent).
    pub delta: Option<u64>,
    /// `J<initial>`: the value of an item `N` creates (`ma`; 0 when absent).
    pub initial: Option<u64>,
}

/// What every keyed meta command carries: the key, the opaque, the flags to return and
/// the values of the other flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaArgs<'a> {
    /// The key, decoded if `b` was given.
    pub key: MetaKey<'a>,
    /// `O<opaque>`: the token after the `O`, echoed where [`Returns`] has it.
    pub opaque: Option<&'a [u8]>,
    /// The flags the reply returns, in request order.
    pub returns: Returns,
    /// `T`, `N`, `R` and `t`, in request order, for the commands that interleave them.
    pub steps: Steps,
    /// The values of the other flags.
    pub options: Options,
}

/// What `ms` does (its `M` flag): the classic storage commands under one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMode {
    /// `MS` or no `M`: `set` (or `cas` when `C` is given).
    Set,
    /// `ME`: `add`.
    Add,
    /// `MA`: `append`.
    Append,
    /// `MP`: `prepend`.
    Prepend,
    /// `MR`: `replace` (or `cas` when `C` is given).
    Replace,
}

/// What `ma` does (its `M` flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithMode {
    /// `MI`, `M+` or no `M`: add, wrapping at 2^64.
    Incr,
    /// `MD` or `M-`: subtract, stopping at 0.
    Decr,
}

/// A parsed meta command that needs the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaRequest<'a> {
    /// `mg <key> <flags>*`
    Get(MetaArgs<'a>),
    /// `ms <key> <datalen> <flags>*` with its value.
    Set {
        /// Key and flags.
        args: MetaArgs<'a>,
        /// Which storage command.
        mode: SetMode,
        /// The value, without its `\r\n`.
        data: &'a [u8],
    },
    /// `ms` whose item would exceed `-I`: its value is discarded unread, the reply is
    /// `SERVER_ERROR object too large for cache`, and the old item is unlinked so that
    /// stale data does not outlive the failed store.
    TooLarge(MetaArgs<'a>),
    /// `md <key> <flags>*`
    Delete(MetaArgs<'a>),
    /// `ma <key> <flags>*`
    Arith {
        /// Key and flags.
        args: MetaArgs<'a>,
        /// Increment or decrement.
        mode: ArithMode,
    },
    /// `me <key> [b]`: an item's internals, for debugging.
    Debug(MetaKey<'a>),
}

impl<'a> MetaRequest<'a> {
    /// The key, the one that picks the shard (see [`MetaKey::bytes`]).
    pub fn key(&self) -> MetaKey<'a> {
        match self {
            MetaRequest::Debug(key) => *key,
            _ => self.args().map_or(MetaKey::Text(&[]), |args| args.key),
        }
    }

    /// Key and flags, for every command but `me`.
    pub fn args(&self) -> Option<&MetaArgs<'a>> {
        match self {
            MetaRequest::Get(args)
            | MetaRequest::Set { args, .. }
            | MetaRequest::TooLarge(args)
            | MetaRequest::Delete(args)
            | MetaRequest::Arith { args, .. } => Some(args),
            MetaRequest::Debug(_) => None,
        }
    }

    /// Whether quiet mode (`q`) hides a reply with this code: `EN` of `mg`, `HD` of `ms`
    /// and `md`, and any success of `ma`. Other codes and errors are always sent.
    pub fn hides(&self, code: Code) -> bool {
        let hidden = match self {
            MetaRequest::Get(_) => code == Code::En,
            MetaRequest::Set { .. } | MetaRequest::Delete(_) => code == Code::Hd,
            MetaRequest::Arith { .. } => matches!(code, Code::Hd | Code::Va(_)),
            MetaRequest::TooLarge(_) | MetaRequest::Debug(_) => false,
        };
        hidden && self.args().is_some_and(|args| args.options.quiet)
    }
}

/// What a meta line asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// A command for the cache.
    Request(MetaRequest<'a>),
    /// `mn` (arguments ignored): answer `MN`.
    Noop,
    /// A refused line: send this error, whatever `q` says.
    Error(ErrorReply),
}

/// The result of looking at a meta request at the front of the read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaParse<'a> {
    /// One whole request.
    Done {
        /// What it asks for.
        outcome: Outcome<'a>,
        /// Bytes of the buffer it spans.
        len: usize,
        /// Bytes after `len` that belong to it (a refused data block), to drop as they
        /// arrive.
        discard: usize,
    },
    /// More bytes are needed; `need`, when known, is the total the request takes.
    Incomplete {
        /// Total bytes of the request, when its line has been read.
        need: Option<usize>,
    },
}

impl<'a> MetaParse<'a> {
    /// The same result in the text parser's terms, so that the text parser can hand meta
    /// lines here: `wrap` makes a text command of a meta request (`Command::Meta`).
    pub fn into_text(self, wrap: impl FnOnce(MetaRequest<'a>) -> Command<'a>) -> Parse<'a> {
        let (outcome, len, discard) = match self {
            MetaParse::Done {
                outcome,
                len,
                discard,
            } => (outcome, len, discard),
            MetaParse::Incomplete { need } => return Parse::Incomplete { need },
        };
        let command = match outcome {
            Outcome::Request(request) => wrap(request),
            Outcome::Noop => Command::MetaNoop,
            Outcome::Error(reply) => Command::Error {
                reply,
                noreply: false,
            },
        };
        Parse::Request(Request {
            command,
            len,
            discard,
        })
    }
}

/// Parses the meta request at the front of `buf`, finding its line first.
///
/// # Examples
///
/// ```
/// use corecache::protocol::meta::{parse, write_reply, Code, MetaParse, MetaRequest, Outcome};
/// use corecache::protocol::text::Limits;
///
/// let limits = Limits { item_size_max: 1 << 20, item_overhead: 59, flags_overhead: 4 };
/// let MetaParse::Done { outcome, len, .. } = parse(b"mg foo k Oop v\r\n", &limits) else {
///     panic!("a whole line is a whole request");
/// };
/// let Outcome::Request(MetaRequest::Get(args)) = outcome else {
///     panic!("mg is a get");
/// };
/// assert_eq!(len, 16);
///
/// let mut out = Vec::new();
/// write_reply(&mut out, Code::En, &args, None);
/// assert_eq!(out, b"EN kfoo Oop\r\n");
/// ```
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> MetaParse<'a> {
    match memchr(b'\n', buf) {
        Some(newline) => parse_line(buf, newline + 1, limits),
        None => MetaParse::Incomplete { need: None },
    }
}

/// Parses the meta request whose line, newline included, is the first `line_len` bytes
/// of `buf`; the bytes after it are `ms`'s data block and whatever follows.
///
/// # Panics
///
/// Panics if `line_len` is 0 or more than `buf.len()`.
pub fn parse_line<'a>(buf: &'a [u8], line_len: usize, limits: &Limits) -> MetaParse<'a> {
    let tokens = Tokens::split(request_line(&buf[..line_len - 1]));
    let frame = Frame {
        buf,
        line_len,
        limits,
    };
    match tokens.get(0) {
        b"mg" => frame.answer(get(&tokens)),
        b"ms" => set(&tokens, &frame),
        b"md" => frame.answer(delete(&tokens)),
        b"ma" => frame.answer(arith(&tokens)),
        b"me" => frame.answer(debug_key(&tokens).map(MetaRequest::Debug)),
        b"mn" => frame.done(Outcome::Noop, 0),
        _ => frame.done(Outcome::Error(ErrorReply::Error), 0),
    }
}

/// The line as memcached sees it: without the `\r` before the newline, and cut at the
/// first NUL, as C string handling cuts it.
fn request_line(line: &[u8]) -> &[u8] {
    let line = match line {
        [rest @ .., b'\r'] if !rest.is_empty() => rest,
        _ => line,
    };
    match memchr(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    }
}

/// The line split on runs of spaces, up to the count at which memcached gives up.
struct Tokens<'a> {
    list: [&'a [u8]; TOKENS_MAX],
    len: usize,
}

impl<'a> Tokens<'a> {
    fn split(line: &'a [u8]) -> Tokens<'a> {
        let mut tokens = Tokens {
            list: [&[]; TOKENS_MAX],
            len: 0,
        };
        let words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        for (slot, word) in tokens.list.iter_mut().zip(words) {
            *slot = word;
            tokens.len += 1;
        }
        tokens
    }

    /// The token at `i`, empty when there is none.
    fn get(&self, i: usize) -> &'a [u8] {
        self.list[..self.len].get(i).copied().unwrap_or(&[])
    }

    /// The tokens from `first` on: the flags.
    fn from(&self, first: usize) -> &[&'a [u8]] {
        &self.list[first.min(self.len)..self.len]
    }

    fn too_many(&self) -> bool {
        self.len >= TOKENS_MAX
    }
}

/// The buffer around the current request line.
struct Frame<'a, 'l> {
    buf: &'a [u8],
    line_len: usize,
    limits: &'l Limits,
}

impl<'a> Frame<'a, '_> {
    fn done(&self, outcome: Outcome<'a>, discard: usize) -> MetaParse<'a> {
        MetaParse::Done {
            outcome,
            len: self.line_len,
            discard,
        }
    }

    fn answer(&self, parsed: Result<MetaRequest<'a>, ErrorReply>) -> MetaParse<'a> {
        match parsed {
            Ok(request) => self.done(Outcome::Request(request), 0),
            Err(reply) => self.done(Outcome::Error(reply), 0),
        }
    }
}

/// The checks before the flags, in memcached's order: a key, not over 250 bytes, and not
/// too many tokens.
fn head<'a>(tokens: &Tokens<'a>, too_many: ErrorReply) -> Result<&'a [u8], ErrorReply> {
    let key = tokens.get(1);
    if key.is_empty() {
        return Err(ErrorReply::Error);
    }
    if key.len() > KEY_MAX {
        return Err(ErrorReply::BadFormat);
    }
    if tokens.too_many() {
        return Err(too_many);
    }
    Ok(key)
}

fn get<'a>(tokens: &Tokens<'a>) -> Result<MetaRequest<'a>, ErrorReply> {
    let key = head(tokens, ErrorReply::MetaGetTooManyFlags)?;
    let (args, _mode) = read_flags(key, tokens.from(2), GET_RETURNS)?;
    Ok(MetaRequest::Get(checked_opaque(args)?))
}

/// `md` and `ma` answer any flag error with one message (memcached 1.6.18).
fn delete<'a>(tokens: &Tokens<'a>) -> Result<MetaRequest<'a>, ErrorReply> {
    let key = head(tokens, ErrorReply::MetaTooManyFlags)?;
    let (args, _mode) = read_flags(key, tokens.from(2), DELETE_RETURNS)
        .map_err(|_| ErrorReply::MetaInvalidOrDuplicateFlag)?;
    Ok(MetaRequest::Delete(checked_opaque(args)?))
}

fn arith<'a>(tokens: &Tokens<'a>) -> Result<MetaRequest<'a>, ErrorReply> {
    let key = head(tokens, ErrorReply::MetaTooManyFlags)?;
    let (args, mode) = read_flags(key, tokens.from(2), ARITH_RETURNS)
        .map_err(|_| ErrorReply::MetaInvalidOrDuplicateFlag)?;
    let mode = arith_mode(mode)?;
    let args = checked_opaque(args)?;
    Ok(MetaRequest::Arith { args, mode })
}

/// `ms`: once the length is readable, every refusal still consumes the data block.
fn set<'a>(tokens: &Tokens<'a>, frame: &Frame<'a, '_>) -> MetaParse<'a> {
    let length = value_length(tokens.get(2));
    match set_head(tokens, length) {
        Ok((args, mode, length)) => with_value(args, mode, length, frame),
        Err(reply) => frame.done(Outcome::Error(reply), length.map_or(0, |n| n + 2)),
    }
}

fn set_head<'a>(
    tokens: &Tokens<'a>,
    length: Option<usize>,
) -> Result<(MetaArgs<'a>, SetMode, usize), ErrorReply> {
    let key = head(tokens, ErrorReply::MetaTooManyFlags)?;
    let length = length.ok_or(ErrorReply::BadFormat)?;
    let (args, mode) = read_flags(key, tokens.from(3), SET_RETURNS)?;
    let mode = set_mode(mode)?;
    Ok((checked_opaque(args)?, mode, length))
}

/// A declared value length memcached would accept: a 32-bit signed number between 0 and
/// `INT_MAX - 2`.
fn value_length(token: &[u8]) -> Option<usize> {
    let n = i64::from(parse_i32_wrapping(token)?);
    if !(0..=VALUE_LEN_MAX).contains(&n) {
        return None;
    }
    usize::try_from(n).ok()
}

/// Reads the data block after the line, or discards it when the item would be too large.
fn with_value<'a>(
    args: MetaArgs<'a>,
    mode: SetMode,
    length: usize,
    frame: &Frame<'a, '_>,
) -> MetaParse<'a> {
    let flags = args.options.client_flags.unwrap_or(0);
    let key_len = args.key.bytes(&mut KeyRoom::new()).len();
    if frame.limits.too_large(key_len, flags, length) {
        return frame.done(Outcome::Request(MetaRequest::TooLarge(args)), length + 2);
    }
    let total = frame.line_len + length + 2;
    let Some(block) = frame.buf.get(frame.line_len..total) else {
        return MetaParse::Incomplete { need: Some(total) };
    };
    let outcome = match block.strip_suffix(b"\r\n") {
        Some(data) => Outcome::Request(MetaRequest::Set { args, mode, data }),
        None => Outcome::Error(ErrorReply::BadDataChunk),
    };
    MetaParse::Done {
        outcome,
        len: total,
        discard: 0,
    }
}

/// `me <key> [b]`: only a `b` right after the key decodes it, and every error is
/// `bad command line format`, even a missing key.
fn debug_key<'a>(tokens: &Tokens<'a>) -> Result<MetaKey<'a>, ErrorReply> {
    let key = tokens.get(1);
    if key.is_empty() || key.len() > KEY_MAX {
        return Err(ErrorReply::BadFormat);
    }
    if tokens.get(2) != b"b" {
        return Ok(MetaKey::Text(key));
    }
    match KeyRoom::new().decode(key) {
        Some(_) => Ok(MetaKey::Base64(key)),
        None => Err(ErrorReply::BadFormat),
    }
}

fn set_mode(mode: Option<u8>) -> Result<SetMode, ErrorReply> {
    match mode {
        None | Some(b'S') => Ok(SetMode::Set),
        Some(b'E') => Ok(SetMode::Add),
        Some(b'A') => Ok(SetMode::Append),
        Some(b'P') => Ok(SetMode::Prepend),
        Some(b'R') => Ok(SetMode::Replace),
        Some(_) => Err(ErrorReply::MetaInvalidSetMode),
    }
}

fn arith_mode(mode: Option<u8>) -> Result<ArithMode, ErrorReply> {
    match mode {
        None | Some(b'I' | b'+') => Ok(ArithMode::Incr),
        Some(b'D' | b'-') => Ok(ArithMode::Decr),
        Some(_) => Err(ErrorReply::MetaInvalidArithMode),
    }
}

/// memcached checks the opaque's length only after the flags and the mode.
fn checked_opaque(args: MetaArgs<'_>) -> Result<MetaArgs<'_>, ErrorReply> {
    match args.opaque {
        Some(opaque) if opaque.len() > OPAQUE_MAX => Err(ErrorReply::MetaOpaqueTooLong),
        _ => Ok(args),
    }
}

#[cfg(test)]
mod tests;
