//! Reads the replies the load generator expects and refuses anything else.
//!
//! Each parser looks at the start of the bytes received so far and answers: a complete
//! reply of N bytes, more bytes needed (`Ok(None)`), or an error. An error reply from the
//! server (`ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`) and a line the request cannot have
//! caused are both errors: a benchmark that miscounts its replies measures nothing.
//! Framing lines are counted only once their reply is complete, so a reply parsed again
//! after more bytes arrive is not counted twice.

use std::fmt;

use serde::Serialize;

/// Counts of the framing lines seen, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Framing {
    /// `VALUE` lines (text hits).
    pub value: u64,
    /// `END` lines (one per text get).
    pub end: u64,
    /// `VA` lines (meta hits).
    pub va: u64,
    /// `EN` lines (meta misses).
    pub en: u64,
    /// `HD` lines (meta stores, and hits of a size probe).
    pub hd: u64,
    /// `STORED` lines.
    pub stored: u64,
}

impl Framing {
    /// Adds another tally's counts.
    pub fn add(&mut self, other: &Framing) {
        self.value += other.value;
        self.end += other.end;
        self.va += other.va;
        self.en += other.en;
        self.hd += other.hd;
        self.stored += other.stored;
    }
}

/// A reply the load generator cannot accept.
#[derive(Debug)]
pub enum ReplyError {
    /// The server answered with an error line.
    Server(String),
    /// A line that does not belong where it came.
    Framing { expected: &'static str, got: String },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Server(line) => write!(f, "server replied {line:?}"),
            ReplyError::Framing { expected, got } => {
                write!(f, "framing lost: expected {expected}, got {got:?}")
            }
        }
    }
}

/// The reply to one meta get: its length and whether the key was there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaReply {
    pub len: usize,
    pub hit: bool,
}

/// The reply to `mg <key> s`: its length and the value length when the key was there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeReply {
    pub len: usize,
    pub size: Option<usize>,
}

/// Parses `VALUE <key> <flags> <bytes>` blocks up to `END`, the reply to one text `get`.
/// The number of each key found, which is `prefix` followed by a decimal number, is put
/// in `hits`, in reply order. Returns the reply's length.
///
/// # Errors
/// An error line, a line other than `VALUE` or `END`, a key without the prefix, or a
/// data block not followed by `\r\n`.
pub fn parse_values(
    buf: &[u8],
    prefix: &[u8],
    hits: &mut Vec<u64>,
    framing: &mut Framing,
) -> Result<Option<usize>, ReplyError> {
    hits.clear();
    let mut pos = 0;
    loop {
        let Some((line, line_len)) = line(&buf[pos..]) else {
            return Ok(None);
        };
        if line == b"END" {
            framing.end += 1;
            framing.value += hits.len() as u64;
            return Ok(Some(pos + line_len));
        }
        let (id, data_len) = value_line(line, prefix)?;
        let Some(block) = data_block(&buf[pos + line_len..], data_len)? else {
            return Ok(None);
        };
        hits.push(id);
        pos += line_len + block;
    }
}

/// Parses the reply to `mg <key> v`: `VA <len> ...` with its data, or `EN`.
///
/// # Errors
/// An error line or any other line.
pub fn parse_meta_value(
    buf: &[u8],
    framing: &mut Framing,
) -> Result<Option<MetaReply>, ReplyError> {
    let Some((line, line_len)) = line(buf) else {
        return Ok(None);
    };
    if line == b"EN" {
        framing.en += 1;
        return Ok(Some(MetaReply {
            len: line_len,
            hit: false,
        }));
    }
    let Some(rest) = line.strip_prefix(b"VA ") else {
        return Err(unexpected("VA or EN", line));
    };
    let data_len = number(rest.split(|&b| b == b' ').next().unwrap_or(b""))
        .ok_or_else(|| unexpected("VA <length>", line))?;
    let Some(block) = data_block(&buf[line_len..], data_len)? else {
        return Ok(None);
    };
    framing.va += 1;
    Ok(Some(MetaReply {
        len: line_len + block,
        hit: true,
    }))
}

/// Parses the reply to `mg <key> s`: `HD s<len>` or `EN`.
///
/// # Errors
/// An error line or any other line.
pub fn parse_size(buf: &[u8], framing: &mut Framing) -> Result<Option<SizeReply>, ReplyError> {
    let Some((line, len)) = line(buf) else {
        return Ok(None);
    };
    if line == b"EN" {
        framing.en += 1;
        return Ok(Some(SizeReply { len, size: None }));
    }
    let size = line
        .strip_prefix(b"HD s")
        .and_then(number)
        .ok_or_else(|| unexpected("HD s<size> or EN", line))?;
    framing.hd += 1;
    Ok(Some(SizeReply {
        len,
        size: Some(size),
    }))
}

/// The reply to a store: `STORED` for `set`, `HD` for `ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreReply {
    Stored,
    Hd,
}

/// Parses one store reply of the kind given.
///
/// # Errors
/// An error line or any other line.
pub fn parse_store(
    buf: &[u8],
    want: StoreReply,
    framing: &mut Framing,
) -> Result<Option<usize>, ReplyError> {
    let Some((line, len)) = line(buf) else {
        return Ok(None);
    };
    match (want, line) {
        (StoreReply::Stored, b"STORED") => framing.stored += 1,
        (StoreReply::Hd, b"HD") => framing.hd += 1,
        (StoreReply::Stored, _) => return Err(unexpected("STORED", line)),
        (StoreReply::Hd, _) => return Err(unexpected("HD", line)),
    }
    Ok(Some(len))
}

/// The first line of `buf` without its `\r\n`, and its length with it.
fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = memchr::memmem::find(buf, b"\r\n")?;
    Some((&buf[..end], end + 2))
}

/// The key number and data length of a `VALUE` line.
fn value_line(line: &[u8], prefix: &[u8]) -> Result<(u64, usize), ReplyError> {
    let mut fields = line.split(|&b| b == b' ');
    if fields.next() != Some(b"VALUE") {
        return Err(unexpected("VALUE or END", line));
    }
    let id = fields
        .next()
        .and_then(|key| key.strip_prefix(prefix))
        .and_then(number)
        .ok_or_else(|| unexpected("a key the load generator asked for", line))?;
    let len = fields
        .nth(1)
        .and_then(number)
        .ok_or_else(|| unexpected("VALUE <key> <flags> <bytes>", line))?;
    Ok((id as u64, len))
}

/// The length of a data block of `len` bytes and its `\r\n`, once all of it is there.
fn data_block(buf: &[u8], len: usize) -> Result<Option<usize>, ReplyError> {
    if buf.len() < len + 2 {
        return Ok(None);
    }
    if &buf[len..len + 2] != b"\r\n" {
        let got = String::from_utf8_lossy(&buf[len..len + 2]).into_owned();
        return Err(ReplyError::Framing {
            expected: "\\r\\n after the data block",
            got,
        });
    }
    Ok(Some(len + 2))
}

fn number(digits: &[u8]) -> Option<usize> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The error for `line`: the server's own error, or a line out of place.
fn unexpected(expected: &'static str, line: &[u8]) -> ReplyError {
    let got = String::from_utf8_lossy(line).into_owned();
    let is_error = ["ERROR", "CLIENT_ERROR", "SERVER_ERROR"]
        .iter()
        .any(|word| got == *word || got.starts_with(&format!("{word} ")));
    if is_error {
        ReplyError::Server(got)
    } else {
        ReplyError::Framing { expected, got }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every proper prefix of a reply asks for more bytes; the whole reply parses.
    fn at_every_split<T: PartialEq + fmt::Debug>(
        reply: &[u8],
        mut parse: impl FnMut(&[u8]) -> Result<Option<T>, ReplyError>,
    ) -> T {
        for cut in 0..reply.len() {
            assert!(parse(&reply[..cut]).unwrap().is_none(), "complete at {cut}");
        }
        parse(reply).unwrap().unwrap()
    }

    #[test]
    fn values_up_to_end_in_pieces() {
        let reply = b"VALUE k:3 0 2\r\nab\r\nVALUE k:10 5 1 99\r\nc\r\nEND\r\n";
        let mut hits = Vec::new();
        let mut framing = Framing::default();
        let len = at_every_split(reply, |b| parse_values(b, b"k:", &mut hits, &mut framing));
        assert_eq!((len, hits), (reply.len(), vec![3, 10]));
        assert_eq!((framing.value, framing.end), (2, 1));
    }

    #[test]
    fn meta_hits_misses_and_stores() {
        let mut framing = Framing::default();
        let hit = at_every_split(b"VA 2 f1\r\nab\r\n", |b| parse_meta_value(b, &mut framing));
        assert_eq!(hit, MetaReply { len: 13, hit: true });
        let miss = parse_meta_value(b"EN\r\nVA", &mut framing)
            .unwrap()
            .unwrap();
        assert_eq!(miss, MetaReply { len: 4, hit: false });
        assert_eq!(
            parse_store(b"HD\r\n", StoreReply::Hd, &mut framing).unwrap(),
            Some(4)
        );
        let size = parse_size(b"HD s140\r\n", &mut framing).unwrap().unwrap();
        assert_eq!(size.size, Some(140));
        assert_eq!((framing.va, framing.en, framing.hd), (1, 1, 2));
    }

    #[test]
    fn error_replies_and_stray_lines_are_refused() {
        let mut framing = Framing::default();
        let err = parse_store(
            b"SERVER_ERROR out of memory\r\n",
            StoreReply::Stored,
            &mut framing,
        );
        assert!(matches!(err, Err(ReplyError::Server(_))));
        let err = parse_meta_value(b"ERROR\r\n", &mut framing);
        assert!(matches!(err, Err(ReplyError::Server(_))));
        let err = parse_values(b"STORED\r\n", b"k:", &mut Vec::new(), &mut framing);
        assert!(matches!(err, Err(ReplyError::Framing { .. })));
        let err = parse_values(
            b"VALUE k:1 0 2\r\nabc\r\n",
            b"k:",
            &mut Vec::new(),
            &mut framing,
        );
        assert!(matches!(err, Err(ReplyError::Framing { .. })));
    }
}
