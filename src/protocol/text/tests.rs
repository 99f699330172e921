//! Parser tables: every case from the memcached reference that the parser decides, and
//! every input fed whole and split at every byte offset.

use super::*;

const LIMITS: Limits = Limits {
    item_size_max: 1 << 20,
    item_overhead: 59,
    flags_overhead: 4,
};

fn one(input: &[u8]) -> Request<'_> {
    match parse(input, &LIMITS) {
        Parse::Request(r) => r,
        other => panic!("expected a request from {input:?}, got {other:?}"),
    }
}

fn command(input: &[u8]) -> Command<'_> {
    one(input).command
}

fn err(reply: ErrorReply) -> Command<'static> {
    Command::Error {
        reply,
        noreply: false,
    }
}

fn quiet(reply: ErrorReply) -> Command<'static> {
    Command::Error {
        reply,
        noreply: true,
    }
}

/// Runs a byte stream through the parser as a connection would, discards included,
/// and returns each request's command rendered with `Debug`.
fn run(stream: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        match parse(&stream[pos..], &LIMITS) {
            Parse::Request(r) => {
                out.push(format!("{:?}", r.command));
                pos += r.len + r.discard;
            }
            Parse::Incomplete { .. } => break,
            Parse::Close(reason) => {
                out.push(format!("close {reason:?}"));
                break;
            }
        }
    }
    out
}

/// Feeds `stream` in two pieces split at every offset, as reads would deliver it, and
/// checks that the same requests come out as when it arrives whole.
fn assert_split_invariant(stream: &[u8]) {
    let whole = run(stream);
    for split in 0..=stream.len() {
        let mut buf = stream[..split].to_vec();
        let mut got = Vec::new();
        let mut discard = 0usize;
        let mut fed = split;
        loop {
            let skip = discard.min(buf.len());
            buf.drain(..skip);
            discard -= skip;
            match parse(&buf, &LIMITS) {
                Parse::Request(r) if discard == 0 => {
                    got.push(format!("{:?}", r.command));
                    let len = r.len;
                    discard = r.discard;
                    buf.drain(..len);
                }
                Parse::Close(reason) => {
                    got.push(format!("close {reason:?}"));
                    break;
                }
                _ if fed < stream.len() => {
                    buf.extend_from_slice(&stream[fed..]);
                    fed = stream.len();
                }
                _ => break,
            }
        }
        assert_eq!(
            got,
            whole,
            "split at {split} of {:?}",
            String::from_utf8_lossy(stream)
        );
    }
}

#[test]
fn every_input_parses_the_same_split_anywhere() {
    let inputs: &[&[u8]] = &[
        b"get foo\r\n",
        b"gets a b c\r\n",
        b"gat 10 k\r\n",
        b"set k 1 2 3\r\nabc\r\n",
        b"set k 0 0 3 noreply\r\nabc\r\nget k\r\n",
        b"cas k 0 0 1 99\r\nx\r\n",
        b"append k 0 0 2\r\nxy\r\nprepend k 0 0 0\r\n\r\n",
        b"set foo 0 0 3\r\nbarx\r\n",
        b"set lf 0 0 1\nx\r\nget lf\n",
        b"incr n 5\r\ndecr n 3 noreply\r\ntouch n 10\r\ndelete n\r\n",
        b"flush_all 10\r\nversion\r\nverbosity 1\r\nstats\r\nquit\r\n",
        b"set fl 0 0 1 noreply extra\r\nx\r\nget fl\r\n",
        b"set big 0 0 2000000\r\n",
        b"bogus\r\n\r\nGET foo\r\n",
    ];
    for input in inputs {
        assert_split_invariant(input);
    }
}

#[test]
fn a_large_value_split_anywhere() {
    let mut input = b"set big 5 0 3000\r\n".to_vec();
    input.extend(std::iter::repeat(b'v').take(3000));
    input.extend_from_slice(b"\r\nget big\r\n");
    assert_split_invariant(&input);
}

#[test]
fn get_lists_keys_in_order_with_duplicates() {
    let Command::Get { kind, keys } = command(b"get  a   b a \r\n") else {
        panic!("not a get");
    };
    assert_eq!(kind, GetKind::Get);
    assert_eq!(keys.collect::<Vec<_>>(), vec![&b"a"[..], b"b", b"a"]);
}

#[test]
fn get_accepts_more_than_24_keys() {
    let mut line = b"get".to_vec();
    for i in 0..5000 {
        line.extend_from_slice(format!(" k{i}").as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    let Command::Get { keys, .. } = command(&line) else {
        panic!("not a get");
    };
    assert_eq!(keys.count(), 5000);
}

#[test]
fn a_key_over_250_bytes_fails_the_whole_get() {
    let long = "k".repeat(251);
    let line = format!("get foo {long} foo\r\n");
    assert_eq!(command(line.as_bytes()), err(ErrorReply::BadFormat));
    let line = format!("get {}\r\n", "k".repeat(250));
    assert!(matches!(command(line.as_bytes()), Command::Get { .. }));
}

#[test]
fn get_without_key_is_error() {
    assert_eq!(command(b"get\r\n"), err(ErrorReply::Error));
    assert_eq!(command(b"get \r\n"), err(ErrorReply::Error));
    assert_eq!(command(b"gets\r\n"), err(ErrorReply::Error));
}

#[test]
fn gat_parses_exptime_first() {
    assert_eq!(command(b"gat abc g1\r\n"), err(ErrorReply::InvalidExptime));
    let Command::Get { kind, keys } = command(b"gat 100\r\n") else {
        panic!("not a get");
    };
    assert_eq!(kind, GetKind::Gat(100));
    assert_eq!(keys.count(), 0);
    let Command::Get { kind, .. } = command(b"gats -1 g1\r\n") else {
        panic!("not a get");
    };
    assert_eq!(kind, GetKind::Gats(-1));
}

#[test]
fn nul_ends_the_line_as_in_c() {
    assert_eq!(command(b"get \x00\x01bin\r\n"), err(ErrorReply::Error));
}

#[test]
fn control_bytes_and_tabs_are_key_bytes() {
    let Command::Store(s) = command(b"set a\tb 0 0 1\r\nx\r\n") else {
        panic!("not a store");
    };
    assert_eq!(s.key, b"a\tb");
    let Command::Store(s) = command(b"set \x7f\xc3\xa9 0 0 1\r\nx\r\n") else {
        panic!("not a store");
    };
    assert_eq!(s.key, b"\x7f\xc3\xa9");
}

#[test]
fn set_reads_its_fields() {
    let request = one(b"set  k   5  100 3\r\nabc\r\nrest");
    assert_eq!(request.len, 24);
    assert_eq!(
        request.command,
        Command::Store(StoreRequest {
            kind: StoreKind::Set,
            key: b"k",
            flags: 5,
            exptime: 100,
            data: b"abc",
            noreply: false,
        })
    );
}

#[test]
fn set_waits_for_its_data_and_says_how_much() {
    assert_eq!(
        parse(b"set k 0 0 10\r\nabc", &LIMITS),
        Parse::Incomplete { need: Some(26) }
    );
}

#[test]
fn numeric_quirks_of_memcached() {
    let flags = |line: &[u8]| match command(line) {
        Command::Store(s) => Some(s.flags),
        _ => None,
    };
    assert_eq!(flags(b"set fl 4294967295 0 1\r\nx\r\n"), Some(u32::MAX));
    assert_eq!(flags(b"set fl 4294967296 0 1\r\nx\r\n"), Some(0));
    assert_eq!(flags(b"set fl +5 0 1\r\nx\r\n"), Some(5));
    let Command::Store(s) = command(b"set e8 0 4294967297 1\r\nx\r\n") else {
        panic!("not a store");
    };
    assert_eq!(s.exptime, 1);
}

#[test]
fn bad_storage_fields_still_consume_the_data_block() {
    for line in [
        &b"set fl 18446744073709551616 0 1\r\nx\r\n"[..],
        b"set fl -1 0 1\r\nx\r\n",
        b"set fl 0 abc 1\r\nx\r\n",
    ] {
        let request = one(line);
        assert_eq!(request.command, err(ErrorReply::BadFormat), "{line:?}");
        assert_eq!(request.len + request.discard, line.len());
    }
    let long = format!("set {} 0 0 1\r\nx\r\n", "k".repeat(251));
    let request = one(long.as_bytes());
    assert_eq!(request.command, err(ErrorReply::BadFormat));
    assert_eq!(request.len + request.discard, long.len());
}

#[test]
fn unreadable_length_cannot_be_consumed() {
    let request = one(b"set fl 0 0 -1\r\nx\r\n");
    assert_eq!(request.command, err(ErrorReply::BadFormat));
    assert_eq!((request.len, request.discard), (15, 0));
    assert_eq!(
        command(b"set big 0 0 2147483646\r\n"),
        err(ErrorReply::BadFormat)
    );
}

#[test]
fn wrong_token_counts_answer_error() {
    assert_eq!(command(b"set fl 0 0\r\n"), err(ErrorReply::Error));
    let request = one(b"set fl 0 0 1 noreply extra\r\nx\r\n");
    assert_eq!(request.command, err(ErrorReply::Error));
    assert_eq!(request.discard, 3);
    let request = one(b"cas foo 0 0 1\r\nx\r\n");
    assert_eq!(request.command, err(ErrorReply::Error));
    assert_eq!(request.discard, 3);
}

#[test]
fn trailing_unknown_token_is_ignored_and_noreply_is_exact() {
    let Command::Store(s) = command(b"set fl 0 0 1 foo\r\nx\r\n") else {
        panic!("not a store");
    };
    assert!(!s.noreply);
    let Command::Store(s) = command(b"set nr 0 0 1 NOREPLY\r\nx\r\n") else {
        panic!("not a store");
    };
    assert!(!s.noreply);
    let Command::Store(s) = command(b"set nr 0 0 1 noreply\r\nx\r\n") else {
        panic!("not a store");
    };
    assert!(s.noreply);
}

#[test]
fn data_block_must_end_in_crlf() {
    let request = one(b"set foo 0 0 3\r\nbarx\r\n");
    assert_eq!(request.command, err(ErrorReply::BadDataChunk));
    assert_eq!(request.len, 20);
    assert_eq!(run(b"set foo 0 0 3\r\nbarx\r\n").len(), 2);
    assert_eq!(
        command(b"set nr 0 0 1 noreply\r\nxyz\r\n"),
        quiet(ErrorReply::BadDataChunk)
    );
}

#[test]
fn too_large_values_are_discarded_unread() {
    let request = one(b"set big 0 0 1048576\r\n");
    assert_eq!(
        request.command,
        Command::TooLarge {
            kind: StoreKind::Set,
            key: b"big",
            noreply: false
        }
    );
    assert_eq!(request.discard, 1_048_578);
    let fits = 1_048_576 - 59 - 3;
    let line = format!("set big 0 0 {fits}\r\n");
    assert_eq!(
        parse(line.as_bytes(), &LIMITS),
        Parse::Incomplete {
            need: Some(line.len() + fits + 2)
        }
    );
}

#[test]
fn cas_needs_a_number() {
    assert_eq!(
        command(b"cas k 0 0 1 abc\r\nx\r\n"),
        err(ErrorReply::BadFormat)
    );
    let Command::Store(s) = command(b"cas k 0 0 1 12345\r\nx\r\n") else {
        panic!("not a store");
    };
    assert_eq!(s.kind, StoreKind::Cas(12345));
}

#[test]
fn delete_forms() {
    assert!(matches!(
        command(b"delete d1\r\n"),
        Command::Delete { noreply: false, .. }
    ));
    assert!(matches!(
        command(b"delete d1 0\r\n"),
        Command::Delete { noreply: false, .. }
    ));
    assert!(matches!(
        command(b"delete d1 noreply\r\n"),
        Command::Delete { noreply: true, .. }
    ));
    assert!(matches!(
        command(b"delete d1 0 noreply\r\n"),
        Command::Delete { noreply: true, .. }
    ));
    assert_eq!(command(b"delete d1 10\r\n"), err(ErrorReply::DeleteUsage));
    assert_eq!(
        command(b"delete d1 10 noreply\r\n"),
        quiet(ErrorReply::DeleteUsage)
    );
    assert_eq!(command(b"delete\r\n"), err(ErrorReply::Error));
    let long = format!("delete {} noreply\r\n", "k".repeat(251));
    assert_eq!(command(long.as_bytes()), quiet(ErrorReply::BadFormat));
}

#[test]
fn arith_forms() {
    assert_eq!(
        command(b"incr n 5\r\n"),
        Command::Arith {
            key: b"n",
            incr: true,
            delta: 5,
            noreply: false
        }
    );
    assert_eq!(command(b"incr n\r\n"), err(ErrorReply::Error));
    for bad in [
        &b"incr n abc\r\n"[..],
        b"incr n -1\r\n",
        b"decr n 18446744073709551616\r\n",
    ] {
        assert_eq!(command(bad), err(ErrorReply::InvalidDelta));
    }
    assert_eq!(
        command(b"incr n abc noreply\r\n"),
        quiet(ErrorReply::InvalidDelta)
    );
}

#[test]
fn touch_forms() {
    assert_eq!(
        command(b"touch t1 -1\r\n"),
        Command::Touch {
            key: b"t1",
            exptime: -1,
            noreply: false
        }
    );
    assert_eq!(
        command(b"touch t1 abc\r\n"),
        err(ErrorReply::InvalidExptime)
    );
    assert_eq!(command(b"touch foo\r\n"), err(ErrorReply::Error));
}

#[test]
fn flush_all_forms() {
    let flush = |line: &[u8]| match command(line) {
        Command::FlushAll { delay, noreply } => (delay, noreply),
        other => panic!("{other:?}"),
    };
    assert_eq!(flush(b"flush_all\r\n"), (FlushDelay::Now, false));
    assert_eq!(flush(b"flush_all 0\r\n"), (FlushDelay::Now, false));
    assert_eq!(flush(b"flush_all -1\r\n"), (FlushDelay::Now, false));
    assert_eq!(flush(b"flush_all 2\r\n"), (FlushDelay::After(2), false));
    assert_eq!(flush(b"flush_all abc\r\n"), (FlushDelay::Invalid, false));
    assert_eq!(flush(b"flush_all noreply\r\n"), (FlushDelay::Now, true));
    assert_eq!(flush(b"flush_all 0 noreply\r\n"), (FlushDelay::Now, true));
    assert_eq!(command(b"flush_all 1 2 3\r\n"), err(ErrorReply::Error));
}

#[test]
fn misc_commands() {
    assert_eq!(command(b"version\r\n"), Command::Version);
    assert_eq!(command(b"version foo\r\n"), Command::Version);
    assert_eq!(command(b"quit\r\n"), Command::Quit);
    assert_eq!(command(b"verbosity\r\n"), err(ErrorReply::Error));
    assert_eq!(command(b"verbosity abc\r\n"), err(ErrorReply::BadFormat));
    assert_eq!(
        command(b"verbosity 1\r\n"),
        Command::Verbosity {
            level: 1,
            noreply: false
        }
    );
    assert_eq!(
        command(b"shutdown\r\n"),
        Command::Shutdown(ShutdownMode::Now)
    );
    assert_eq!(
        command(b"shutdown graceful\r\n"),
        Command::Shutdown(ShutdownMode::Graceful)
    );
    assert_eq!(
        command(b"shutdown bogus\r\n"),
        Command::Shutdown(ShutdownMode::Invalid)
    );
    assert_eq!(command(b"cache_memlimit abc\r\n"), err(ErrorReply::Error));
    assert_eq!(command(b"mn\r\n"), Command::MetaNoop);
    assert_eq!(command(b"mn foo\r\n"), Command::MetaNoop);
}

#[test]
fn stats_groups() {
    assert_eq!(command(b"stats\r\n"), Command::Stats(StatsGroup::General));
    assert_eq!(
        command(b"stats reset\r\n"),
        Command::Stats(StatsGroup::Reset)
    );
    assert_eq!(
        command(b"stats reset x\r\n"),
        Command::Stats(StatsGroup::Reset)
    );
    assert_eq!(
        command(b"stats items\r\n"),
        Command::Stats(StatsGroup::Items)
    );
    assert_eq!(command(b"stats bogus\r\n"), err(ErrorReply::Error));
    assert_eq!(
        command(b"stats cachedump 1 10\r\n"),
        Command::Stats(StatsGroup::CacheDump {
            class: 1,
            limit: 10
        })
    );
    assert_eq!(
        command(b"stats cachedump\r\n"),
        err(ErrorReply::BadCommandLine)
    );
    assert_eq!(
        command(b"stats cachedump 1 x\r\n"),
        err(ErrorReply::BadFormat)
    );
    assert_eq!(
        command(b"stats cachedump 64 1\r\n"),
        err(ErrorReply::IllegalSlabId)
    );
}

#[test]
fn unknown_input() {
    for line in [
        &b"bogus foo\r\n"[..],
        b"\r\n",
        b"\n",
        b"GET foo\r\n",
        b"mz foo\r\n",
        b"x\r\n",
        b"gxx HTTP/1.1\r\n",
    ] {
        assert_eq!(command(line), err(ErrorReply::Error), "{line:?}");
    }
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\n", &LIMITS),
        Parse::Close(CloseReason::Http)
    );
}

#[test]
fn long_lines_without_newline() {
    let junk = vec![b'a'; 2049];
    assert_eq!(
        parse(&junk, &LIMITS),
        Parse::Close(CloseReason::LineTooLong)
    );
    assert_eq!(
        parse(&junk[..2048], &LIMITS),
        Parse::Incomplete { need: None }
    );
    let mut get = b"  gets k".to_vec();
    get.extend(std::iter::repeat(b'k').take(4500));
    assert_eq!(parse(&get, &LIMITS), Parse::Incomplete { need: None });
    let mut long = vec![b'a'; 4096];
    long.extend_from_slice(b"\r\n");
    assert_eq!(command(&long), err(ErrorReply::Error));
    let mut padded = b"set pad 0 0 1".to_vec();
    padded.extend(std::iter::repeat(b' ').take(3000));
    padded.extend_from_slice(b"\r\nx\r\n");
    assert!(matches!(command(&padded), Command::Store(_)));
}

#[test]
fn bare_newline_ends_a_command_line() {
    assert_eq!(
        run(b"set lf 0 0 1\nx\r\nget lf\n").len(),
        2,
        "a set and a get"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Fragments that make random streams look like real traffic often enough to reach
    /// every branch of the parser.
    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"get ".to_vec()),
            Just(b"gets ".to_vec()),
            Just(b"gat 10 ".to_vec()),
            Just(b"set ".to_vec()),
            Just(b"cas ".to_vec()),
            Just(b"append ".to_vec()),
            Just(b"incr ".to_vec()),
            Just(b"delete ".to_vec()),
            Just(b"touch ".to_vec()),
            Just(b"flush_all ".to_vec()),
            Just(b"noreply".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b" ".to_vec()),
            Just(b"0 ".to_vec()),
            Just(b"5 ".to_vec()),
            Just(b"-1 ".to_vec()),
            Just(b"4294967297 ".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
            "[a-z]{1,6}".prop_map(String::into_bytes),
        ]
    }

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(fragment(), 0..40).prop_map(|parts| parts.concat())
    }

    fn check_request(buf: &[u8], request: &Request<'_>) {
        assert!(request.len > 0 && request.len <= buf.len());
        let key_ok = |key: &[u8]| {
            !key.is_empty() && key.len() <= KEY_MAX && !key.contains(&b' ') && !key.contains(&b'\n')
        };
        match request.command {
            Command::Store(s) => {
                assert!(key_ok(s.key), "{:?}", s.key);
                assert!(buf[..request.len].ends_with(b"\r\n"));
                assert_eq!(request.discard, 0);
            }
            Command::Get { keys, .. } => {
                for key in keys {
                    assert!(key_ok(key), "{key:?}");
                }
            }
            ref other => {
                if let Some(key) = other.single_key() {
                    assert!(key_ok(key), "{key:?}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn random_streams_never_panic_and_stay_in_bounds(input in stream()) {
            let mut pos = 0;
            while pos < input.len() {
                match parse(&input[pos..], &LIMITS) {
                    Parse::Request(request) => {
                        check_request(&input[pos..], &request);
                        pos += request.len + request.discard;
                    }
                    Parse::Incomplete { need } => {
                        if let Some(need) = need {
                            prop_assert!(need > input.len() - pos);
                        }
                        break;
                    }
                    Parse::Close(_) => break,
                }
            }
        }

        #[test]
        fn any_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let _ = parse(&input, &LIMITS);
        }
    }
}
