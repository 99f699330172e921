//! The request notation of the script format: escapes for the bytes a text
//! file cannot hold, and `{...}` expansions for long or generated input and
//! for values known only while the script runs (the time, a CAS unique).
//!
//! Parsing happens once; [`Template::render`] fills in the run-time values.
//! The notation is documented at the top of `tests/differential.rs`.

use std::time::{SystemTime, UNIX_EPOCH};

/// A parsed request: fixed bytes with run-time holes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Bytes(Vec<u8>),
    /// The Unix time now, plus an offset in seconds.
    Now(i64),
    /// The last CAS unique the run has seen, plus an offset.
    Cas(i64),
}

impl Template {
    /// Parses `text`, decoding escapes and expanding repetitions.
    ///
    /// # Errors
    ///
    /// A description of the first malformed escape or expansion.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut rest = text;
        while let Some(open) = find_unescaped(rest, '{') {
            literal.extend(unescape(&rest[..open])?);
            let close = find_unescaped(&rest[open..], '}')
                .ok_or_else(|| format!("unclosed '{{' in {text:?}"))?;
            match expansion(&rest[open + 1..open + close])? {
                Piece::Bytes(bytes) => literal.extend(bytes),
                hole => {
                    pieces.push(Piece::Bytes(std::mem::take(&mut literal)));
                    pieces.push(hole);
                }
            }
            rest = &rest[open + close + 1..];
        }
        literal.extend(unescape(rest)?);
        pieces.push(Piece::Bytes(literal));
        Ok(Template(pieces))
    }

    /// The bytes to send, with the time taken now and `cas` as the last
    /// CAS unique seen (0 if none yet).
    pub fn render(&self, cas: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in &self.0 {
            match piece {
                Piece::Bytes(bytes) => out.extend_from_slice(bytes),
                Piece::Now(offset) => out.extend(offset_from(unix_now(), *offset)),
                Piece::Cas(offset) => out.extend(offset_from(cas as i64, *offset)),
            }
        }
        out
    }
}

/// One `{...}`: `now±N`, `cas±N`, `TEXT*N` or `TEXT#A..B`.
fn expansion(inner: &str) -> Result<Piece, String> {
    if let Some(offset) = run_time_offset(inner, "now") {
        return Ok(Piece::Now(parse_offset(offset)?));
    }
    if let Some(offset) = run_time_offset(inner, "cas") {
        return Ok(Piece::Cas(parse_offset(offset)?));
    }
    if let Some(star) = inner.rfind('*') {
        let count = parse_number(&inner[star + 1..])?;
        return Ok(Piece::Bytes(unescape(&inner[..star])?.repeat(count)));
    }
    if let Some(hash) = inner.rfind('#') {
        return numbered(&inner[..hash], &inner[hash + 1..]);
    }
    Err(format!("unknown expansion {{{inner}}}"))
}

/// The `±N` after `name` if `inner` is `name`, `name+N` or `name-N`.
fn run_time_offset<'a>(inner: &'a str, name: &str) -> Option<&'a str> {
    let offset = inner.strip_prefix(name)?;
    (offset.is_empty() || offset.starts_with(['+', '-'])).then_some(offset)
}

/// `TEXT#A..B`: TEXT once for each number from A to B, with `%` replaced
/// by the number.
fn numbered(text: &str, range: &str) -> Result<Piece, String> {
    let (from, to) = range
        .split_once("..")
        .ok_or_else(|| format!("expected A..B, got {range:?}"))?;
    let mut out = Vec::new();
    for i in parse_number(from)?..=parse_number(to)? {
        out.extend(unescape(&text.replace('%', &i.to_string()))?);
    }
    Ok(Piece::Bytes(out))
}

/// Decodes `\r \n \t \0 \s \\ \{ \} \xNN`; every other byte stands for itself.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match bytes.next() {
            Some(b'r') => b'\r',
            Some(b'n') => b'\n',
            Some(b't') => b'\t',
            Some(b'0') => 0,
            Some(b's') => b' ',
            Some(c @ (b'\\' | b'{' | b'}')) => c,
            Some(b'x') => hex_byte(bytes.next(), bytes.next())?,
            other => {
                return Err(format!(
                    "bad escape \\{:?} in {text:?}",
                    other.map(char::from)
                ))
            }
        });
    }
    Ok(out)
}

fn hex_byte(hi: Option<u8>, lo: Option<u8>) -> Result<u8, String> {
    let digits = [hi.unwrap_or(b'?'), lo.unwrap_or(b'?')];
    let text = std::str::from_utf8(&digits).map_err(|e| e.to_string())?;
    u8::from_str_radix(text, 16).map_err(|_| format!("bad \\x escape {text:?}"))
}

/// The byte index of the first `c` in `text` not preceded by a backslash.
fn find_unescaped(text: &str, c: char) -> Option<usize> {
    let mut escaped = false;
    for (i, ch) in text.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            _ if ch == c => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_offset(text: &str) -> Result<i64, String> {
    match text {
        "" => Ok(0),
        _ => text
            .strip_prefix('+')
            .unwrap_or(text)
            .parse()
            .map_err(|_| format!("bad offset {text:?}")),
    }
}

fn parse_number(text: &str) -> Result<usize, String> {
    text.parse().map_err(|_| format!("bad count {text:?}"))
}

fn offset_from(base: i64, offset: i64) -> Vec<u8> {
    (base + offset).to_string().into_bytes()
}

fn unix_now() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.map(|d| d.as_secs() as i64).unwrap_or(0)
}
