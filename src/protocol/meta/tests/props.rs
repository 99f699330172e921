//! Properties over random meta-like streams: the parser never panics, every request stays
//! inside the buffer with its invariants, and reads split anywhere change nothing.

use super::*;
use proptest::prelude::*;

/// Fragments that make random streams look like meta traffic often enough to reach every
/// branch of the parser.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    const WORDS: &[&str] = &[
        "mg ",
        "ms ",
        "md ",
        "ma ",
        "me ",
        "mn",
        "mz ",
        "foo ",
        "Zm9v ",
        "AAFiaW4ga2V5/w== ",
        "!!!! ",
        "1 ",
        "3 ",
        "0 ",
        "-1 ",
        "abc ",
        "v ",
        "k ",
        "b ",
        "q ",
        "c ",
        "s ",
        "t ",
        "T30 ",
        "N0 ",
        "R5 ",
        "Tx ",
        "C1 ",
        "E9 ",
        "F5 ",
        "D3 ",
        "J7 ",
        "MA ",
        "MD ",
        "MZ ",
        "Oop ",
        "O",
        "x ",
        "I ",
        "\r\n",
        "\n",
        " ",
        "bar",
    ];
    prop_oneof![
        proptest::sample::select(WORDS).prop_map(|w| w.as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
        "[a-zA-Z0-9]{1,6}".prop_map(String::into_bytes),
        Just(vec![b'k'; 251]),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(fragment(), 0..40).prop_map(|parts| parts.concat())
}

fn check_key(key: &MetaKey<'_>) {
    let mut room = KeyRoom::new();
    let bytes = key.bytes(&mut room);
    assert!(!bytes.is_empty() && bytes.len() <= KEY_MAX);
    match key.text() {
        Some(text) => assert!(
            !text.iter().any(|b| matches!(b, b' ' | b'\n' | 0)),
            "{text:?}"
        ),
        None => assert!(bytes.len() <= BINARY_KEY_MAX),
    }
}

fn check_args(args: &MetaArgs<'_>) {
    check_key(&args.key);
    assert!(args.opaque.is_none_or(|o| o.len() <= OPAQUE_MAX));
    let returns = args.returns.as_slice();
    for (i, flag) in returns.iter().enumerate() {
        assert!(!returns[..i].contains(flag), "{returns:?}");
    }
}

fn check(buf: &[u8], outcome: &Outcome<'_>, len: usize, discard: usize) {
    assert!(len > 0 && len <= buf.len());
    let Outcome::Request(request) = outcome else {
        return;
    };
    match request {
        MetaRequest::Set { data, .. } => {
            assert!(buf[..len].ends_with(b"\r\n"));
            assert_eq!(*data, &buf[len - 2 - data.len()..len - 2]);
            assert_eq!(discard, 0);
        }
        MetaRequest::TooLarge(_) => {
            assert!(discard > LIMITS.item_size_max - LIMITS.item_overhead - KEY_MAX)
        }
        MetaRequest::Debug(key) => check_key(key),
        _ => assert_eq!(discard, 0),
    }
    if let Some(args) = request.args() {
        check_args(args);
    }
}

fn check_stream(input: &[u8]) -> usize {
    let mut pos = 0;
    while pos < input.len() {
        match parse(&input[pos..], &LIMITS) {
            MetaParse::Done {
                outcome,
                len,
                discard,
            } => {
                check(&input[pos..], &outcome, len, discard);
                pos += len + discard;
            }
            MetaParse::Incomplete { need } => {
                assert!(need.is_none_or(|n| n > input.len() - pos));
                break;
            }
        }
    }
    pos
}

proptest! {
    #[test]
    fn random_streams_never_panic_and_stay_in_bounds(input in stream()) {
        check_stream(&input);
    }

    #[test]
    fn random_streams_split_anywhere_parse_the_same(input in stream(), at in any::<prop::sample::Index>()) {
        let split = at.index(input.len() + 1);
        prop_assert_eq!(run_split(&input, split), run(&input));
    }

    #[test]
    fn any_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut buf = b"mg ".to_vec();
        buf.extend_from_slice(&input);
        check_stream(&buf);
        check_stream(&input);
    }
}
