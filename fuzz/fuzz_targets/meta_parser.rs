//! Feeds arbitrary bytes to the meta-protocol parser as a connection would (requests one
//! after another, refused data blocks discarded) and checks its invariants: the consumed
//! count stays inside the input, a key is 1 to 250 bytes after decoding and free of
//! spaces, newlines and NULs unless it was decoded from base64, an opaque is at most 31
//! bytes, no flag is returned twice, a stored value is exactly the declared block before
//! its `\r\n`, "incomplete" always asks for more than is there, and the result does not
//! depend on how the input was split into two reads.

#![no_main]

use corecache::protocol::meta::{
    parse, KeyRoom, MetaArgs, MetaKey, MetaParse, MetaRequest, Outcome, BINARY_KEY_MAX, OPAQUE_MAX,
};
use corecache::protocol::text::{Limits, KEY_MAX};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    item_size_max: 64 * 1024,
    item_overhead: 59,
    flags_overhead: 4,
};

fn check_key(key: &MetaKey<'_>) {
    let mut room = KeyRoom::new();
    let bytes = key.bytes(&mut room);
    assert!(!bytes.is_empty() && bytes.len() <= KEY_MAX);
    match key.text() {
        Some(text) => assert!(!text.iter().any(|b| matches!(b, b' ' | b'\n' | 0))),
        None => assert!(bytes.len() <= BINARY_KEY_MAX),
    }
}

fn check_args(args: &MetaArgs<'_>) {
    check_key(&args.key);
    assert!(args.opaque.is_none_or(|o| o.len() <= OPAQUE_MAX));
    let returns = args.returns.as_slice();
    for (i, flag) in returns.iter().enumerate() {
        assert!(!returns[..i].contains(flag));
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

/// Parses everything in `input`, returning each request's outcome in `Debug` form.
fn run(input: &[u8]) -> Vec<String> {
    let mut seen = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        let rest = &input[pos..];
        match parse(rest, &LIMITS) {
            MetaParse::Done {
                outcome,
                len,
                discard,
            } => {
                check(rest, &outcome, len, discard);
                seen.push(format!("{outcome:?}"));
                pos += len + discard;
            }
            MetaParse::Incomplete { need } => {
                assert!(need.is_none_or(|n| n > rest.len()));
                break;
            }
        }
    }
    seen
}

/// The same, with the input arriving in two reads split at `split`.
fn run_split(input: &[u8], split: usize) -> Vec<String> {
    let mut buf = input[..split].to_vec();
    let (mut seen, mut discard, mut fed) = (Vec::new(), 0usize, false);
    loop {
        let skip = discard.min(buf.len());
        buf.drain(..skip);
        discard -= skip;
        match parse(&buf, &LIMITS) {
            MetaParse::Done {
                outcome,
                len,
                discard: more,
            } if discard == 0 => {
                seen.push(format!("{outcome:?}"));
                discard = more;
                buf.drain(..len);
            }
            _ if !fed => {
                buf.extend_from_slice(&input[split..]);
                fed = true;
            }
            _ => return seen,
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let whole = run(input);
    assert_eq!(run_split(input, input.len() / 2), whole);
    assert_eq!(run_split(input, input.len() / 3), whole);
});
