//! A real client library against the real binary: the `memcache` crate
//! (0.17, text protocol) must work with corecache unchanged, command by
//! command, as it does with memcached.
//!
//! These tests check what an application sees through the client, not
//! bytes; the byte-level comparison lives in `differential.rs`. Set
//! `CORECACHE_DIFF_BIN=/usr/bin/memcached` to run them against memcached.

mod common;

use std::collections::HashMap;

use common::Server;
use memcache::Client;

/// A value and its flags and CAS unique, as the crate's `gets` returns them.
type WithCas = (Vec<u8>, u32, Option<u64>);

/// A server under test with two worker threads, so that keys spread over
/// more than one shard.
fn start() -> Server {
    common::start_subject(&["-t", "2"]).1
}

/// A client speaking the text protocol to `server`.
fn client(server: &Server) -> Client {
    let url = format!("memcache://127.0.0.1:{}?protocol=ascii", server.port());
    Client::connect(url).expect("connect the memcache client")
}

fn get_string(client: &Client, key: &str) -> Option<String> {
    client.get(key).expect("get")
}

#[test]
fn set_then_get_returns_the_value() {
    let server = start();
    let client = client(&server);

    client.set("greeting", "hello", 0).expect("set");
    client.set("count", 42u64, 0).expect("set a number");

    assert_eq!(get_string(&client, "greeting").as_deref(), Some("hello"));
    assert_eq!(client.get::<u64>("count").expect("get"), Some(42));
    assert_eq!(get_string(&client, "missing"), None);
}

#[test]
fn add_stores_only_new_keys_and_replace_only_existing_ones() {
    let server = start();
    let client = client(&server);
    client.set("k", "old", 0).expect("set");

    // The crate reports NOT_STORED as success, so the outcome is read back.
    client.add("k", "new", 0).expect("add existing");
    client.add("fresh", "new", 0).expect("add new");
    client.replace("absent", "x", 0).expect("replace missing");
    client
        .replace("fresh", "replaced", 0)
        .expect("replace existing");

    assert_eq!(get_string(&client, "k").as_deref(), Some("old"));
    assert_eq!(get_string(&client, "fresh").as_deref(), Some("replaced"));
    assert_eq!(get_string(&client, "absent"), None);
}

#[test]
fn append_and_prepend_extend_the_value() {
    let server = start();
    let client = client(&server);
    client.set("word", "b", 0).expect("set");

    client.append("word", "c").expect("append");
    client.prepend("word", "a").expect("prepend");
    client.append("missing", "x").expect("append missing");

    assert_eq!(get_string(&client, "word").as_deref(), Some("abc"));
    assert_eq!(get_string(&client, "missing"), None);
}

#[test]
fn cas_succeeds_only_with_the_current_unique() {
    let server = start();
    let client = client(&server);
    client.set("doc", "v1", 0).expect("set");

    let cas = cas_of(&client, "doc");
    assert!(!client
        .cas("doc", "stale", 0, cas + 1)
        .expect("cas mismatch"));
    assert!(client.cas("doc", "v2", 0, cas).expect("cas match"));
    assert!(!client.cas("doc", "v3", 0, cas).expect("cas reused"));
    assert!(!client.cas("nodoc", "v", 0, cas).expect("cas missing"));

    assert_eq!(get_string(&client, "doc").as_deref(), Some("v2"));
    assert_ne!(cas_of(&client, "doc"), cas);
}

/// The CAS unique `gets` reports for `key`.
fn cas_of(client: &Client, key: &str) -> u64 {
    let found: HashMap<String, WithCas> = client.gets(&[key]).expect("gets");
    let (_, _, cas) = found.get(key).expect("key present");
    cas.expect("gets returns a CAS unique")
}

#[test]
fn delete_reports_whether_the_key_existed() {
    let server = start();
    let client = client(&server);
    client.set("gone", "x", 0).expect("set");

    assert!(client.delete("gone").expect("delete"));
    assert!(!client.delete("gone").expect("delete again"));
    assert_eq!(get_string(&client, "gone"), None);
}

#[test]
fn incr_and_decr_count_without_going_below_zero() {
    let server = start();
    let client = client(&server);
    client.set("hits", 10u64, 0).expect("set");

    assert_eq!(client.increment("hits", 5).expect("incr"), 15);
    assert_eq!(client.decrement("hits", 20).expect("decr"), 0);
    assert_eq!(client.increment("hits", u64::MAX).expect("incr"), u64::MAX);
    assert_eq!(client.increment("hits", 1).expect("incr wraps"), 0);
    assert!(client.increment("nohits", 1).is_err());
}

#[test]
fn touch_reports_whether_the_key_existed() {
    let server = start();
    let client = client(&server);
    client.set("t", "x", 0).expect("set");

    assert!(client.touch("t", 3600).expect("touch"));
    assert!(!client.touch("not", 3600).expect("touch missing"));
    assert_eq!(get_string(&client, "t").as_deref(), Some("x"));
}

#[test]
fn flush_empties_the_cache() {
    let server = start();
    let client = client(&server);
    client.set("a", "1", 0).expect("set");
    client.set("b", "2", 0).expect("set");

    client.flush_with_delay(3600).expect("delayed flush");
    assert_eq!(get_string(&client, "a").as_deref(), Some("1"));
    client.flush().expect("flush");

    assert_eq!(get_string(&client, "a"), None);
    assert_eq!(get_string(&client, "b"), None);
}

#[test]
fn version_is_reported() {
    let server = start();
    let client = client(&server);

    let versions = client.version().expect("version");

    assert_eq!(versions.len(), 1);
    assert!(!versions[0].1.is_empty(), "empty version");
}

/// memcache 0.17 stops reading a text-protocol `stats` reply at its first
/// line and returns no fields, so only success is checked, and the client
/// is not reused: the rest of that reply may still be waiting on it.
#[test]
fn stats_succeeds() {
    let server = start();
    let stats_client = client(&server);

    let stats = stats_client.stats().expect("stats");

    assert_eq!(stats.len(), 1);
    let other = client(&server);
    other.set("after", "stats", 0).expect("set after stats");
}

#[test]
fn multi_get_of_100_keys_returns_every_hit() {
    let server = start();
    let client = client(&server);
    let keys: Vec<String> = (0..100).map(|i| format!("key:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        client.set(key, format!("value {i}"), 0).expect("set");
    }

    let mut wanted: Vec<&str> = keys.iter().map(String::as_str).collect();
    wanted.push("key:missing");
    let found: HashMap<String, String> = client.gets(&wanted).expect("multi-get");

    assert_eq!(found.len(), 100);
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(found[key], format!("value {i}"));
    }
}

#[test]
fn a_500_kib_value_round_trips() {
    let server = start();
    let client = client(&server);
    let value: Vec<u8> = (0..500 * 1024).map(|i| (i % 251) as u8).collect();

    client.set("big", value.as_slice(), 0).expect("set 500 KiB");
    let got: Option<Vec<u8>> = client.get("big").expect("get 500 KiB");

    assert_eq!(got.map(|v| v.len()), Some(value.len()));
    let got: Option<Vec<u8>> = client.get("big").expect("get again");
    assert!(got == Some(value), "500 KiB value came back changed");
}
