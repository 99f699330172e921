//! Replies pinned byte for byte against memcached 1.6.18 (`memcached -p PORT -U 0 -t 1`
//! on a fresh server, requests sent over a socket with opaque `0xdeadbeef`). Each
//! header is written field by field: magic, opcode, key length, extras length, data
//! type, status, body length, opaque, CAS; then the body.

use super::super::*;

const OPAQUE: u32 = 0xdead_beef;

/// Bytes from hex digits, ignoring the spaces that separate fields.
fn hex(digits: &str) -> Vec<u8> {
    let digits: Vec<u8> = digits
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(pair, 16).expect("hex digits")
        })
        .collect()
}

fn encoded(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out);
    out
}

#[test]
fn get_miss_is_not_found_with_text() {
    let expected = [
        hex("81 00 0000 00 00 0001 00000009 deadbeef 0000000000000000"),
        b"Not found".to_vec(),
    ]
    .concat();
    let got = encoded(|out| get_miss(out, Opcode::Get, OPAQUE, b"nokey"));
    assert_eq!(got, expected);
}

#[test]
fn getk_miss_echoes_the_key_without_text() {
    let expected = [
        hex("81 0c 0005 00 00 0001 00000005 deadbeef 0000000000000000"),
        b"nokey".to_vec(),
    ]
    .concat();
    let got = encoded(|out| get_miss(out, Opcode::GetK, OPAQUE, b"nokey"));
    assert_eq!(got, expected);
}

#[test]
fn set_success_carries_the_new_cas() {
    let expected = hex("81 01 0000 00 00 0000 00000000 deadbeef 0000000000000001");
    let got = encoded(|out| success(out, Opcode::Set, OPAQUE, 1));
    assert_eq!(got, expected);
}

#[test]
fn get_hit_has_flags_then_value() {
    let expected = [
        hex("81 00 0000 04 00 0000 00000007 deadbeef 0000000000000001 0000cafe"),
        b"bar".to_vec(),
    ]
    .concat();
    let got = encoded(|out| get_hit(out, Opcode::Get, OPAQUE, 1, 0xcafe, b"foo", [&b"bar"[..]]));
    assert_eq!(got, expected);
    let chunks = [&b"b"[..], &b""[..], &b"ar"[..]];
    let got = encoded(|out| get_hit(out, Opcode::Get, OPAQUE, 1, 0xcafe, b"foo", chunks));
    assert_eq!(got, expected);
}

#[test]
fn getk_and_gatk_hits_echo_the_key() {
    for (opcode, code) in [(Opcode::GetK, "0c"), (Opcode::GatK, "23")] {
        let expected = [
            hex(&format!(
                "81 {code} 0003 04 00 0000 0000000a deadbeef 0000000000000001 0000cafe"
            )),
            b"foobar".to_vec(),
        ]
        .concat();
        let got = encoded(|out| get_hit(out, opcode, OPAQUE, 1, 0xcafe, b"foo", [&b"bar"[..]]));
        assert_eq!(got, expected, "{opcode:?}");
    }
}

#[test]
fn gat_hit_is_a_get_hit_under_its_own_opcode() {
    let expected = [
        hex("81 1d 0000 04 00 0000 00000007 deadbeef 0000000000000001 0000cafe"),
        b"bar".to_vec(),
    ]
    .concat();
    let got = encoded(|out| get_hit(out, Opcode::Gat, OPAQUE, 1, 0xcafe, b"foo", [&b"bar"[..]]));
    assert_eq!(got, expected);
}

#[test]
fn getkq_hit_in_a_quiet_pipeline() {
    let expected = [
        hex("81 0d 0001 04 00 0000 00000007 deadbeef 0000000000000002 00000001"),
        b"axy".to_vec(),
    ]
    .concat();
    let got = encoded(|out| get_hit(out, Opcode::GetKQ, OPAQUE, 2, 1, b"a", [&b"xy"[..]]));
    assert_eq!(got, expected);
}

#[test]
fn get_hit_of_an_empty_value() {
    let expected = hex("81 00 0000 04 00 0000 00000004 deadbeef 0000000000000003 00000000");
    let no_parts: [&[u8]; 0] = [];
    let got = encoded(|out| get_hit(out, Opcode::Get, OPAQUE, 3, 0, b"e", no_parts));
    assert_eq!(got, expected);
}

#[test]
fn touch_hit_has_flags_and_no_value() {
    let expected = hex("81 1c 0000 04 00 0000 00000004 deadbeef 0000000000000001 0000cafe");
    assert_eq!(encoded(|out| touch(out, OPAQUE, 1, 0xcafe)), expected);
    let got = encoded(|out| get_hit(out, Opcode::Touch, OPAQUE, 1, 0xcafe, b"foo", [&b"bar"[..]]));
    assert_eq!(got, expected);
}

#[test]
fn touch_miss_is_not_found() {
    let expected = [
        hex("81 1c 0000 00 00 0001 00000009 deadbeef 0000000000000000"),
        b"Not found".to_vec(),
    ]
    .concat();
    assert_eq!(
        encoded(|out| get_miss(out, Opcode::Touch, OPAQUE, b"nokey")),
        expected
    );
}

#[test]
fn error_texts_as_memcached_sends_them() {
    let cases = [
        (
            Opcode::Add,
            Status::KeyExists,
            "81 02 0000 00 00 0002 00000014",
        ),
        (
            Opcode::Append,
            Status::NotStored,
            "81 0e 0000 00 00 0005 0000000b",
        ),
        (
            Opcode::DeleteQ,
            Status::KeyNotFound,
            "81 14 0000 00 00 0001 00000009",
        ),
        (
            Opcode::Increment,
            Status::NonNumeric,
            "81 05 0000 00 00 0006 0000002e",
        ),
        (
            Opcode::Increment,
            Status::KeyNotFound,
            "81 05 0000 00 00 0001 00000009",
        ),
        (
            Opcode::Unknown(0x40),
            Status::UnknownCommand,
            "81 40 0000 00 00 0081 0000000f",
        ),
        (
            Opcode::SaslListMechs,
            Status::UnknownCommand,
            "81 20 0000 00 00 0081 0000000f",
        ),
        (
            Opcode::Get,
            Status::InvalidArguments,
            "81 00 0000 00 00 0004 00000011",
        ),
        (
            Opcode::Flush,
            Status::InvalidArguments,
            "81 08 0000 00 00 0004 00000011",
        ),
        (
            Opcode::Stat,
            Status::KeyNotFound,
            "81 10 0000 00 00 0001 00000009",
        ),
    ];
    for (opcode, status, head) in cases {
        let expected = [
            hex(&format!("{head} deadbeef 0000000000000000")),
            status.text().as_bytes().to_vec(),
        ]
        .concat();
        assert_eq!(
            encoded(|out| error(out, opcode, status, OPAQUE)),
            expected,
            "{status:?}"
        );
    }
}

#[test]
fn refusals_answer_as_memcached_does_before_closing() {
    let short_body = hex("80 00 0006 00 00 0000 00000003 deadbeef 0000000000000000");
    let Parse::Invalid {
        error: refused,
        opaque,
        opcode,
        ..
    } = parse(&short_body)
    else {
        panic!("a refusal");
    };
    let status = refused.status().expect("a reply");
    let expected = [
        hex("81 00 0000 00 00 0081 0000000f deadbeef 0000000000000000"),
        b"Unknown command".to_vec(),
    ]
    .concat();
    assert_eq!(encoded(|out| error(out, opcode, status, opaque)), expected);
}

#[test]
fn incr_returns_the_value_as_eight_bytes() {
    let expected = hex("81 05 0000 00 00 0000 00000008 deadbeef 0000000000000002 0000000000000029");
    assert_eq!(
        encoded(|out| arith(out, Opcode::Increment, OPAQUE, 2, 41)),
        expected
    );
}

#[test]
fn version_noop_flush_quit() {
    let version_reply = [
        hex("81 0b 0000 00 00 0000 00000006 deadbeef 0000000000000000"),
        b"1.6.18".to_vec(),
    ]
    .concat();
    assert_eq!(encoded(|out| version(out, OPAQUE, "1.6.18")), version_reply);
    let empty = |code: &str| {
        hex(&format!(
            "81 {code} 0000 00 00 0000 00000000 deadbeef 0000000000000000"
        ))
    };
    assert_eq!(encoded(|out| noop(out, OPAQUE)), empty("0a"));
    assert_eq!(encoded(|out| flush(out, OPAQUE)), empty("08"));
    assert_eq!(encoded(|out| quit(out, OPAQUE)), empty("07"));
    assert_eq!(encoded(|out| stat_end(out, OPAQUE)), empty("10"));
}

#[test]
fn stat_packet_has_name_as_key_and_value_as_text() {
    let expected = [
        hex("81 10 0008 00 00 0000 00000010 deadbeef 0000000000000000"),
        b"maxbytes67108864".to_vec(),
    ]
    .concat();
    assert_eq!(
        encoded(|out| stat(out, OPAQUE, "maxbytes", 67_108_864)),
        expected
    );
    let mut out = vec![0xaa];
    stat(&mut out, OPAQUE, "maxbytes", "67108864");
    assert_eq!(&out[1..], expected.as_slice());
}
