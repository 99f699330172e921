//! Parser tables: every opcode's header round trip, every acceptance rule of memcached
//! 1.6.18's `dispatch_bin_command`, every packet fed whole and split at every byte
//! offset, and properties over random bytes. Reply encoders are pinned against bytes
//! captured from a real memcached in `tests/fixtures.rs`.

use super::*;

mod fixtures;

/// A request packet built by hand (not with [`Header::write`]), so the parser is checked
/// against an independent encoding.
fn packet(opcode: u8, extras: &[u8], key: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
    let body = extras.len() + key.len() + value.len();
    let mut out = vec![REQUEST_MAGIC, opcode];
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    [out, extras.to_vec(), key.to_vec(), value.to_vec()].concat()
}

/// A header whose length fields say what the test wants, whatever body follows.
fn raw_header(opcode: u8, key_len: u16, extras_len: u8, body_len: u32) -> Vec<u8> {
    let header = Header {
        magic: REQUEST_MAGIC,
        opcode: Opcode::from_u8(opcode),
        key_len,
        extras_len,
        data_type: 0,
        vbucket_or_status: 0,
        body_len,
        opaque: 0x0102_0304,
        cas: 0,
    };
    let mut out = Vec::new();
    header.write(&mut out);
    out
}

fn one(input: &[u8]) -> Packet<'_> {
    match parse(input) {
        Parse::Request(packet) => packet,
        other => panic!("expected a packet from {input:?}, got {other:?}"),
    }
}

fn refusal(input: &[u8]) -> ProtocolError {
    match parse(input) {
        Parse::Invalid { error, len, .. } => {
            assert_eq!(len, HEADER_LEN);
            error
        }
        other => panic!("expected a refusal of {input:?}, got {other:?}"),
    }
}

/// Runs a byte stream through the parser as a connection would and returns each result
/// rendered with `Debug`; a refusal ends the stream, as the connection closes.
fn run(stream: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        match parse(&stream[pos..]) {
            Parse::Request(packet) => {
                out.push(format!("{packet:?}"));
                pos += packet.len;
            }
            Parse::Incomplete { .. } => break,
            invalid @ Parse::Invalid { .. } => {
                out.push(format!("{invalid:?}"));
                break;
            }
        }
    }
    out
}

/// Feeds `stream` in two reads split at every offset and checks that the same results
/// come out as when it arrives whole, and that `need` is always beyond what is there.
fn assert_split_invariant(stream: &[u8]) {
    let whole = run(stream);
    for split in 0..=stream.len() {
        let mut buf = stream[..split].to_vec();
        let mut fed = split;
        let mut got = Vec::new();
        loop {
            match parse(&buf) {
                Parse::Request(packet) => {
                    got.push(format!("{packet:?}"));
                    let len = packet.len;
                    buf.drain(..len);
                }
                invalid @ Parse::Invalid { .. } => {
                    got.push(format!("{invalid:?}"));
                    break;
                }
                Parse::Incomplete { need } => {
                    assert!(need > buf.len(), "need {need} with {} buffered", buf.len());
                    if fed == stream.len() {
                        break;
                    }
                    buf.extend_from_slice(&stream[fed..]);
                    fed = stream.len();
                }
            }
        }
        assert_eq!(got, whole, "split at {split}");
    }
}

/// One well-formed request for every opcode memcached serves, and two unknown ones.
fn valid_packets() -> Vec<Vec<u8>> {
    let store = [0, 0, 0, 5, 0, 0, 0, 60];
    let arith = [[0; 7].as_slice(), &[1], &[0; 7], &[9], &[0, 0, 0, 0]].concat();
    let four = [0, 0, 1, 0];
    let mut all = Vec::new();
    for code in [0x00, 0x09, 0x0c, 0x0d] {
        all.push(packet(code, &[], b"key", &[], u32::from(code)));
    }
    for code in [0x01, 0x02, 0x03, 0x11, 0x12, 0x13] {
        all.push(packet(code, &store, b"key", b"value", u32::from(code)));
    }
    for code in [0x0e, 0x0f, 0x19, 0x1a] {
        all.push(packet(code, &[], b"key", b"tail", u32::from(code)));
    }
    for code in [0x04, 0x14] {
        all.push(packet(code, &[], b"key", &[], u32::from(code)));
    }
    for code in [0x05, 0x06, 0x15, 0x16] {
        all.push(packet(code, &arith, b"n", &[], u32::from(code)));
    }
    for code in [0x1c, 0x1d, 0x1e, 0x23, 0x24] {
        all.push(packet(code, &four, b"key", &[], u32::from(code)));
    }
    for code in [0x07, 0x08, 0x0a, 0x0b, 0x17, 0x18, 0x20, 0x10] {
        all.push(packet(code, &[], &[], &[], u32::from(code)));
    }
    all.push(packet(0x08, &four, &[], &[], 0x108));
    all.push(packet(0x18, &four, &[], &[], 0x118));
    all.push(packet(0x10, &[], b"settings", &[], 0x110));
    all.push(packet(0x21, &[], b"PLAIN", b"\0user\0pass", 0x21));
    all.push(packet(0x22, &[], b"PLAIN", &[], 0x22));
    all.push(packet(0x1b, &four, &[], &[], 0x1b));
    all.push(packet(0x40, b"ex", b"kk", b"value", 0x40));
    all.push(packet(0xff, &[], &[], &[], 0xff));
    all
}

#[test]
fn every_opcode_byte_round_trips() {
    let mut named = 0;
    for code in 0..=u8::MAX {
        let opcode = Opcode::from(code);
        assert_eq!(opcode.code(), code);
        if !matches!(opcode, Opcode::Unknown(_)) {
            named += 1;
        }
    }
    assert_eq!(named, 36);
    assert_eq!(Opcode::from_u8(0x1f), Opcode::Unknown(0x1f));
    assert_eq!(Opcode::from_u8(0x25), Opcode::Unknown(0x25));
    assert_eq!(Opcode::from_u8(0x30), Opcode::Unknown(0x30));
    assert_eq!(Opcode::from_u8(0x24), Opcode::GatKQ);
}

#[test]
fn quiet_opcodes_and_their_loud_forms() {
    let pairs = [
        (0x09, 0x00),
        (0x0d, 0x0c),
        (0x11, 0x01),
        (0x12, 0x02),
        (0x13, 0x03),
        (0x14, 0x04),
        (0x15, 0x05),
        (0x16, 0x06),
        (0x17, 0x07),
        (0x18, 0x08),
        (0x19, 0x0e),
        (0x1a, 0x0f),
        (0x1e, 0x1d),
        (0x24, 0x23),
    ];
    for (quiet, loud) in pairs {
        assert!(Opcode::from_u8(quiet).is_quiet(), "{quiet:#x}");
        assert_eq!(Opcode::from_u8(quiet).loud(), Opcode::from_u8(loud));
    }
    let quiet_count = (0..=u8::MAX)
        .filter(|&c| Opcode::from_u8(c).is_quiet())
        .count();
    assert_eq!(quiet_count, pairs.len());
    for code in 0..=u8::MAX {
        let opcode = Opcode::from_u8(code);
        assert!(!opcode.loud().is_quiet(), "{opcode:?}");
    }
}

#[test]
fn which_opcodes_return_and_carry_keys() {
    let returning: Vec<u8> = (0..=u8::MAX)
        .filter(|&c| Opcode::from_u8(c).returns_key())
        .collect();
    assert_eq!(returning, [0x0c, 0x0d, 0x23, 0x24]);
    let carrying: Vec<u8> = (0..=u8::MAX)
        .filter(|&c| Opcode::from_u8(c).carries_key())
        .collect();
    let expected = [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x09, 0x0c, 0x0d, 0x0e, 0x0f, 0x11, 0x12, 0x13,
        0x14, 0x15, 0x16, 0x19, 0x1a, 0x1c, 0x1d, 0x1e, 0x23, 0x24,
    ];
    assert_eq!(carrying, expected);
}

#[test]
fn header_round_trips_for_every_opcode() {
    for code in 0..=u8::MAX {
        let header = Header {
            magic: REQUEST_MAGIC,
            opcode: Opcode::from_u8(code),
            key_len: 0x1234,
            extras_len: 0x56,
            data_type: 0x78,
            vbucket_or_status: 0x9abc,
            body_len: 0xdead_beef,
            opaque: 0x0bad_f00d ^ u32::from(code),
            cas: 0x0102_0304_0506_0708,
        };
        let mut out = Vec::new();
        header.write(&mut out);
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(Header::decode(&out), Some(header));
        assert_eq!(Header::decode(&out[..HEADER_LEN - 1]), None);
    }
}

#[test]
fn header_fields_are_big_endian_in_place() {
    let bytes = [
        0x80, 0x01, 0x00, 0x03, 0x08, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x10, 0xde, 0xad, 0xbe,
        0xef, 0, 0, 0, 0, 0, 0, 0x01, 0x02,
    ];
    let header = Header::decode(&bytes).expect("24 bytes");
    assert_eq!(header.opcode, Opcode::Set);
    assert_eq!(header.key_len, 3);
    assert_eq!(header.extras_len, 8);
    assert_eq!(header.vbucket_or_status, 7);
    assert_eq!(header.body_len, 16);
    assert_eq!(header.opaque, 0xdead_beef);
    assert_eq!(header.cas, 0x0102);
    assert_eq!(header.packet_len(), 40);
}

#[test]
fn status_codes_and_texts() {
    let table = [
        (Status::NoError, 0x0000, ""),
        (Status::KeyNotFound, 0x0001, "Not found"),
        (Status::KeyExists, 0x0002, "Data exists for key."),
        (Status::TooLarge, 0x0003, "Too large."),
        (Status::InvalidArguments, 0x0004, "Invalid arguments"),
        (Status::NotStored, 0x0005, "Not stored."),
        (
            Status::NonNumeric,
            0x0006,
            "Non-numeric server-side value for incr or decr",
        ),
        (Status::AuthError, 0x0020, "Auth failure."),
        (Status::AuthContinue, 0x0021, ""),
        (Status::UnknownCommand, 0x0081, "Unknown command"),
        (Status::OutOfMemory, 0x0082, "Out of memory"),
    ];
    for (status, code, text) in table {
        assert_eq!(status.code(), code, "{status:?}");
        assert_eq!(status.text(), text, "{status:?}");
    }
}

#[test]
fn every_valid_packet_parses_with_its_fields() {
    for bytes in valid_packets() {
        let packet = one(&bytes);
        let header = Header::decode(&bytes).expect("a header");
        assert_eq!(packet.header, header);
        assert_eq!(packet.len, bytes.len());
        assert_eq!(packet.opcode().code(), bytes[1]);
        assert_eq!(packet.opaque(), header.opaque);
        let body = [packet.extras, packet.key, packet.value].concat();
        assert_eq!(body, &bytes[HEADER_LEN..]);
        assert_eq!(packet.extras.len(), usize::from(header.extras_len));
        assert_eq!(packet.key.len(), usize::from(header.key_len));
    }
}

#[test]
fn slices_borrow_the_buffer() {
    let bytes = packet(0x01, &[0; 8], b"key", b"value", 9);
    let packet = one(&bytes);
    let base = bytes.as_ptr() as usize;
    assert_eq!(packet.extras.as_ptr() as usize - base, 24);
    assert_eq!(packet.key.as_ptr() as usize - base, 32);
    assert_eq!(packet.value.as_ptr() as usize - base, 35);
}

#[test]
fn every_valid_packet_parses_the_same_split_anywhere() {
    let all = valid_packets();
    for bytes in &all {
        assert_split_invariant(bytes);
    }
    let stream = all.concat();
    assert_eq!(run(&stream).len(), all.len());
    assert_split_invariant(&stream);
}

#[test]
fn a_pipeline_ending_in_a_refusal_parses_the_same_split_anywhere() {
    let mut stream = packet(0x09, &[], b"a", &[], 1);
    stream.extend(packet(0x0a, &[], &[], &[], 2));
    stream.extend(packet(0x00, &[1, 2, 3, 4], b"a", &[], 3));
    stream.extend(packet(0x0a, &[], &[], &[], 4));
    let results = run(&stream);
    assert_eq!(results.len(), 3);
    assert!(results[2].contains("BadShape"), "{results:?}");
    assert_split_invariant(&stream);
}

#[test]
fn a_large_value_split_anywhere() {
    let value = vec![b'v'; 3000];
    let stream = packet(0x01, &[0; 8], b"big", &value, 5);
    assert_split_invariant(&stream);
    assert_eq!(one(&stream).value, value.as_slice());
}

#[test]
fn incomplete_needs_a_header_then_the_whole_packet() {
    let bytes = packet(0x01, &[0; 8], b"key", b"value", 1);
    for cut in 0..HEADER_LEN {
        assert_eq!(parse(&bytes[..cut]), Parse::Incomplete { need: HEADER_LEN });
    }
    for cut in HEADER_LEN..bytes.len() {
        assert_eq!(
            parse(&bytes[..cut]),
            Parse::Incomplete { need: bytes.len() }
        );
    }
    let huge = raw_header(0x01, 3, 8, u32::MAX);
    assert_eq!(
        parse(&huge),
        Parse::Incomplete {
            need: 24 + u32::MAX as usize
        }
    );
}

#[test]
fn bytes_after_the_packet_are_left_for_the_next() {
    let mut stream = packet(0x0a, &[], &[], &[], 1);
    stream.extend_from_slice(&[0x80, 0x00]);
    assert_eq!(one(&stream).len, HEADER_LEN);
}

#[test]
fn the_opaque_and_opcode_travel_with_a_refusal() {
    let mut bytes = packet(0x0b, &[], b"k", &[], 0xfeed_f00d);
    assert_eq!(
        parse(&bytes),
        Parse::Invalid {
            error: ProtocolError::BadShape,
            len: HEADER_LEN,
            opaque: 0xfeed_f00d,
            opcode: Opcode::Version,
        }
    );
    bytes[0] = 0x81;
    let Parse::Invalid { error, opaque, .. } = parse(&bytes) else {
        panic!("a refusal")
    };
    assert_eq!((error, opaque), (ProtocolError::BadMagic, 0xfeed_f00d));
}

#[test]
fn bad_magic_is_decided_once_a_header_is_read() {
    let mut bytes = packet(0x0a, &[], &[], &[], 1);
    bytes[0] = b'g';
    assert_eq!(parse(&bytes[..23]), Parse::Incomplete { need: HEADER_LEN });
    assert_eq!(refusal(&bytes), ProtocolError::BadMagic);
    assert_eq!(ProtocolError::BadMagic.status(), None);
}

#[test]
fn refusals_are_decided_from_the_header_alone() {
    let header = raw_header(0x00, 10, 0, 5);
    assert_eq!(refusal(&header), ProtocolError::BodyTooShort);
    let header = raw_header(0x00, 251, 0, 251);
    assert_eq!(refusal(&header), ProtocolError::KeyTooLong);
}

#[test]
fn refusal_statuses() {
    assert_eq!(
        ProtocolError::BodyTooShort.status(),
        Some(Status::UnknownCommand)
    );
    assert_eq!(
        ProtocolError::KeyTooLong.status(),
        Some(Status::InvalidArguments)
    );
    assert_eq!(
        ProtocolError::BadShape.status(),
        Some(Status::InvalidArguments)
    );
}

#[test]
fn framing_checks_come_before_the_opcode_rules() {
    use ProtocolError::*;
    let cases: &[(&str, Vec<u8>, ProtocolError)] = &[
        (
            "key longer than body",
            raw_header(0x00, 6, 0, 3),
            BodyTooShort,
        ),
        (
            "key+extras longer than body",
            raw_header(0x01, 3, 8, 10),
            BodyTooShort,
        ),
        (
            "unknown opcode too",
            raw_header(0x40, 1, 4, 4),
            BodyTooShort,
        ),
        (
            "short body beats long key",
            raw_header(0x00, 300, 0, 10),
            BodyTooShort,
        ),
        (
            "251-byte key",
            packet(0x00, &[], &[b'k'; 251], &[], 0),
            KeyTooLong,
        ),
        (
            "long key, unknown opcode",
            packet(0x40, &[], &[b'k'; 251], &[], 0),
            KeyTooLong,
        ),
        (
            "long key beats bad shape",
            packet(0x0a, &[], &[b'k'; 300], &[], 0),
            KeyTooLong,
        ),
    ];
    for (what, bytes, expected) in cases {
        assert_eq!(refusal(bytes), *expected, "{what}");
    }
    assert_eq!(one(&packet(0x00, &[], &[b'k'; 250], &[], 0)).key.len(), 250);
}

#[test]
fn each_opcode_refuses_the_shapes_memcached_refuses() {
    let four = [0u8; 4];
    let cases: &[(&str, Vec<u8>)] = &[
        ("get with extras", packet(0x00, &four, b"k", &[], 0)),
        ("getq with a value", packet(0x09, &[], b"k", b"v", 0)),
        ("getk without key", packet(0x0c, &[], &[], &[], 0)),
        ("set without extras", packet(0x01, &[], b"k", b"v", 0)),
        ("addq with 4 extras", packet(0x12, &four, b"k", b"v", 0)),
        ("replace without key", packet(0x03, &[0; 8], &[], b"v", 0)),
        ("append with extras", packet(0x0e, &four, b"k", b"v", 0)),
        ("prependq without key", packet(0x1a, &[], &[], b"v", 0)),
        ("delete with extras", packet(0x04, &four, b"k", &[], 0)),
        ("deleteq with a value", packet(0x14, &[], b"k", b"v", 0)),
        ("incr with a value", packet(0x05, &[0; 20], b"k", b"v", 0)),
        ("decr with 8 extras", packet(0x06, &[0; 8], b"k", &[], 0)),
        ("incrq without key", packet(0x15, &[0; 20], &[], &[], 0)),
        ("touch with 8 extras", packet(0x1c, &[0; 8], b"k", &[], 0)),
        ("gat without extras", packet(0x1d, &[], b"k", &[], 0)),
        ("gatkq without key", packet(0x24, &four, &[], &[], 0)),
        ("flush with 2 extras", packet(0x08, &[0; 2], &[], &[], 0)),
        ("flush with a value", packet(0x08, &four, &[], b"v", 0)),
        ("flushq with a key", packet(0x18, &[], b"k", &[], 0)),
        ("noop with a key", packet(0x0a, &[], b"k", &[], 0)),
        ("version with a value", packet(0x0b, &[], &[], b"v", 0)),
        ("quit with extras", packet(0x07, &four, &[], &[], 0)),
        ("quitq with a value", packet(0x17, &[], &[], b"v", 0)),
        ("stat with extras", packet(0x10, &four, &[], &[], 0)),
        ("sasl list with a key", packet(0x20, &[], b"k", &[], 0)),
        ("sasl auth without key", packet(0x21, &[], &[], b"v", 0)),
        ("sasl step with extras", packet(0x22, &four, b"k", &[], 0)),
        ("verbosity without extras", packet(0x1b, &[], &[], &[], 0)),
        ("verbosity with a key", packet(0x1b, &four, b"k", &[], 0)),
    ];
    for (what, bytes) in cases {
        assert_eq!(refusal(bytes), ProtocolError::BadShape, "{what}");
    }
}

#[test]
fn unknown_opcodes_consume_their_body_and_keep_the_stream() {
    let mut stream = packet(0x40, b"ee", b"kk", b"vvvv", 7);
    stream.extend(packet(0x0a, &[], &[], &[], 8));
    let first = one(&stream);
    assert_eq!(first.opcode(), Opcode::Unknown(0x40));
    assert_eq!(first.len, 24 + 8);
    assert_eq!(one(&stream[first.len..]).opcode(), Opcode::Noop);
}

#[test]
fn values_memcached_ignores_are_consumed() {
    let touch = packet(0x1c, &[0; 4], b"k", b"zz", 1);
    assert_eq!(one(&touch).value, b"zz");
    assert_eq!(one(&touch).len, touch.len());
    let stat = packet(0x10, &[], b"detail on", b"zz", 2);
    assert_eq!(one(&stat).key, b"detail on");
    assert_eq!(one(&stat).value, b"zz");
}

#[test]
fn data_type_and_vbucket_are_ignored() {
    let mut bytes = packet(0x00, &[], b"k", &[], 1);
    bytes[5] = 5;
    bytes[6] = 0x12;
    bytes[7] = 0x34;
    let packet = one(&bytes);
    assert_eq!(packet.header.data_type, 5);
    assert_eq!(packet.header.vbucket_or_status, 0x1234);
}

#[test]
fn store_and_arith_extras() {
    let set = packet(
        0x11,
        &[0, 0, 0xca, 0xfe, 0xff, 0xff, 0xff, 0xff],
        b"k",
        b"v",
        0,
    );
    let extras = StoreExtras {
        flags: 0xcafe,
        exptime: u32::MAX,
    };
    assert_eq!(one(&set).store_extras(), Some(extras));
    assert_eq!(one(&set).arith_extras(), None);
    let mut body = 5u64.to_be_bytes().to_vec();
    body.extend(7u64.to_be_bytes());
    body.extend(0xffff_ffffu32.to_be_bytes());
    let incr = packet(0x16, &body, b"n", &[], 0);
    let extras = ArithExtras {
        delta: 5,
        initial: 7,
        exptime: u32::MAX,
    };
    assert_eq!(one(&incr).arith_extras(), Some(extras));
    assert_eq!(one(&incr).store_extras(), None);
    assert_eq!(one(&packet(0x0e, &[], b"k", b"v", 0)).store_extras(), None);
}

#[test]
fn four_byte_extras() {
    let exptime = 300u32.to_be_bytes();
    for code in [0x1c, 0x1d, 0x1e, 0x23, 0x24] {
        let bytes = packet(code, &exptime, b"k", &[], 0);
        assert_eq!(one(&bytes).touch_exptime(), Some(300), "{code:#x}");
        assert_eq!(one(&bytes).flush_delay(), None);
    }
    let flush = packet(0x18, &exptime, &[], &[], 0);
    assert_eq!(one(&flush).flush_delay(), Some(300));
    assert_eq!(one(&flush).touch_exptime(), None);
    assert_eq!(one(&packet(0x08, &[], &[], &[], 0)).flush_delay(), Some(0));
    let verbosity = packet(0x1b, &[0, 0, 0, 2], &[], &[], 0);
    assert_eq!(one(&verbosity).verbosity(), Some(2));
    assert_eq!(one(&packet(0x0a, &[], &[], &[], 0)).verbosity(), None);
    assert_eq!(one(&packet(0x40, &exptime, &[], &[], 0)).verbosity(), None);
}

#[test]
fn response_header_layout() {
    let mut out = Vec::new();
    let reply = Response {
        cas: 9,
        extras: &[1, 2],
        key: b"key",
        value: b"value",
        ..Response::new(Opcode::GetKQ, Status::KeyExists, 0x0a0b_0c0d)
    };
    response(&mut out, &reply);
    let header = Header::decode(&out).expect("a header");
    assert_eq!(header.magic, RESPONSE_MAGIC);
    assert_eq!(header.opcode, Opcode::GetKQ);
    assert_eq!(header.vbucket_or_status, 0x0002);
    assert_eq!(
        (header.extras_len, header.key_len, header.body_len),
        (2, 3, 10)
    );
    assert_eq!(
        (header.opaque, header.cas, header.data_type),
        (0x0a0b_0c0d, 9, 0)
    );
    assert_eq!(&out[HEADER_LEN..], b"\x01\x02keyvalue");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of packets: real ones, headers with random fields, and random bytes, so
    /// random streams reach every branch.
    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        let real = proptest::sample::select(valid_packets());
        let header = (any::<u8>(), 0u16..300, 0u8..24, 0u32..400).prop_map(
            |(opcode, key_len, extras_len, body_len)| {
                raw_header(opcode, key_len, extras_len, body_len)
            },
        );
        prop_oneof![
            real,
            header,
            proptest::collection::vec(any::<u8>(), 0..40),
            Just(vec![REQUEST_MAGIC]),
        ]
    }

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(fragment(), 0..12).prop_map(|parts| parts.concat())
    }

    fn check_packet(buf: &[u8], packet: &Packet<'_>) {
        assert!(packet.len >= HEADER_LEN && packet.len <= buf.len());
        assert!(packet.key.len() <= KEY_MAX);
        let body = packet.extras.len() + packet.key.len() + packet.value.len();
        assert_eq!(body, packet.header.body_len as usize);
        assert_eq!(packet.len, HEADER_LEN + body);
        let span = buf.as_ptr_range();
        for part in [packet.extras, packet.key, packet.value] {
            assert!(span.start <= part.as_ptr() && part.as_ptr_range().end <= span.end);
        }
        assert_eq!(
            packet.value.as_ptr_range().end,
            buf[..packet.len].as_ptr_range().end
        );
    }

    fn walk(input: &[u8]) {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            match parse(rest) {
                Parse::Request(packet) => {
                    check_packet(rest, &packet);
                    pos += packet.len;
                }
                Parse::Incomplete { need } => {
                    assert!(need > rest.len());
                    break;
                }
                Parse::Invalid { len, .. } => {
                    assert!(len <= rest.len());
                    break;
                }
            }
        }
    }

    proptest! {
        #[test]
        fn random_streams_stay_in_bounds(input in stream()) {
            walk(&input);
        }

        #[test]
        fn random_streams_parse_the_same_split_anywhere(input in stream()) {
            assert_split_invariant(&input);
        }

        #[test]
        fn any_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600)) {
            walk(&input);
        }

        #[test]
        fn any_header_then_bytes(
            head in proptest::collection::vec(any::<u8>(), 24),
            tail in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut input = head;
            input[0] = REQUEST_MAGIC;
            input.extend(tail);
            walk(&input);
        }
    }
}
