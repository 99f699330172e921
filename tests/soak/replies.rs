//! Reading replies apart: status lines, `VALUE` blocks and meta `VA` blocks.

use super::*;

/// The `\r\n`-terminated line at the start of `bytes`, and what follows it.
pub(crate) fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.windows(2).position(|w| w == b"\r\n")?;
    Some((&bytes[..at], &bytes[at + 2..]))
}

pub(crate) fn number(token: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(token)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("not a number: {}", show(token)))
}

/// The only line of `reply`, which must be one of `allowed`.
pub(crate) fn status(reply: &[u8], allowed: &[&'static [u8]]) -> Result<&'static [u8], Fault> {
    allowed
        .iter()
        .find(|&&word| reply.strip_suffix(b"\r\n") == Some(word))
        .copied()
        .ok_or_else(|| Fault::Framing(format!("got {}, want one of {allowed:?}", show(reply))))
}

/// One item of a get or meta get reply.
pub(crate) struct Item<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) flags: u32,
    pub(crate) cas: Option<u64>,
    pub(crate) data: &'a [u8],
}

/// The items of a `get`/`gets` reply: `VALUE` blocks, then `END` and nothing more.
pub(crate) fn parse_values(reply: &[u8]) -> Result<Vec<Item<'_>>, String> {
    let mut items = Vec::new();
    let mut rest = reply;
    loop {
        let (line, after) = split_line(rest).ok_or("a get reply without END")?;
        if line == b"END" {
            return match after.is_empty() {
                true => Ok(items),
                false => Err(format!("bytes after END: {}", show(after))),
            };
        }
        let tokens: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        if !(4..=5).contains(&tokens.len()) || tokens[0] != b"VALUE" {
            return Err(format!("not a VALUE line: {}", show(line)));
        }
        let cas = tokens.get(4).map(|t| number(t)).transpose()?;
        let (data, after) = data_block(after, number(tokens[3])?)?;
        let flags = u32::try_from(number(tokens[2])?).map_err(|e| e.to_string())?;
        let key = tokens[1];
        items.push(Item {
            key,
            flags,
            cas,
            data,
        });
        rest = after;
    }
}

/// A data block of `len` bytes and its `\r\n` at the start of `bytes`, and what follows.
pub(crate) fn data_block(bytes: &[u8], len: u64) -> Result<(&[u8], &[u8]), String> {
    let len = usize::try_from(len).map_err(|e| e.to_string())?;
    match bytes.get(len..len + 2) {
        Some(b"\r\n") => Ok((&bytes[..len], &bytes[len + 2..])),
        _ => Err(format!("data block of {len} not ended by \\r\\n")),
    }
}

/// The item of an `mg <key> v f k c` hit: `VA <len> f<flags> k<key> c<cas>`.
pub(crate) fn parse_meta_value(reply: &[u8]) -> Result<Item<'_>, String> {
    let (line, after) = split_line(reply).ok_or("a VA line without its end")?;
    let tokens: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let [b"VA", len, flags, key, cas] = tokens[..] else {
        return Err(format!("not a VA line: {}", show(line)));
    };
    let flags = number(meta_flag(flags, b'f')?)?;
    Ok(Item {
        key: meta_flag(key, b'k')?,
        flags: u32::try_from(flags).map_err(|e| e.to_string())?,
        cas: Some(number(meta_flag(cas, b'c')?)?),
        data: data_block(after, number(len)?)?.0,
    })
}

/// The value of a returned meta flag `token`, which must be `letter`.
pub(crate) fn meta_flag(token: &[u8], letter: u8) -> Result<&[u8], String> {
    match token.split_first() {
        Some((&first, rest)) if first == letter => Ok(rest),
        _ => Err(format!(
            "{} where flag {} was due",
            show(token),
            letter as char
        )),
    }
}
