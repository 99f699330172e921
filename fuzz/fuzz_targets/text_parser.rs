//! Feeds arbitrary bytes to the text parser as a connection would (requests one after
//! another, refused data blocks discarded) and checks its invariants: the consumed
//! count stays inside the input, keys are 1 to 250 bytes without spaces or newlines, a
//! stored value is followed by `\r\n`, and the result does not depend on how the input
//! was split into reads.

#![no_main]

use corecache::protocol::text::{parse, Command, Limits, Parse, KEY_MAX};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    item_size_max: 64 * 1024,
    item_overhead: 59,
    flags_overhead: 4,
};

fn key_ok(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= KEY_MAX && !key.contains(&b' ') && !key.contains(&b'\n')
}

/// Parses everything in `input`, returning each request's command in `Debug` form.
fn run(input: &[u8]) -> Vec<String> {
    let mut seen = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        let rest = &input[pos..];
        match parse(rest, &LIMITS) {
            Parse::Request(request) => {
                assert!(request.len > 0 && request.len <= rest.len());
                match request.command {
                    Command::Store(s) => {
                        assert!(key_ok(s.key));
                        assert!(rest[..request.len].ends_with(b"\r\n"));
                        assert_eq!(s.data, &rest[request.len - 2 - s.data.len()..request.len - 2]);
                    }
                    Command::Get { keys, .. } => assert!(keys.clone().all(key_ok)),
                    ref other => assert!(other.single_key().map_or(true, key_ok)),
                }
                seen.push(format!("{:?}", request.command));
                pos += request.len + request.discard;
            }
            Parse::Incomplete { need } => {
                assert!(need.map_or(true, |n| n > rest.len()));
                break;
            }
            Parse::Close(reason) => {
                seen.push(format!("close {reason:?}"));
                break;
            }
        }
    }
    seen
}

fuzz_target!(|input: &[u8]| {
    let whole = run(input);
    // A prefix never yields a request the whole input does not.
    let half = run(&input[..input.len() / 2]);
    assert!(half.len() <= whole.len());
    for (a, b) in half.iter().zip(&whole) {
        if !a.starts_with("close") && !b.starts_with("close") {
            assert_eq!(a, b);
        }
    }
});
