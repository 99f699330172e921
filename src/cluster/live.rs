//! Asks running nodes how many items they hold, so that `plan --live` can show the
//! real spread beside the predicted one.
//!
//! A blocking client with timeouts is enough: the planning tool runs once, outside the
//! server, and asks each node one question.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::node::Node;

/// The `curr_items` a memcached-compatible node reports in `stats`.
///
/// # Errors
///
/// Connection, timeout and read errors, and [`io::ErrorKind::InvalidData`] when the
/// reply ends without a `curr_items` line.
pub fn curr_items(node: &Node, timeout: Duration) -> io::Result<u64> {
    let stream = connect(node, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    (&stream).write_all(b"stats\r\n")?;
    read_curr_items(BufReader::new(stream))
}

/// Tries each address the host resolves to, as a client would.
fn connect(node: &Node, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host resolves to no address");
    for addr in (node.host.as_str(), node.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// Reads `STAT name value` lines up to `END`, keeping `curr_items`.
fn read_curr_items(reader: impl BufRead) -> io::Result<u64> {
    let mut items = None;
    for line in reader.lines() {
        let line = line?;
        let line = line.trim_end();
        if line == "END" {
            break;
        }
        if let Some(value) = line.strip_prefix("STAT curr_items ") {
            items = value.parse().ok();
        }
    }
    items.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no curr_items in stats"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_curr_items_from_a_stats_reply() {
        let reply = b"STAT pid 1\r\nSTAT curr_items 42\r\nSTAT total_items 50\r\nEND\r\n";
        assert_eq!(read_curr_items(&reply[..]).unwrap(), 42);
        let err = read_curr_items(&b"STAT pid 1\r\nEND\r\n"[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
