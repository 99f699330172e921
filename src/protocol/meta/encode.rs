//! Encoders for meta replies: the `VA`, `HD`, `EN`, `NF`, `NS`, `EX`, `MN` and `ME`
//! lines, appended to an output buffer without allocating. The flags a reply returns come
//! from the request ([`MetaArgs::returns`], in request order); the values they carry come
//! from an [`ItemInfo`] that the executor fills. Which reply a command gets is the
//! executor's choice, not this module's.

use base64::Engine;

use super::{KeyRoom, MetaArgs, MetaKey, ReturnFlag, KEY_BASE64};
use crate::protocol::reply::Status;

/// The code a meta reply line starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// `VA <len>`: a value of this many bytes follows (`mg` and `ma` with `v`).
    Va(usize),
    /// `HD`: done, and no value asked for.
    Hd,
    /// `EN`: `mg` or `me` missed.
    En,
    /// `NF`: not found (`md`, `ma`, and `ms` with `C` or a mode that needs the item).
    Nf,
    /// `NS`: not stored (`ms` in add, replace, append or prepend mode).
    Ns,
    /// `EX`: the CAS did not match.
    Ex,
}

impl Code {
    const fn word(self) -> &'static [u8] {
        match self {
            Code::Va(_) => b"VA ",
            Code::Hd => b"HD",
            Code::En => b"EN",
            Code::Nf => b"NF",
            Code::Ns => b"NS",
            Code::Ex => b"EX",
        }
    }
}

/// What the executor found about an item, for the flags a reply returns. Only the fields
/// a command's reply can return matter: `ms` returns `c` and `s` (after a failure, with
/// the CAS 0 as memcached does), `ma` returns `c` and `t`, `mg` all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItemInfo {
    /// Whether `k` answers in base64 followed by a ` b` flag: for `mg`, whether the item
    /// was stored with `b`; for the other commands, whether the request used `b`.
    pub binary_key: bool,
    /// `f`
    pub client_flags: u32,
    /// `t`: seconds left to live, -1 when the item never expires.
    pub ttl: i64,
    /// `c`
    pub cas: u64,
    /// `s`: the value's length.
    pub size: usize,
    /// `h`: whether the item was fetched before this request.
    pub hit_before: bool,
    /// `l`: seconds since the item was last accessed, before this request.
    pub last_access: u64,
    /// `mg`'s recache markers, written after the returned flags.
    pub markers: Markers,
}

/// `mg`'s markers for the anti-dogpile protocol, written as ` Z`, ` X`, ` W` in that
/// order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Markers {
    /// `W`: this client won the right to recache the item.
    pub won: bool,
    /// `X`: the item is stale (invalidated by `md I`).
    pub stale: bool,
    /// `Z`: a win was already handed out for this item.
    pub token_sent: bool,
}

/// Appends a reply line: the code, the returned flags in request order, and `\r\n`.
/// With no `item` (a miss, or any `md` reply) only `O` and `k` are written, the key as
/// the request gave it; with one, every returned flag and then `mg`'s markers.
pub fn write_reply(out: &mut Vec<u8>, code: Code, args: &MetaArgs<'_>, item: Option<&ItemInfo>) {
    out.extend_from_slice(code.word());
    if let Code::Va(len) = code {
        out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    }
    for &flag in args.returns.as_slice() {
        write_flag(out, flag, args, item);
    }
    if let Some(item) = item {
        write_markers(out, item.markers);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `VA <len> <flags>*\r\n<data>\r\n`, a hit with its value.
pub fn write_value(out: &mut Vec<u8>, args: &MetaArgs<'_>, item: &ItemInfo, data: &[u8]) {
    write_reply(out, Code::Va(data.len()), args, Some(item));
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends `MN\r\n`, the answer to `mn` that closes a quiet pipeline.
pub fn write_noop(out: &mut Vec<u8>) {
    Status::MetaNoop.write(out);
}

fn write_flag(out: &mut Vec<u8>, flag: ReturnFlag, args: &MetaArgs<'_>, item: Option<&ItemInfo>) {
    match (flag, item) {
        (ReturnFlag::Opaque, _) => {
            out.extend_from_slice(b" O");
            out.extend_from_slice(args.opaque.unwrap_or_default());
        }
        (ReturnFlag::Key, _) => {
            let binary = item.map_or(args.key.is_binary(), |item| item.binary_key);
            write_key(out, &args.key, binary);
        }
        (_, Some(item)) => write_item_flag(out, flag, item),
        (_, None) => {}
    }
}

fn write_item_flag(out: &mut Vec<u8>, flag: ReturnFlag, item: &ItemInfo) {
    let mut num = itoa::Buffer::new();
    let text = match flag {
        ReturnFlag::Size => num.format(item.size),
        ReturnFlag::Ttl => num.format(item.ttl),
        ReturnFlag::Cas => num.format(item.cas),
        ReturnFlag::ClientFlags => num.format(item.client_flags),
        ReturnFlag::LastAccess => num.format(item.last_access),
        ReturnFlag::HitBefore => num.format(u8::from(item.hit_before)),
        ReturnFlag::Opaque | ReturnFlag::Key => return,
    };
    out.push(b' ');
    out.push(flag.letter());
    out.extend_from_slice(text.as_bytes());
}

/// ` k<key>`, or ` k<base64> b` for a binary key, as memcached marks it.
fn write_key(out: &mut Vec<u8>, key: &MetaKey<'_>, binary: bool) {
    out.extend_from_slice(b" k");
    push_key(out, key, binary);
    if binary {
        out.extend_from_slice(b" b");
    }
}

/// The key's bytes, or their base64: memcached re-encodes what it decoded, so a key sent
/// with stray low bits (`Zm9=`) comes back canonical (`Zm8=`).
fn push_key(out: &mut Vec<u8>, key: &MetaKey<'_>, binary: bool) {
    let mut room = KeyRoom::new();
    let bytes = key.bytes(&mut room);
    if binary {
        push_base64(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
}

fn write_markers(out: &mut Vec<u8>, markers: Markers) {
    let marks = [
        (markers.token_sent, b" Z"),
        (markers.stale, b" X"),
        (markers.won, b" W"),
    ];
    for (set, mark) in marks {
        if set {
            out.extend_from_slice(mark);
        }
    }
}

/// Encodes straight into the output buffer, so a binary key costs no allocation.
pub(super) fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = KEY_BASE64
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

/// What `me` shows of an item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DebugInfo {
    /// Whether the item was stored with a base64 key, which `me` then shows in base64.
    pub binary_key: bool,
    /// `exp`: -1 when the item never expires, else seconds left. (memcached 1.6.18
    /// printed the negation, `exp=-100` for 100 seconds left; later versions fixed it.)
    pub exp: i64,
    /// `la`: seconds since the last access.
    pub last_access: u64,
    /// `cas`
    pub cas: u64,
    /// `fetch`: whether the item was fetched since it was stored.
    pub fetched: bool,
    /// `cls`: the slab class.
    pub class: u32,
    /// `size`: the item's whole size, header included.
    pub size: usize,
}

/// Appends `me`'s answer: `ME <key> exp=.. la=.. cas=.. fetch=yes|no cls=.. size=..`, or
/// `EN` when there is no item.
pub fn write_debug(out: &mut Vec<u8>, key: &MetaKey<'_>, info: Option<&DebugInfo>) {
    let Some(info) = info else {
        out.extend_from_slice(b"EN\r\n");
        return;
    };
    out.extend_from_slice(b"ME ");
    push_key(out, key, info.binary_key);
    push_field(out, b" exp=", info.exp);
    push_field(out, b" la=", info.last_access);
    push_field(out, b" cas=", info.cas);
    out.extend_from_slice(if info.fetched {
        b" fetch=yes"
    } else {
        b" fetch=no"
    });
    push_field(out, b" cls=", info.class);
    push_field(out, b" size=", info.size);
    out.extend_from_slice(b"\r\n");
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: impl itoa::Integer) {
    out.extend_from_slice(name);
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}
