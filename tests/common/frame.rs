//! Where one memcached text-protocol reply ends, decided from the bytes
//! alone, so that tests never rely on a pause to know a reply is complete.
//!
//! The rules follow what memcached sends: `VALUE` blocks and `STAT`, `ITEM`
//! and `PREFIX` lines run until `END`, a meta `VA` line is followed by its
//! data, and every other reply is one line. It does not validate a reply;
//! a malformed one is framed as well as it can be and compared as bytes.

/// Lines that open a reply running until an `END` line.
const BLOCK_OPENERS: [&[u8]; 4] = [b"VALUE", b"STAT", b"ITEM", b"PREFIX"];

/// Lines that end a block early: memcached can fail part-way through one.
const BLOCK_BREAKERS: [&[u8]; 3] = [b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR"];

/// The length of the first complete reply in `buf`, or `None` while more
/// bytes are needed.
///
/// # Examples
///
/// ```ignore
/// assert_eq!(reply_len(b"STORED\r\nEND\r\n"), Some(8));
/// assert_eq!(reply_len(b"VALUE k 0 1\r\nx\r\n"), None);
/// ```
pub fn reply_len(buf: &[u8]) -> Option<usize> {
    let end = line_end(buf, 0)?;
    let first = first_token(&buf[..end]);
    if BLOCK_OPENERS.contains(&first) {
        return block_len(buf);
    }
    if first == b"VA" {
        return with_data(buf, end, token(&buf[..end], 1));
    }
    Some(end)
}

/// The length of a block of lines that ends with `END`, counting the data
/// that follows each `VALUE` line.
fn block_len(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let end = line_end(buf, pos)?;
        let line = &buf[pos..end];
        if trim_eol(line) == b"END" || BLOCK_BREAKERS.contains(&first_token(line)) {
            return Some(end);
        }
        pos = match first_token(line) {
            b"VALUE" => with_data(buf, end, token(line, 3))?,
            _ => end,
        };
    }
}

/// The end of a data block of `len` bytes plus `\r\n` that starts at `pos`.
fn with_data(buf: &[u8], pos: usize, len: Option<&[u8]>) -> Option<usize> {
    let len = len.and_then(parse_usize).unwrap_or(0);
    let end = pos + len + 2;
    (end <= buf.len()).then_some(end)
}

/// The index just past the `\n` of the line that starts at `pos`.
fn line_end(buf: &[u8], pos: usize) -> Option<usize> {
    let offset = buf.get(pos..)?.iter().position(|&b| b == b'\n')?;
    Some(pos + offset + 1)
}

/// The protocol lines of a reply, without the data blocks between them.
pub fn header_lines(reply: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut pos = 0;
    while let Some(end) = line_end(reply, pos) {
        let line = &reply[pos..end];
        lines.push(line);
        pos = data_len(line).map_or(end, |n| end + n + 2);
    }
    lines
}

/// The length of the data block that follows a `VALUE` or `VA` line.
pub fn data_len(line: &[u8]) -> Option<usize> {
    let index = match token(line, 0)? {
        b"VALUE" => 3,
        b"VA" => 1,
        _ => return None,
    };
    parse_usize(token(line, index)?)
}

/// A line without its `\r\n` or `\n`.
pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn first_token(line: &[u8]) -> &[u8] {
    token(line, 0).unwrap_or(b"")
}

/// The `n`th space-separated token of a line, without its line ending.
pub fn token(line: &[u8], n: usize) -> Option<&[u8]> {
    trim_eol(line)
        .split(|&b| b == b' ')
        .filter(|t| !t.is_empty())
        .nth(n)
}

fn parse_usize(digits: &[u8]) -> Option<usize> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}
