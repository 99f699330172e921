//! Encoders for text-protocol replies: status lines, `VALUE` headers, numbers and
//! `STAT` lines, appended to an output buffer without intermediate allocation.

use std::fmt::Display;
use std::io::Write;

/// A reply line that carries no data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// A storage command stored the item.
    Stored,
    /// A storage command's precondition failed.
    NotStored,
    /// `cas` found a newer item.
    Exists,
    /// No such item.
    NotFound,
    /// `delete` removed the item.
    Deleted,
    /// `touch` updated the item.
    Touched,
    /// A command with nothing else to say succeeded.
    Ok,
    /// `stats reset` is done.
    Reset,
    /// The end of a get's or a stats group's lines.
    End,
    /// `mn`.
    MetaNoop,
}

impl Status {
    /// The line, `\r\n` included.
    pub const fn line(self) -> &'static [u8] {
        match self {
            Status::Stored => b"STORED\r\n",
            Status::NotStored => b"NOT_STORED\r\n",
            Status::Exists => b"EXISTS\r\n",
            Status::NotFound => b"NOT_FOUND\r\n",
            Status::Deleted => b"DELETED\r\n",
            Status::Touched => b"TOUCHED\r\n",
            Status::Ok => b"OK\r\n",
            Status::Reset => b"RESET\r\n",
            Status::End => b"END\r\n",
            Status::MetaNoop => b"MN\r\n",
        }
    }

    /// Appends the line.
    pub fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.line());
    }
}

/// Appends `VALUE <key> <flags> <bytes>[ <cas>]\r\n`, the header of one get hit.
pub fn value_header(out: &mut Vec<u8>, key: &[u8], flags: u32, len: usize, cas: Option<u64>) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    out.extend_from_slice(num.format(flags).as_bytes());
    out.push(b' ');
    out.extend_from_slice(num.format(len).as_bytes());
    if let Some(cas) = cas {
        out.push(b' ');
        out.extend_from_slice(num.format(cas).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a number on its own line (the reply to `incr` and `decr`).
pub fn number(out: &mut Vec<u8>, value: u64) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(num.format(value).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `VERSION <version>\r\n`.
pub fn version(out: &mut Vec<u8>, version: &str) {
    out.extend_from_slice(b"VERSION ");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `STAT <name> <value>\r\n`.
pub fn stat(out: &mut Vec<u8>, name: &str, value: impl Display) {
    write!(out, "STAT {name} {value}\r\n").expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_headers() {
        let mut out = Vec::new();
        value_header(&mut out, b"k", 5, 3, None);
        value_header(&mut out, b"k", 0, 0, Some(42));
        assert_eq!(out, b"VALUE k 5 3\r\nVALUE k 0 0 42\r\n");
    }

    #[test]
    fn numbers_and_stats() {
        let mut out = Vec::new();
        number(&mut out, u64::MAX);
        stat(&mut out, "pid", 7);
        version(&mut out, "1.2.3");
        Status::End.write(&mut out);
        assert_eq!(
            out,
            b"18446744073709551615\r\nSTAT pid 7\r\nVERSION 1.2.3\r\nEND\r\n"
        );
    }
}
