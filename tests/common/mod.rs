//! The black-box harness shared by the integration tests: start a server
//! process on a free port ([`Server`]), talk raw bytes to it with a client
//! that knows where a memcached reply ends ([`Conn`]), and run request scripts
//! ([`script`]) whose transcripts can be compared across servers; [`binary`]
//! builds and decodes binary-protocol packets.
//!
//! It is not a memcached client library: it checks bytes, it does not
//! interpret them. Each test binary includes this module with `mod common;`
//! and uses only part of it, hence the allowances below.

#![allow(dead_code, unused_imports)]

pub mod binary;
mod conn;
mod frame;
mod normalise;
pub mod script;
mod server;
mod template;
mod transcript;

pub use conn::{show, Conn, ReadError};
pub use frame::reply_len;
pub use normalise::normalise;
pub use server::Server;

use std::path::PathBuf;

/// Names a binary that replaces corecache in the tests that use
/// [`start_subject`], so that they can be checked against memcached itself.
pub const SUBJECT_ENV: &str = "CORECACHE_DIFF_BIN";

/// Starts the server under test with `args`: corecache, or the binary that
/// `CORECACHE_DIFF_BIN` names. Returns a label for messages with it.
pub fn start_subject(args: &[&str]) -> (String, Server) {
    match std::env::var_os(SUBJECT_ENV) {
        Some(path) => (
            PathBuf::from(&path).display().to_string(),
            Server::start_binary(path, args),
        ),
        None => ("corecache".to_string(), Server::start(args)),
    }
}

/// Where memcached is expected when `MEMCACHED_BIN` does not say otherwise:
/// Debian's package puts it here.
const DEFAULT_MEMCACHED: &str = "/usr/bin/memcached";

/// The memcached binary the comparison tests use as the reference.
///
/// `MEMCACHED_BIN` overrides the default so that a developer can point the
/// tests at another build of memcached.
pub fn memcached_path() -> PathBuf {
    std::env::var_os("MEMCACHED_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MEMCACHED))
}

/// Whether a reference memcached is installed, so that tests which need one
/// can pass on a machine without it instead of failing.
pub fn memcached_available() -> bool {
    memcached_path().is_file()
}

/// Returns `true` when memcached is missing, after printing a line that a
/// person reading the test output will notice, so a skipped comparison is
/// never mistaken for a passed one.
///
/// # Examples
///
/// ```ignore
/// if common::skip_without_memcached("differential keys") {
///     return;
/// }
/// ```
///
/// # Panics
///
/// If memcached is missing and `CORECACHE_REQUIRE_MEMCACHED` is set, as CI sets it: there
/// a skipped comparison would hide the very check CI exists to run.
pub fn skip_without_memcached(test: &str) -> bool {
    if memcached_available() {
        return false;
    }
    if std::env::var_os("CORECACHE_REQUIRE_MEMCACHED").is_some() {
        panic!(
            "{test} needs memcached, {} is missing, and CORECACHE_REQUIRE_MEMCACHED is set",
            memcached_path().display()
        );
    }
    eprintln!(
        "SKIPPED: memcached not installed ({} not found): {test}",
        memcached_path().display()
    );
    true
}

/// KiB as MiB, for reports of resident memory.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
