//! Exact-bytes tests of the text protocol where corecache deliberately differs from
//! memcached 1.6.18, or where the answer depends on corecache's own item layout and
//! threading: data blocks of refused commands are always consumed (as memcached HEAD
//! does), its own `version`, the largest value that fits, and replies in request order
//! when the keys live on other workers' shards.

mod common;

use common::{Conn, Server};

fn server(args: &[&str]) -> (Server, Conn) {
    let server = Server::start(args);
    let conn = Conn::connect(server.addr());
    (server, conn)
}

fn k251() -> String {
    "k".repeat(251)
}

#[test]
fn refused_storage_commands_consume_their_data_block() {
    let (_server, mut c) = server(&["-t", "1"]);
    let cases: Vec<(Vec<u8>, &[u8])> = vec![
        (
            format!("set {} 0 0 1\r\nx\r\n", k251()).into_bytes(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"set fl 18446744073709551616 0 1\r\nx\r\n".to_vec(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"set fl -1 0 1\r\nx\r\n".to_vec(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"set fl 0 abc 1\r\nx\r\n".to_vec(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"set fl 0 0 1 noreply extra\r\nx\r\n".to_vec(),
            b"ERROR\r\n",
        ),
        (b"cas foo 0 0 1\r\nx\r\n".to_vec(), b"ERROR\r\n"),
    ];
    for (request, reply) in cases {
        let mut pipeline = request.clone();
        pipeline.extend_from_slice(b"mn\r\n");
        let mut want = reply.to_vec();
        want.extend_from_slice(b"MN\r\n");
        assert_eq!(
            c.request_n(&pipeline, 2),
            want,
            "{}",
            common::show(&request)
        );
    }
}

#[test]
fn noreply_hides_errors_and_the_data_block_is_still_consumed() {
    let (_server, mut c) = server(&["-t", "1"]);
    let requests = [
        format!("set {} 0 0 1 noreply\r\nx\r\n", k251()),
        "set k abc 0 1 noreply\r\nx\r\n".to_string(),
        "cas n 0 0 1 abc noreply\r\nx\r\n".to_string(),
        "set nr 0 0 2000000 noreply\r\n".to_string() + &"a".repeat(2_000_000) + "\r\n",
    ];
    for request in requests {
        c.send(request.as_bytes());
        assert_eq!(c.request(b"mn\r\n"), b"MN\r\n");
    }
}

#[test]
fn bad_data_chunk_keeps_the_old_value_and_the_stream_in_sync() {
    let (_server, mut c) = server(&["-t", "1"]);
    assert_eq!(c.request(b"set foo 0 0 3\r\nbar\r\n"), b"STORED\r\n");
    assert_eq!(
        c.request_n(b"set foo 0 0 3\r\nbarx\r\n", 2),
        b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"
    );
    assert_eq!(
        c.request(b"get foo\r\n"),
        b"VALUE foo 0 3\r\nbar\r\nEND\r\n"
    );
}

#[test]
fn a_too_large_set_removes_the_old_value_after_the_body_is_read() {
    let (_server, mut c) = server(&["-t", "1"]);
    assert_eq!(c.request(b"set big 0 0 1\r\nx\r\n"), b"STORED\r\n");
    let mut request = b"set big 0 0 2097152\r\n".to_vec();
    request.extend(std::iter::repeat(b'a').take(2_097_152));
    request.extend_from_slice(b"\r\n");
    let half = request.len() / 2;
    c.send(&request[..half]);
    c.expect_silence(200);
    assert_eq!(
        c.request(&request[half..]),
        b"SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(c.request(b"get big\r\n"), b"END\r\n");
}

#[test]
fn a_too_large_add_keeps_the_old_value() {
    let (_server, mut c) = server(&["-t", "1"]);
    assert_eq!(c.request(b"set big 0 0 1\r\nx\r\n"), b"STORED\r\n");
    let mut request = b"append big 0 0 2000000\r\n".to_vec();
    request.extend(std::iter::repeat(b'a').take(2_000_000));
    request.extend_from_slice(b"\r\n");
    assert_eq!(
        c.request(&request),
        b"SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(c.request(b"get big\r\n"), b"VALUE big 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn the_largest_value_that_fits_is_memcacheds() {
    let (_server, mut c) = server(&["-t", "1"]);
    let fits = (1 << 20) - corecache::storage::item_size(3, 0);
    for (len, reply) in [
        (fits, &b"STORED\r\n"[..]),
        (fits + 1, b"SERVER_ERROR object too large for cache\r\n"),
    ] {
        let mut request = format!("set big 0 0 {len}\r\n").into_bytes();
        request.extend(std::iter::repeat(b'v').take(len));
        request.extend_from_slice(b"\r\n");
        assert_eq!(c.request(&request), reply, "value of {len} bytes");
    }
}

#[test]
fn version_names_corecache() {
    let (_server, mut c) = server(&["-t", "1"]);
    let reply = c.request(b"version\r\n");
    assert_eq!(
        reply,
        format!("VERSION {}\r\n", corecache::VERSION).into_bytes()
    );
    assert!(reply.starts_with(b"VERSION 1.6."));
}

#[test]
fn replies_keep_request_order_across_workers() {
    let (_server, mut c) = server(&["-t", "4"]);
    let mut sets = Vec::new();
    for i in 0..200 {
        sets.extend_from_slice(
            format!("set key{i} {i} 0 {}\r\nvalue{i}\r\n", 5 + digits(i)).as_bytes(),
        );
    }
    assert_eq!(c.request_n(&sets, 200), b"STORED\r\n".repeat(200));
    let keys: Vec<String> = (0..200).map(|i| format!("key{i}")).collect();
    let mut want = Vec::new();
    for i in 0..200 {
        want.extend_from_slice(
            format!("VALUE key{i} {i} {}\r\nvalue{i}\r\n", 5 + digits(i)).as_bytes(),
        );
    }
    want.extend_from_slice(b"END\r\n");
    let request = format!("get {} nokey\r\n", keys.join(" "));
    assert_eq!(c.request(request.as_bytes()), want);
}

#[test]
fn a_pipeline_of_mixed_commands_answers_in_order() {
    let (_server, mut c) = server(&["-t", "4"]);
    let mut pipeline = Vec::new();
    let mut want = Vec::new();
    for i in 0..100 {
        pipeline.extend_from_slice(format!("set n{i} 0 0 1\r\n{}\r\n", i % 10).as_bytes());
        pipeline.extend_from_slice(format!("incr n{i} 5\r\n").as_bytes());
        pipeline.extend_from_slice(b"version\r\n");
        pipeline.extend_from_slice(format!("delete n{i}\r\ndelete n{i}\r\n").as_bytes());
        want.extend_from_slice(format!("STORED\r\n{}\r\n", i % 10 + 5).as_bytes());
        want.extend_from_slice(format!("VERSION {}\r\n", corecache::VERSION).as_bytes());
        want.extend_from_slice(b"DELETED\r\nNOT_FOUND\r\n");
    }
    assert_eq!(c.request_n(&pipeline, 500), want);
}

#[test]
fn quit_after_remote_requests_still_answers_them_first() {
    let (_server, mut c) = server(&["-t", "4"]);
    let mut pipeline = Vec::new();
    for i in 0..50 {
        pipeline.extend_from_slice(format!("set q{i} 0 0 1\r\nx\r\n").as_bytes());
    }
    pipeline.extend_from_slice(b"quit\r\nget q1\r\n");
    assert_eq!(c.request_n(&pipeline, 50), b"STORED\r\n".repeat(50));
    c.expect_closed();
}

#[test]
fn shutdown_with_enable_shutdown_stops_the_server() {
    let (mut server, mut c) = server(&["-t", "2", "-A"]);
    c.send(b"shutdown\r\n");
    c.expect_closed();
    let status = server.wait_for_exit().expect("the server should exit");
    assert!(status.success(), "{status:?}");
}

fn digits(i: usize) -> usize {
    i.to_string().len()
}

#[test]
fn cachedump_lists_keys_from_every_worker() {
    let (_server, mut c) = server(&["-t", "3"]);
    for i in 0..30 {
        let set = format!("set dump{i} 0 0 3\r\nabc\r\n");
        assert_eq!(c.request(set.as_bytes()), b"STORED\r\n");
    }
    let reply = String::from_utf8(c.request(b"stats cachedump 1 0\r\n")).unwrap();
    let mut keys: Vec<&str> = reply
        .lines()
        .filter_map(|l| l.strip_prefix("ITEM "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    keys.sort_unstable();
    let mut want: Vec<String> = (0..30).map(|i| format!("dump{i}")).collect();
    want.sort_unstable();
    assert_eq!(keys, want);
    assert!(reply.contains("ITEM dump0 [3 b; 0 s]\r\n"), "{reply}");
    assert!(reply.ends_with("END\r\n"));
    assert_eq!(
        c.request(b"stats cachedump\r\n"),
        b"CLIENT_ERROR bad command line\r\n"
    );
}
