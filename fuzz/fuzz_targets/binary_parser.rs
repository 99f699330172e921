//! Feeds arbitrary bytes to the binary-protocol parser as a connection would (packets
//! one after another, a refusal ending the stream) and checks its invariants: the
//! consumed count stays inside the input, keys are at most 250 bytes, the extras, key
//! and value are slices of the packet that add up to its declared body, "incomplete"
//! always asks for more than is there, and the result does not depend on how the input
//! was split into two reads.

#![no_main]

use corecache::protocol::binary::{parse, Packet, Parse, HEADER_LEN, KEY_MAX};
use libfuzzer_sys::fuzz_target;

fn check(buf: &[u8], packet: &Packet<'_>) {
    assert!(packet.len >= HEADER_LEN && packet.len <= buf.len());
    assert!(packet.key.len() <= KEY_MAX);
    let body = packet.extras.len() + packet.key.len() + packet.value.len();
    assert_eq!(body, packet.header.body_len as usize);
    assert_eq!(packet.len, HEADER_LEN + body);
    let within = buf[HEADER_LEN..packet.len].as_ptr_range();
    for part in [packet.extras, packet.key, packet.value] {
        let span = part.as_ptr_range();
        assert!(within.start <= span.start && span.end <= within.end);
    }
}

/// Parses everything in `input`, returning each result in `Debug` form.
fn run(input: &[u8]) -> Vec<String> {
    let mut seen = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        let rest = &input[pos..];
        match parse(rest) {
            Parse::Request(packet) => {
                check(rest, &packet);
                seen.push(format!("{packet:?}"));
                pos += packet.len;
            }
            Parse::Incomplete { need } => {
                assert!(need > rest.len());
                break;
            }
            invalid @ Parse::Invalid { len, .. } => {
                assert!(len <= rest.len());
                seen.push(format!("{invalid:?}"));
                break;
            }
        }
    }
    seen
}

/// The same, with the input arriving in two reads split at `split`.
fn run_split(input: &[u8], split: usize) -> Vec<String> {
    let mut buf = input[..split].to_vec();
    let mut fed = false;
    let mut seen = Vec::new();
    loop {
        match parse(&buf) {
            Parse::Request(packet) => {
                seen.push(format!("{packet:?}"));
                let len = packet.len;
                buf.drain(..len);
            }
            invalid @ Parse::Invalid { .. } => {
                seen.push(format!("{invalid:?}"));
                return seen;
            }
            Parse::Incomplete { .. } if fed => return seen,
            Parse::Incomplete { .. } => {
                buf.extend_from_slice(&input[split..]);
                fed = true;
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let whole = run(input);
    assert_eq!(run_split(input, input.len() / 2), whole);
    assert_eq!(run_split(input, input.len() / 3), whole);
});
