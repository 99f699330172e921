//! Faults and limits seen from outside: a stop on SIGTERM that still writes the replies
//! to requests already read, `read_buf_mem_limit` closing the connection that would pass
//! it and no other, clients that vanish mid-reply or mid-forward, `-R` yielding, and the
//! default listening address announced at `-v`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Conn, Server};

const BIN: &str = env!("CARGO_BIN_EXE_corecache");

fn sigterm(server: &Server) {
    // SAFETY: kill with a valid signal number on our own child's pid.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) }, 0);
}

#[test]
fn sigterm_still_writes_the_replies_to_requests_already_read() {
    let mut server = Server::start(&["-t", "2", "-m", "64"]);
    let mut client = Conn::connect(server.addr());
    let value = vec![b'v'; 400 * 1024];
    for i in 0..4 {
        let mut set = format!("set key{i} 0 0 {}\r\n", value.len()).into_bytes();
        set.extend_from_slice(&value);
        set.extend_from_slice(b"\r\n");
        assert_eq!(client.request(&set), b"STORED\r\n");
    }
    // 100 gets of 400 KiB: 40 MB of replies, far past the 1 MiB at which the server
    // stops running requests until the client reads. Keys of both workers.
    let gets: String = (0..100).map(|i| format!("get key{}\r\n", i % 4)).collect();
    let mut watcher = Conn::connect(server.addr());
    let before = watcher.stat("bytes_read");
    client.send(gets.as_bytes());
    // Every `stats` the watcher sends is 7 bytes read too.
    let polls = std::cell::Cell::new(0u64);
    watcher.wait_for_stat("bytes_read", |read| {
        polls.set(polls.get() + 1);
        read >= before + gets.len() as u64 + 7 * polls.get()
    });
    sigterm(&server);
    for i in 0..100 {
        let reply = client.read_reply();
        let head = format!("VALUE key{} 0 {}\r\n", i % 4, value.len());
        assert!(reply.starts_with(head.as_bytes()), "reply {i}");
        assert_eq!(reply.len(), head.len() + value.len() + 7, "reply {i}");
    }
    client.expect_closed();
    let status = server.wait_for_exit().expect("the server should stop");
    assert!(status.success(), "{status:?}");
}

#[test]
fn read_buf_mem_limit_closes_the_connection_that_would_pass_it() {
    let server = Server::start(&["-t", "2", "-o", "read_buf_mem_limit=2"]);
    let mut keeper = Conn::connect(server.addr());
    assert_eq!(keeper.request(b"set kept 0 0 4\r\nsafe\r\n"), b"STORED\r\n");
    // 700 KB of a 900 KB value grows a read buffer to 1 MiB; two such buffers and the
    // keeper's 16 KiB do not fit in 2 MiB.
    let head = b"set big 0 0 900000\r\n";
    let (part, rest) = (vec![b'x'; 700_000], vec![b'x'; 200_000]);
    let mut first = Conn::connect(server.addr());
    first.send(head);
    first.send(&part);
    keeper.wait_for_stat("read_buf_bytes", |bytes| bytes >= 1 << 20);
    let mut second = Conn::connect(server.addr());
    second.send(head);
    let _ = second.try_send(&part);
    assert_eq!(
        second.read_reply(),
        b"SERVER_ERROR out of memory reading request\r\n"
    );
    second.expect_closed();
    assert_eq!(keeper.stat("read_buf_oom"), 1);
    first.send(&rest);
    assert_eq!(first.request(b"\r\n"), b"STORED\r\n");
    assert_eq!(
        keeper.request(b"get kept\r\n"),
        b"VALUE kept 0 4\r\nsafe\r\nEND\r\n"
    );
    assert!(keeper.stat("read_buf_bytes") <= 2 << 20);
}

#[test]
fn listens_on_localhost_by_default_and_says_so_at_v() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut child = Command::new(BIN)
        .args(["-p", &port.to_string(), "-v"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start corecache");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines
        .find_map(|line| line.ok().filter(|l| l.contains("listening")))
        .expect("a listening line");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
}

/// A pipeline that leaves work in flight everywhere when its client vanishes: a
/// multi-get of 4 MB that is never read (its output pauses mid-reply), stores of 50 KB
/// values for every worker's keys (forwarded to their owners), and `mg` with `T` (which
/// changes the item, so it is forwarded too).
fn abandoned_pipeline(round: usize, values: usize) -> Vec<u8> {
    let keys: Vec<String> = (0..values).map(|i| format!("big{i}")).collect();
    let mut bytes = format!("get {}\r\n", keys.join(" ")).into_bytes();
    for i in 0..16 {
        let head = format!("set gone{round}:{i} 0 0 50000 noreply\r\n");
        bytes.extend_from_slice(head.as_bytes());
        bytes.extend_from_slice(&[b'g'; 50_000]);
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(format!("mg big{i} T100 v\r\n").as_bytes());
    }
    bytes
}

#[test]
fn clients_that_vanish_mid_reply_or_mid_forward_leave_nothing_behind() {
    let server = Server::start(&["-t", "4", "-m", "64"]);
    let mut admin = Conn::connect(server.addr());
    let values = 40;
    let value = |i: usize| vec![b'a' + (i % 26) as u8; 100 * 1024];
    for i in 0..values {
        let mut set = format!("set big{i} 0 0 {}\r\n", 100 * 1024).into_bytes();
        set.extend_from_slice(&value(i));
        set.extend_from_slice(b"\r\n");
        assert_eq!(admin.request(&set), b"STORED\r\n");
    }
    let (connections, buffers) = (admin.stat("curr_connections"), admin.stat("read_buf_bytes"));
    let rss_before = server.rss_kib();
    for round in 0..60 {
        let mut c = Conn::connect(server.addr());
        let _ = c.try_send(&abandoned_pipeline(round, values));
    }
    admin.wait_for_stat("curr_connections", |n| n == connections);
    admin.wait_for_stat("read_buf_bytes", |n| n == buffers);
    for i in 0..values {
        let reply = admin.request(format!("get big{i}\r\n").as_bytes());
        let head = format!("VALUE big{i} 0 {}\r\n", 100 * 1024);
        let want = [head.as_bytes(), &value(i), b"\r\nEND\r\n"].concat();
        assert!(reply == want, "big{i} changed");
    }
    // 60 vanished clients, each with over 4 MB of replies and 800 KB of stores in
    // flight: a leak of either would show many times over.
    let grown = server.rss_kib().saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
}

#[test]
fn a_long_pipeline_yields_to_other_clients_at_r() {
    let server = Server::start(&["-t", "1", "-R", "4"]);
    let mut long = Conn::connect(server.addr());
    let mut other = Conn::connect(server.addr());
    long.send(&b"mn\r\n".repeat(2000));
    assert_eq!(other.request(b"mn\r\n"), b"MN\r\n");
    assert_eq!(long.read_exact_reply(4 * 2000), b"MN\r\n".repeat(2000));
    assert!(
        other.stat("conn_yields") >= 1,
        "a pipeline of 2000 past -R 4 yields"
    );
}
