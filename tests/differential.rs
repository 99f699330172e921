//! Differential tests: each script in `tests/scripts/` runs against corecache
//! and against memcached 1.6.18 started with the same flags, and the two
//! transcripts must match byte for byte (after the masking described below).
//!
//! The scripts hold only cases where corecache is meant to answer exactly as
//! 1.6.18 does. Where corecache deliberately differs (the data block of a
//! rejected storage command is always consumed, as in memcached HEAD; its
//! own `version`), the case has an exact-bytes test elsewhere instead.
//!
//! Without memcached installed each test prints `SKIPPED: memcached not
//! installed` and passes. Set `CORECACHE_DIFF_BIN=/usr/bin/memcached` to run
//! the scripts memcached against memcached, which checks the harness and the
//! scripts themselves; `MEMCACHED_BIN` changes the reference binary, and
//! `CORECACHE_DIFF_TRACE=1` prints the reference transcript of each script.
//!
//! # Script format
//!
//! One step per line. Blank lines and lines starting with `#` are ignored,
//! except `#!` lines, which give server flags:
//!
//! ```text
//! #! -F -c 24                          flags for both servers
//! set k 0 0 1\r\nx\r\n => 1            send, then read one reply
//! get k\r\nget k\r\n => 2              a pipeline: read two replies
//! quit\r\n => closed                   the server closes without a reply
//! set q 0 0 1\r\nx\r\nquit\r\n => 1 closed
//! set n 0 0 1 noreply\r\nx\r\n => silent   nothing arrives within 300 ms
//! set s 0 0 5\r\nab\r\n => 0           send only
//!  => closed                           send nothing, wait for the close
//! @conn 2                              use connection 2 (opened on first use)
//! @hold 40                             open 40 idle connections
//! @until get k\r\n == END\r\n          repeat until that reply (10 s at most)
//! @stat curr_items                     one `stats` value, compared exactly
//! ```
//!
//! Every request is on one line, before the last `=>`; one space before
//! `=>` is dropped, everything else is sent as written, with no line ending
//! added. Escapes: `\r \n \t \0 \\ \{ \}`, `\s` for a space (useful at the
//! end of a request) and `\xNN`. Expansions:
//!
//! - `{TEXT*N}`: TEXT N times, e.g. `{k*251}` for a 251-byte key;
//! - `{TEXT#A..B}`: TEXT for each number A to B with `%` replaced by it,
//!   e.g. `get{ k%#1..100}\r\n`;
//! - `{now}`, `{now+N}`, `{now-N}`: the Unix time when the line is sent;
//! - `{cas}`, `{cas+N}`: the CAS unique of the last `VALUE` line this run
//!   read, so `gets k` then `cas k 0 0 1 {cas}` works on both servers.
//!
//! Connection 1 is used until `@conn` says otherwise. After `closed` the
//! connection is gone and its next use opens a new one; after a failed
//! expectation its later steps are skipped. `=> N` reads N complete replies:
//! a `VALUE` block through `END`, `STAT` lines through `END`, a meta `VA`
//! line with its data, or any other single line.
//!
//! Before comparison a `VALUE` line's CAS unique becomes `0` or `<cas>`,
//! numeric `STAT` values become `<n>` and `STAT` lines are sorted, and meta
//! `t`/`c` return flags are masked except `t-1`. Use `@stat` where a number
//! matters.
//!
//! Defaults are `-t 1 -m 64`; a `#!` line naming `-t` or `-m` replaces that
//! default.

mod common;

use std::path::{Path, PathBuf};

use common::script::{compare, Entry, Script};
use common::Server;

const SCRIPTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts");

/// One `#[test]` per script, plus the list the completeness check reads.
macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_script(stringify!($name));
            }
        )*

        const LISTED: &[&str] = &[$(stringify!($name)),*];
    };
}

scripts!(
    keys,
    keys_multiget,
    storage_args,
    data_chunk,
    too_large,
    expiry,
    expiry_touch_gat,
    add_replace,
    append_prepend,
    cas,
    cas_disabled,
    delete_touch,
    incr_decr,
    incr_decr_errors,
    flush_all,
    flush_all_disabled,
    misc_commands,
    shutdown_enabled,
    unknown_input,
    long_lines,
    noreply,
    noreply_errors,
    connection_limit,
    idle_timeout,
    meta_edges,
    meta_flags,
    meta_cas_disabled,
);

/// Runs one script on both servers and fails with a side-by-side report.
fn run_script(name: &str) {
    if common::skip_without_memcached(&format!("differential script {name}")) {
        return;
    }
    let script = Script::load(&script_path(name));
    let args = script.server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (label, subject) = common::start_subject(&args);
    let reference = Server::start_binary(common::memcached_path(), &args);

    let (got, want) = std::thread::scope(|s| {
        let got = s.spawn(|| script.run(subject.addr()));
        let want = script.run(reference.addr());
        (got.join().expect("subject run panicked"), want)
    });
    if std::env::var_os("CORECACHE_DIFF_TRACE").is_some() {
        trace(name, &want);
    }
    if let Err(report) = compare(name, (&label, &got), ("memcached", &want)) {
        panic!("{report}");
    }
}

/// Prints the reference transcript, for whoever writes or checks a script.
fn trace(name: &str, entries: &[Entry]) {
    let mut out = format!("--- {name} (memcached)\n");
    for entry in entries {
        let events: Vec<String> = entry.events.iter().map(|e| e.to_string()).collect();
        out += &format!(
            "{:>4}: {}\n      {}\n",
            entry.line,
            entry.text,
            events.join(" + ")
        );
    }
    eprint!("{out}");
}

fn script_path(name: &str) -> PathBuf {
    Path::new(SCRIPTS_DIR).join(format!("{name}.txt"))
}

fn script_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(SCRIPTS_DIR)
        .expect("read tests/scripts")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .map(|p| {
            p.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// A script file nobody listed would silently never run.
#[test]
fn every_script_is_listed() {
    let mut listed: Vec<String> = LISTED.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        script_names(),
        listed,
        "tests/scripts and scripts!() differ"
    );
}

/// Scripts must parse even where memcached is missing and they are skipped.
#[test]
fn every_script_parses() {
    for name in script_names() {
        let script = Script::load(&script_path(&name));
        assert!(!script.lines.is_empty(), "{name} has no steps");
    }
}

/// The harness's own pure parts, checked without a server.
mod harness {
    use super::common::script::{Expect, Script, Step, Template, Then};
    use super::common::{normalise, reply_len};

    #[test]
    fn frames_single_lines_and_blocks() {
        assert_eq!(reply_len(b"STORED\r\nEND\r\n"), Some(8));
        assert_eq!(reply_len(b"END\r\n"), Some(5));
        assert_eq!(reply_len(b"VALUE k 0 1\r\nx\r\n"), None);
        assert_eq!(
            reply_len(b"VALUE k 0 1\r\nx\r\nEND\r\nSTORED\r\n"),
            Some(21)
        );
        assert_eq!(reply_len(b"STAT a 1\r\nSTAT b 2\r\nEND\r\n"), Some(25));
        assert_eq!(reply_len(b"STAT a 1\r\n"), None);
        assert_eq!(reply_len(b"VA 2 t-1\r\nhi\r\nHD\r\n"), Some(14));
        assert_eq!(reply_len(b"12\r\n"), Some(4));
        assert_eq!(reply_len(b"CLIENT_ERROR bad"), None);
    }

    #[test]
    fn frames_data_that_looks_like_end() {
        let reply = b"VALUE k 0 5\r\nEND\r\n\r\nEND\r\n";
        assert_eq!(reply_len(reply), Some(reply.len()));
    }

    #[test]
    fn expands_escapes_and_repetitions() {
        let t = Template::parse(r"get {k*3}\x01\s{\{*2}\r\n").unwrap();
        assert_eq!(t.render(0), b"get kkk\x01 {{\r\n");
        let t = Template::parse(r"get{ k%#1..3}\r\n").unwrap();
        assert_eq!(t.render(0), b"get k1 k2 k3\r\n");
        let t = Template::parse(r"cas k 0 0 1 {cas+1000}\r\n").unwrap();
        assert_eq!(t.render(5), b"cas k 0 0 1 1005\r\n");
        assert!(Template::parse(r"get \q").is_err());
        assert!(Template::parse(r"get {k*3").is_err());
    }

    #[test]
    fn parses_steps_and_flags() {
        let text = "#! -F -t 2\n# comment\n\nset k 0 0 1\\r\\nx\\r\\n => 1\nquit\\r\\n => 1 closed\n@conn 2\n";
        let script = Script::parse("t", text).unwrap();
        assert_eq!(script.server_args(), ["-m", "64", "-F", "-t", "2"]);
        let expect = |replies, then| Expect { replies, then };
        let Step::Exchange { expect: e, .. } = &script.lines[1].step else {
            panic!("not an exchange");
        };
        assert_eq!(*e, expect(1, Then::Closed));
        assert!(Script::parse("t", "@bogus 1\n").is_err());
        assert!(Script::parse("t", "get k\\r\\n\n").is_err());
    }

    #[test]
    fn masks_only_server_specific_numbers() {
        assert_eq!(
            normalise(b"VALUE k 5 3 1234\r\n1 2\r\nVALUE j 0 0 0\r\n\r\nEND\r\n"),
            b"VALUE k 5 3 <cas>\r\n1 2\r\nVALUE j 0 0 0\r\n\r\nEND\r\n"
        );
        assert_eq!(
            normalise(b"STAT pid 12\r\nSTAT evictions on\r\nSTAT curr_items 3\r\nEND\r\n"),
            b"STAT curr_items <n>\r\nSTAT evictions on\r\nSTAT pid <n>\r\nEND\r\n"
        );
        assert_eq!(
            normalise(b"HD t98 c4 kfoo\r\n"),
            b"HD t<ttl> c<cas> kfoo\r\n"
        );
        assert_eq!(normalise(b"VA 1 t-1\r\nx\r\n"), b"VA 1 t-1\r\nx\r\n");
    }
}
