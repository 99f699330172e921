//! Regression tests, each named after the fault it pins.

mod common;

use common::{Conn, Server};

/// A multi-get line longer than the read-ahead (256 KiB) used to stall: the worker
/// stopped reading before the newline arrived and waited forever.
#[test]
fn multiget_line_longer_than_read_ahead_is_served() {
    let server = Server::start(&["-t", "2"]);
    let mut c = Conn::connect(server.addr());
    assert_eq!(c.request(b"set k7 0 0 1\r\nx\r\n"), b"STORED\r\n");
    let keys: Vec<String> = (0..50_000).map(|i| format!("key-{i:08}")).collect();
    let line = format!("get {} k7\r\n", keys.join(" "));
    assert!(line.len() > 512 * 1024);
    assert_eq!(c.request(line.as_bytes()), b"VALUE k7 0 1\r\nx\r\nEND\r\n");
}
