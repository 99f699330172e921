//! Masks the parts of a reply that legitimately differ between two correct
//! servers, so that everything else can be compared byte for byte.
//!
//! Masked: a CAS unique in a `VALUE` line (kept as zero or non-zero),
//! numeric `STAT` values (and the order of `STAT` lines), and the numbers in
//! meta `t` (TTL) and `c` (CAS) return flags, except a TTL of `-1`. Data
//! blocks are never touched.

use super::frame::{data_len, token, trim_eol};

/// A reply with the server-specific numbers masked.
pub fn normalise(reply: &[u8]) -> Vec<u8> {
    let mut lines = Vec::new();
    let mut pos = 0;
    while pos < reply.len() {
        let end = line_end(reply, pos);
        let line = &reply[pos..end];
        let data = data_len(line).map_or(end, |n| (end + n + 2).min(reply.len()));
        let mut out = normalise_line(line);
        out.extend_from_slice(&reply[end..data]);
        lines.push(out);
        pos = data;
    }
    sort_stats(&mut lines);
    lines.concat()
}

fn normalise_line(line: &[u8]) -> Vec<u8> {
    let ending = &line[trim_eol(line).len()..];
    let body = match token(line, 0) {
        Some(b"VALUE") => mask_value_cas(trim_eol(line)),
        Some(b"STAT") => mask_stat(trim_eol(line)),
        Some(b"VA" | b"HD") => mask_meta(trim_eol(line)),
        _ => trim_eol(line).to_vec(),
    };
    [body.as_slice(), ending].concat()
}

/// `VALUE k f n cas` with the cas shown as `0` or `<cas>`.
fn mask_value_cas(line: &[u8]) -> Vec<u8> {
    let tokens: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    if tokens.len() != 5 {
        return line.to_vec();
    }
    let cas: &[u8] = if tokens[4] == b"0" { b"0" } else { b"<cas>" };
    [&tokens[..4].join(&b' ')[..], b" ", cas].concat()
}

/// `STAT name value` with a numeric value shown as `<n>`.
fn mask_stat(line: &[u8]) -> Vec<u8> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (stat, name, value) = (parts.next(), parts.next(), parts.next());
    match (stat, name, value) {
        (Some(stat), Some(name), Some(value)) if is_number(value) => {
            [stat, b" ", name, b" <n>"].concat()
        }
        _ => line.to_vec(),
    }
}

/// Meta return flags with `t<N>` (N not -1) and `c<N>` masked.
fn mask_meta(line: &[u8]) -> Vec<u8> {
    let masked: Vec<Vec<u8>> = line
        .split(|&b| b == b' ')
        .map(|flag| match flag.split_first() {
            Some((b't', n)) if is_number(n) && n != b"-1" => b"t<ttl>".to_vec(),
            Some((b'c', n)) if is_number(n) => b"c<cas>".to_vec(),
            _ => flag.to_vec(),
        })
        .collect();
    masked.join(&b' ')
}

fn is_number(text: &[u8]) -> bool {
    !text.is_empty()
        && text.iter().any(u8::is_ascii_digit)
        && text.iter().all(|b| b.is_ascii_digit() || b"-.".contains(b))
}

/// Orders the `STAT` lines of a stats reply by name; `END` stays last.
fn sort_stats(lines: &mut [Vec<u8>]) {
    let stats = lines.iter().take_while(|l| l.starts_with(b"STAT ")).count();
    lines[..stats].sort();
}

fn line_end(buf: &[u8], pos: usize) -> usize {
    buf[pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(buf.len(), |i| pos + i + 1)
}
