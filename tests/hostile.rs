//! Random and malformed byte streams sent to the real server: whatever arrives, the
//! server stays up, other clients keep getting answers, and stored data is intact.

mod common;

use common::{Conn, Server};
use proptest::prelude::*;
use std::io::Write;

/// Pieces that make random streams look like memcached traffic often enough to reach
/// deep into the parser and the executor.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"get ".to_vec()),
        Just(b"gets ".to_vec()),
        Just(b"gat 1 ".to_vec()),
        Just(b"set ".to_vec()),
        Just(b"add ".to_vec()),
        Just(b"append ".to_vec()),
        Just(b"cas ".to_vec()),
        Just(b"incr ".to_vec()),
        Just(b"decr ".to_vec()),
        Just(b"delete ".to_vec()),
        Just(b"touch ".to_vec()),
        Just(b"stats ".to_vec()),
        Just(b"flush_all 0 ".to_vec()),
        Just(b"noreply".to_vec()),
        Just(b"mn".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b"0 ".to_vec()),
        Just(b"3 ".to_vec()),
        Just(b"-1 ".to_vec()),
        Just(b"99999999 ".to_vec()),
        Just(b"18446744073709551615 ".to_vec()),
        "[a-z]{1,4}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(fragment(), 1..60).prop_map(|parts| parts.concat())
}

/// Keys the hostile streams cannot touch: they contain a byte the fragments never emit.
fn guarded(i: usize) -> String {
    format!("guard~{i}")
}

#[test]
fn random_streams_do_not_hurt_the_server_or_other_data() {
    let server = Server::start(&["-t", "2", "-m", "16", "-F"]);
    let guard = std::cell::RefCell::new(Conn::connect(server.addr()));
    for i in 0..20 {
        let set = format!("set {} {i} 0 5\r\nguard\r\n", guarded(i));
        assert_eq!(guard.borrow_mut().request(set.as_bytes()), b"STORED\r\n");
    }
    let config = ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    };
    proptest!(config, |(input in stream())| {
        let mut hostile = std::net::TcpStream::connect(server.addr()).unwrap();
        // The server may close the connection while we write: that is allowed.
        if hostile.write_all(&input).is_ok() {
            let _shutdown = hostile.shutdown(std::net::Shutdown::Write);
        }
        drop(hostile);
        prop_assert_eq!(guard.borrow_mut().request(b"mn\r\n"), b"MN\r\n".to_vec());
    });
    let keys: Vec<String> = (0..20).map(guarded).collect();
    let reply = guard
        .borrow_mut()
        .request(format!("get {}\r\n", keys.join(" ")).as_bytes());
    let mut want = Vec::new();
    for i in 0..20 {
        want.extend_from_slice(format!("VALUE {} {i} 5\r\nguard\r\n", guarded(i)).as_bytes());
    }
    want.extend_from_slice(b"END\r\n");
    assert_eq!(common::show(&reply), common::show(&want));
}

#[test]
fn a_client_that_vanishes_mid_value_leaves_no_trace() {
    let server = Server::start(&["-t", "2"]);
    for _ in 0..20 {
        let mut c = Conn::connect(server.addr());
        c.send(b"set half 0 0 100000\r\nabc");
    }
    let mut c = Conn::connect(server.addr());
    assert_eq!(c.request(b"get half\r\n"), b"END\r\n");
    let stats = String::from_utf8(c.request(b"stats\r\n")).unwrap();
    assert!(stats.contains("STAT curr_items 0\r\n"), "{stats}");
}
