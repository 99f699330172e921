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

/// A client that sends requests and closes its side at once used to get nothing: the
/// worker saw the end of the stream in the same read and closed before parsing.
#[test]
fn requests_sent_just_before_the_client_closes_are_answered() {
    use std::io::{Read, Write};
    let server = Server::start(&["-t", "1"]);
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream.write_all(b"set k 0 0 1\r\nx\r\nget k\r\n").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n");
    let mut c = Conn::connect(server.addr());
    assert_eq!(c.request(b"get k\r\n"), b"VALUE k 0 1\r\nx\r\nEND\r\n");
}

/// `flush_all` used to run at once on the worker that read it, before earlier requests
/// of the same connection that other workers were still running.
#[test]
fn flush_all_does_not_overtake_earlier_requests_on_other_workers() {
    let server = Server::start(&["-t", "4"]);
    let mut c = Conn::connect(server.addr());
    for i in 0..40 {
        let pipeline = format!("set k{i} 0 0 1\r\nx\r\nflush_all\r\nget k{i}\r\n");
        assert_eq!(
            c.request_n(pipeline.as_bytes(), 3),
            b"STORED\r\nOK\r\nEND\r\n",
            "key k{i}"
        );
    }
    for i in 0..40 {
        let pipeline = format!("set fa{i} 0 0 1\r\nx\r\nflush_all\r\nadd fa{i} 0 0 1\r\ny\r\n");
        assert_eq!(
            c.request_n(pipeline.as_bytes(), 3),
            b"STORED\r\nOK\r\nSTORED\r\n"
        );
    }
}

/// Resident memory of the server in MiB.
fn rss_mib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

/// Round trips on fresh connections, which land on every worker in turn: once each
/// worker has answered a few, whatever it was going to do with earlier requests it has
/// done, without waiting a fixed time.
fn settle(server: &Server) {
    for _ in 0..8 {
        let mut probe = Conn::connect(server.addr());
        for _ in 0..4 {
            assert_eq!(probe.request(b"mn\r\n"), b"MN\r\n");
        }
    }
}

/// A multi-get of many large values from a client that does not read used to copy every
/// value into the connection's output at once: one small request could exhaust memory.
#[test]
fn a_multiget_of_large_values_for_a_slow_reader_stays_bounded() {
    let server = Server::start(&["-t", "2", "-m", "64"]);
    let mut c = Conn::connect(server.addr());
    let value = vec![b'v'; 1_000_000];
    for i in 0..8 {
        let mut set = format!("set big{i} 0 0 {}\r\n", value.len()).into_bytes();
        set.extend_from_slice(&value);
        set.extend_from_slice(b"\r\n");
        assert_eq!(c.request(&set), b"STORED\r\n");
    }
    let before = rss_mib(&server);
    let keys: Vec<String> = (0..400).map(|i| format!("big{}", i % 8)).collect();
    c.send(format!("get {}\r\n", keys.join(" ")).as_bytes());
    settle(&server);
    let grown = rss_mib(&server).saturating_sub(before);
    assert!(
        grown < 64,
        "RSS grew by {grown} MiB for an unread multi-get"
    );
    let mut received = 0;
    for _ in 0..400 {
        let block =
            c.read_exact_reply(format!("VALUE big0 0 {}\r\n", value.len()).len() + value.len() + 2);
        assert!(block.starts_with(b"VALUE big"));
        received += 1;
    }
    assert_eq!(received, 400);
    assert_eq!(c.read_exact_reply(5), b"END\r\n");
}

/// A client that declares a large value and sends little used to get a read buffer of
/// the declared size at once.
#[test]
fn a_declared_length_does_not_allocate_before_the_bytes_arrive() {
    let server = Server::start(&["-t", "2", "-m", "256", "-I", "32m"]);
    let before = rss_mib(&server);
    let mut conns = Vec::new();
    for i in 0..100 {
        let mut c = Conn::connect(server.addr());
        c.send(format!("set k{i} 0 0 30000000\r\n").as_bytes());
        c.send(&[b'x'; 1000]);
        conns.push(c);
    }
    settle(&server);
    let grown = rss_mib(&server).saturating_sub(before);
    assert!(
        grown < 64,
        "RSS grew by {grown} MiB for 100 half-sent values"
    );
}

/// `idle_timeout` used to close a connection in the middle of sending a value.
#[test]
fn idle_timeout_does_not_close_a_client_mid_value() {
    let server = Server::start(&["-t", "1", "-o", "idle_timeout=1"]);
    let mut c = Conn::connect(server.addr());
    c.send(b"set slow 0 0 4\r\n");
    for byte in [b"a", b"b", b"c"] {
        c.expect_silence(700);
        c.send(byte);
    }
    assert_eq!(c.request(b"d\r\n"), b"STORED\r\n");
}

/// Each shard used to count CAS values from 1, so with several workers two keys could
/// carry the same CAS; memcached's CAS values are unique across the server.
#[test]
fn cas_values_are_unique_across_workers() {
    let server = Server::start(&["-t", "3"]);
    let mut c = Conn::connect(server.addr());
    let mut seen = std::collections::HashSet::new();
    for i in 0..60 {
        let reply = c.request(format!("ms key{i} 1 c\r\nx\r\n").as_bytes());
        let text = String::from_utf8(reply).unwrap();
        let Some(cas) = text.trim_end().strip_prefix("HD c") else {
            panic!("unexpected reply {text:?}");
        };
        let cas = cas.to_string();
        assert!(seen.insert(cas.clone()), "CAS {cas} handed out twice");
    }
}

/// A get of a key in another worker's shard is read directly from that shard, which
/// could overtake the same connection's set of the key still on its way there.
#[test]
fn a_get_right_after_a_set_on_another_worker_sees_the_set() {
    let server = Server::start(&["-t", "4"]);
    let mut c = Conn::connect(server.addr());
    for i in 0..300 {
        let pipeline = format!("set rw{i} 0 0 2\r\nv{}\r\nget rw{i}\r\n", i % 10);
        let want = format!("STORED\r\nVALUE rw{i} 0 2\r\nv{}\r\nEND\r\n", i % 10);
        assert_eq!(
            c.request_n(pipeline.as_bytes(), 2),
            want.as_bytes(),
            "key rw{i}"
        );
    }
}
