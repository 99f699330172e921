//! Exact-bytes tests of the meta commands against the real binary: every example of
//! reference §2.11, the cases where corecache follows memcached HEAD rather than 1.6.18
//! (`E`, `md x`, `ms MA N`, `s` from `ms`, `C` on `mg`, `me`'s `exp` sign, the data of
//! a refused `ms` swallowed), and meta requests routed across workers.
//!
//! CAS values are reproduced exactly where a fresh single-worker server gets the same
//! history as memcached's probe did (the reference's `c3`, `c6` and `c8`: each store
//! takes the next CAS, as in 1.6.18). Where the number depends on a history the
//! reference does not give (`c27`, `cas=148`) or on the clock (`t`, `l`, `la`, `exp`),
//! the test masks it, checks the rest byte for byte, and checks the number's range or
//! its agreement with another reply.

mod common;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::{show, Conn, Server};

fn server(args: &[&str]) -> (Server, Conn) {
    let server = Server::start(args);
    let conn = Conn::connect(server.addr());
    (server, conn)
}

fn single() -> (Server, Conn) {
    server(&["-t", "1"])
}

/// Runs each request in turn and checks its one reply.
fn expect_each(c: &mut Conn, cases: &[(&[u8], &[u8])]) {
    for &(request, reply) in cases {
        assert_eq!(show(&c.request(request)), show(reply), "{}", show(request));
    }
}

/// Stores `n` filler items, each taking the next CAS.
fn fill(c: &mut Conn, n: usize) {
    for i in 0..n {
        let reply = c.request(format!("ms filler{i} 1\r\nx\r\n").as_bytes());
        assert_eq!(reply, b"HD\r\n");
    }
}

/// A reply with the numbers after the flags in `letters` (`t5`, `c12`) and after the
/// fields in `fields` (`la=3`) replaced by `<n>`, and those numbers in order. Data
/// blocks after a `VA` line are left alone.
fn masked(reply: &[u8], letters: &[u8], fields: &[&str]) -> (String, Vec<i64>) {
    let text = String::from_utf8_lossy(reply).into_owned();
    let (line, rest) = text.split_at(text.find("\r\n").map_or(text.len(), |n| n));
    let mut numbers = Vec::new();
    let tokens: Vec<String> = line
        .split(' ')
        .enumerate()
        .map(|(i, token)| {
            let field = fields.iter().find(|f| token.starts_with(&format!("{f}=")));
            let prefix_len = match (field, token.as_bytes().first()) {
                (Some(f), _) => f.len() + 1,
                (None, Some(l)) if i > 0 && letters.contains(l) => 1,
                _ => return token.to_string(),
            };
            match token[prefix_len..].parse::<i64>() {
                Ok(n) => {
                    numbers.push(n);
                    format!("{}<n>", &token[..prefix_len])
                }
                Err(_) => token.to_string(),
            }
        })
        .collect();
    (tokens.join(" ") + rest, numbers)
}

#[test]
fn noop_answers_mn_whatever_follows() {
    let (_server, mut c) = single();
    expect_each(
        &mut c,
        &[(b"mn\r\n", b"MN\r\n"), (b"mn foo\r\n", b"MN\r\n")],
    );
}

/// §2.11 #2-#4.
#[test]
fn get_misses_answer_en_with_only_opaque_and_key() {
    let (_server, mut c) = single();
    expect_each(
        &mut c,
        &[
            (b"mg foo v\r\n", b"EN\r\n"),
            (b"mg foo\r\n", b"EN\r\n"),
            (b"mg nokey O123 k v\r\n", b"EN O123 knokey\r\n"),
        ],
    );
    assert_eq!(c.request_n(b"mg foo v q\r\nmn\r\n", 1), b"MN\r\n");
}

/// §2.11 #5-#7. The two fillers give `foo` the reference's `c3`; the plain `mg` before
/// #6 is the fetch behind its `h1`. `t99` and `l0` depend on the clock: one second
/// passed between memcached's store and read.
#[test]
fn set_then_get_returns_the_flags_in_request_order() {
    let (_server, mut c) = single();
    fill(&mut c, 2);
    expect_each(
        &mut c,
        &[
            (
                b"ms foo 3 T100 F5 c k Oabc\r\nbar\r\n",
                b"HD c3 kfoo Oabc\r\n",
            ),
            (b"mg foo\r\n", b"HD\r\n"),
        ],
    );
    let reply = c.request(b"mg foo s v f t c k Oop123 h l\r\n");
    let (shape, numbers) = masked(&reply, b"tl", &[]);
    assert_eq!(
        shape,
        "VA 3 s3 f5 t<n> c3 kfoo Oop123 h1 l<n>\r\nbar\r\n",
        "{}",
        show(&reply)
    );
    let (ttl, idle) = (numbers[0], numbers[1]);
    assert!(
        (98..=100).contains(&ttl) && (0..=2).contains(&idle),
        "{numbers:?}"
    );
}

/// §2.11 #8-#13.
#[test]
fn get_errors_are_memcached_1_6_18_s() {
    let (_server, mut c) = single();
    let k251 = format!("mg {} v\r\n", "k".repeat(251));
    let opaque = format!("mg foo O{}\r\n", "x".repeat(32));
    expect_each(
        &mut c,
        &[
            (k251.as_bytes(), b"CLIENT_ERROR bad command line format\r\n"),
            (b"mg foo !\r\n", b"CLIENT_ERROR invalid flag\r\n"),
            (b"mg foo v v\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
            (opaque.as_bytes(), b"CLIENT_ERROR opaque token too long\r\n"),
            (
                b"mg foo Tabc\r\n",
                b"CLIENT_ERROR bad token in command line format\r\n",
            ),
            (b"mg\r\n", b"ERROR\r\n"),
        ],
    );
}

/// §2.11 #14-#16, #20-#22, and §2.10 #12. #20 is HEAD's answer: the data block of a
/// refused `ms` is consumed, where 1.6.18 runs it as a command (`ERROR`). #15's length
/// is unreadable, so there is no block to consume and its data is a command either way.
#[test]
fn set_errors_keep_the_stream_framed() {
    let (_server, mut c) = single();
    let k251 = format!("ms {} 1\r\nx\r\nmn\r\n", "k".repeat(251));
    let cases: [(&[u8], &[u8]); 7] = [
        (
            b"ms newk\r\nmn\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"ms newk abc\r\nx\r\nmn\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"ms newk 1 MZ\r\nq\r\nmn\r\n",
            b"CLIENT_ERROR invalid mode for ms M token\r\n",
        ),
        (k251.as_bytes(), b"CLIENT_ERROR bad command line format\r\n"),
        (
            b"ms !!!! 1 b\r\nx\r\nmn\r\n",
            b"CLIENT_ERROR error decoding key\r\n",
        ),
        (
            b"ms cnt 1 noreply\r\n1\r\nmn\r\n",
            b"CLIENT_ERROR invalid flag\r\n",
        ),
        (
            b"ms n 1 q !\r\nx\r\nmn\r\n",
            b"CLIENT_ERROR invalid flag\r\n",
        ),
    ];
    for (request, reply) in cases {
        let replies = reply
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        let got = c.request_n(request, replies + 1);
        let want = [reply, b"MN\r\n"].concat();
        assert_eq!(show(&got), show(&want), "{}", show(request));
    }
}

/// §2.11 #17-#19.
#[test]
fn set_modes_cas_and_quiet_mode() {
    let (_server, mut c) = single();
    expect_each(
        &mut c,
        &[
            (b"ms viv 1\r\nx\r\n", b"HD\r\n"),
            (b"ms viv 1 ME\r\nx\r\n", b"NS\r\n"),
            (b"ms nok 1 MR\r\nx\r\n", b"NS\r\n"),
            (b"ms newk 1\r\nq\r\n", b"HD\r\n"),
            (b"ms newk 1 C1\r\nq\r\n", b"EX\r\n"),
            (b"ms missing 1 C1\r\nq\r\n", b"NF\r\n"),
        ],
    );
    assert_eq!(c.request_n(b"ms newk 1 q\r\nq\r\nmn\r\n", 1), b"MN\r\n");
    assert_eq!(
        c.request_n(b"ms newk 1 q ME\r\nq\r\nmn\r\n", 2),
        b"NS\r\nMN\r\n"
    );
}

/// §2.11 #23-#25.
#[test]
fn delete_hides_only_hd_when_quiet() {
    let (_server, mut c) = single();
    expect_each(
        &mut c,
        &[
            (b"ms newk 1\r\nq\r\n", b"HD\r\n"),
            (b"md newk\r\n", b"HD\r\n"),
            (b"md newk\r\n", b"NF\r\n"),
            (b"ms newk 1\r\nq\r\n", b"HD\r\n"),
        ],
    );
    assert_eq!(
        c.request_n(b"md newk q\r\nmd newk q\r\nmn\r\n", 2),
        b"NF\r\nMN\r\n"
    );
    expect_each(
        &mut c,
        &[
            (b"ms newk 1\r\nq\r\n", b"HD\r\n"),
            (b"md newk C1\r\n", b"EX\r\n"),
        ],
    );
}

/// §2.11 #26-#33. #29's CAS (the reference's `c27`) depends on the probe's history; here
/// it must be the counter's CAS, as `mg c` reads it.
#[test]
fn arithmetic_creates_counts_and_refuses() {
    let (_server, mut c) = single();
    expect_each(
        &mut c,
        &[
            (b"ma cnt\r\n", b"NF\r\n"),
            (b"ma cnt N0 J10 v\r\n", b"VA 2\r\n10\r\n"),
            (b"ma cnt MD D100 v\r\n", b"VA 1\r\n0\r\n"),
        ],
    );
    let reply = c.request(b"ma cnt t c k O1\r\n");
    let (shape, numbers) = masked(&reply, b"c", &[]);
    assert_eq!(shape, "HD t-1 c<n> kcnt O1\r\n", "{}", show(&reply));
    let cas = c.request(b"mg cnt c\r\n");
    assert_eq!(cas, format!("HD c{}\r\n", numbers[0]).as_bytes());
    expect_each(
        &mut c,
        &[
            (b"ms str 3\r\nabc\r\n", b"HD\r\n"),
            (
                b"ma str\r\n",
                b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
            ),
            (
                b"ma cnt Dabc\r\n",
                b"CLIENT_ERROR invalid or duplicate flag\r\n",
            ),
            (
                b"ma cnt MX\r\n",
                b"CLIENT_ERROR invalid mode for ma M token\r\n",
            ),
        ],
    );
    assert_eq!(
        c.request_n(b"ms big 20\r\n18446744073709551615\r\nma big v\r\n", 2),
        b"HD\r\nVA 1\r\n0\r\n"
    );
}

/// §2.11 #34-#36, with five fillers before so that the CAS values are the reference's
/// (`viv` is created with CAS 6, stored again with 7 and invalidated to 8). The TTLs
/// may lose a second to the clock, as memcached's `t59` did.
#[test]
fn vivify_recache_and_invalidate_hand_out_one_token() {
    let (_server, mut c) = single();
    fill(&mut c, 5);
    for marker in ["W", "Z"] {
        let reply = c.request(b"mg viv N30 v c t\r\n");
        let (shape, numbers) = masked(&reply, b"t", &[]);
        assert_eq!(
            shape,
            format!("VA 0 c6 t<n> {marker}\r\n\r\n"),
            "{}",
            show(&reply)
        );
        assert!((29..=30).contains(&numbers[0]), "{numbers:?}");
    }
    assert_eq!(c.request(b"ms viv 4 T60\r\ndata\r\n"), b"HD\r\n");
    for marker in ["W", "Z"] {
        let reply = c.request(b"mg viv R100 v t\r\n");
        let (shape, numbers) = masked(&reply, b"t", &[]);
        assert_eq!(
            shape,
            format!("VA 4 t<n> {marker}\r\ndata\r\n"),
            "{}",
            show(&reply)
        );
        assert!((58..=60).contains(&numbers[0]), "{numbers:?}");
    }
    expect_each(
        &mut c,
        &[
            (b"md viv I T30\r\n", b"HD\r\n"),
            (b"mg viv v c\r\n", b"VA 4 c8 X W\r\ndata\r\n"),
            (b"mg viv v c\r\n", b"VA 4 c8 Z X\r\ndata\r\n"),
        ],
    );
}

/// §2.11 #37, with HEAD's sign for `exp` (1.6.18 printed the time left negated). `la`
/// depends on the clock and the CAS (the reference's 148) on the history: it must be
/// the one `ma` returned.
#[test]
fn debug_shows_the_item_without_touching_it() {
    let (_server, mut c) = single();
    let created = c.request(b"ma cnt N0 J10 c\r\n");
    let (_, cas) = masked(&created, b"c", &[]);
    let reply = c.request(b"me cnt\r\n");
    let (shape, numbers) = masked(&reply, b"", &["la", "cas"]);
    assert_eq!(
        shape,
        "ME cnt exp=-1 la=<n> cas=<n> fetch=no cls=1 size=64\r\n",
        "{}",
        show(&reply)
    );
    assert_eq!(numbers[1], cas[0]);
    let again = masked(&c.request(b"me cnt\r\n"), b"", &["la", "cas"]);
    assert_eq!(again.0, shape, "me fetches nothing");
    assert_eq!(c.request(b"me nokey\r\n"), b"EN\r\n");
    assert_eq!(c.request(b"ms ttl 1 T100\r\nx\r\n"), b"HD\r\n");
    let (shape, numbers) = masked(&c.request(b"me ttl\r\n"), b"", &["exp", "la", "cas"]);
    assert_eq!(
        shape,
        "ME ttl exp=<n> la=<n> cas=<n> fetch=no cls=1 size=63\r\n"
    );
    assert!((99..=100).contains(&numbers[0]), "{numbers:?}");
}

/// A key stored with `b` is shown in base64 by `me`, whichever way it is named; `me`
/// decodes a key followed by `b` as memcached 1.6.18 does (the HEAD build the reference
/// probed answered `EN` there, which looks like a HEAD bug).
#[test]
fn debug_shows_base64_keys_in_base64() {
    let (_server, mut c) = single();
    assert_eq!(c.request(b"ms Zm9v 1 b k c\r\nz\r\n"), b"HD kZm9v b c1\r\n");
    for request in [&b"me Zm9v b\r\n"[..], b"me foo\r\n"] {
        let (shape, _) = masked(&c.request(request), b"", &["la"]);
        assert_eq!(
            shape,
            "ME Zm9v exp=-1 la=<n> cas=1 fetch=no cls=1 size=63\r\n"
        );
    }
    assert_eq!(c.request(b"mg foo k v\r\n"), b"VA 1 kZm9v b\r\nz\r\n");
    assert_eq!(
        c.request(b"me !!!! b\r\n"),
        b"CLIENT_ERROR bad command line format\r\n"
    );
}

/// `E` (memcached 1.6.27): the item gets the client's CAS, on every command that
/// writes one. `C` on `mg` (1.6.40) leaves the value out when the CAS matches.
#[test]
fn explicit_cas_and_get_if_changed_follow_head() {
    let (_server, mut c) = single();
    expect_each(
        &mut c,
        &[
            (b"ms k1 1 E12345 c\r\nx\r\n", b"HD c12345\r\n"),
            (b"mg k1 c v C12345\r\n", b"HD c12345\r\n"),
            (b"mg k1 c v C1\r\n", b"VA 1 c12345\r\nx\r\n"),
            (b"ms k1 1 E500 C12345 c\r\ny\r\n", b"HD c500\r\n"),
            (b"ms k1 1 MA E600 C500 c s\r\nz\r\n", b"HD c600 s2\r\n"),
            (b"md k1 I E55\r\n", b"HD\r\n"),
            (b"mg k1 c v\r\n", b"VA 2 c55 X W\r\nyz\r\n"),
            (b"ma n N0 J7 E777 c v\r\n", b"VA 1 c777\r\n7\r\n"),
            (b"ma n E778 c v\r\n", b"VA 1 c778\r\n8\r\n"),
            (b"mg v N30 E999 c s\r\n", b"HD c999 s0 W\r\n"),
        ],
    );
}

/// `x` (memcached 1.6.27): the value goes, the item stays, with flags from `F` (else 0),
/// expiry from `T` (else none) and its CAS unless `E` gives one.
#[test]
fn delete_with_x_keeps_an_empty_item() {
    let (_server, mut c) = single();
    expect_each(
        &mut c,
        &[
            (b"ms k 5 F3 T100 c\r\nhello\r\n", b"HD c1\r\n"),
            (b"md k x\r\n", b"HD\r\n"),
            (b"mg k v f t c s\r\n", b"VA 0 f0 t-1 c1 s0\r\n\r\n"),
            (b"md k x F5 E9 q\r\nmn\r\n", b"MN\r\n"),
            (b"mg k v f c\r\n", b"VA 0 f5 c9\r\n\r\n"),
            (b"md k x I\r\n", b"HD\r\n"),
            (b"mg k f v\r\n", b"VA 0 f0 X W\r\n\r\n"),
            (b"md gone x\r\n", b"NF\r\n"),
        ],
    );
}

/// `ms` in append or prepend mode with `N` (memcached 1.6.20) creates the item on a
/// miss; `s` (1.6.20) returns the length of the whole value.
#[test]
fn append_vivify_and_size_follow_head() {
    let (_server, mut c) = single();
    expect_each(
        &mut c,
        &[
            (b"ms ap 1 MA N30 s c t\r\nx\r\n", b"HD s1 c1\r\n"),
            (b"ms ap 1 MA N30 s c\r\ny\r\n", b"HD s2 c2\r\n"),
            (b"ms ap 1 MP s\r\nz\r\n", b"HD s3\r\n"),
            (b"ms ap2 1 MP s c\r\nz\r\n", b"NS s1 c0\r\n"),
            (b"ms ap 1 MA C1 s c\r\nz\r\n", b"EX s1 c0\r\n"),
        ],
    );
    let (shape, numbers) = masked(&c.request(b"mg ap v t\r\n"), b"t", &[]);
    assert_eq!(shape, "VA 3 t<n>\r\nzxy\r\n");
    assert!((29..=30).contains(&numbers[0]), "{numbers:?}");
}

/// `mg` and `ma` apply `T`, `N` and `R` where they stand: `t` before `T` shows the old
/// TTL, and `N` after `t` has not yet given a created item its TTL.
#[test]
fn ttl_flags_apply_in_request_order() {
    let (_server, mut c) = single();
    expect_each(
        &mut c,
        &[
            (b"ms tt 1\r\nx\r\n", b"HD\r\n"),
            (b"mg tt t T0\r\n", b"HD t-1\r\n"),
            (b"mg tt t T30\r\n", b"HD t-1\r\n"),
            (b"mg nn t N30 v\r\n", b"VA 0 t-1 W\r\n\r\n"),
            (b"ma cnt N0 t T30\r\n", b"HD t-1\r\n"),
        ],
    );
    for (request, expected) in [
        (&b"mg tt T0 t\r\n"[..], -1),
        (b"mg nn t v\r\n", 30),
        (b"mg tt T20 t\r\n", 20),
        (b"ma cnt t\r\n", 30),
    ] {
        let (_, numbers) = masked(&c.request(request), b"t", &[]);
        assert!(
            numbers[0] == expected || (expected > 0 && numbers[0] == expected - 1),
            "{} gave {numbers:?}",
            show(request)
        );
    }
}

/// Only `me` counts `cmd_meta`, as in memcached; the others count as the classic
/// commands they stand for.
#[test]
fn meta_commands_move_the_classic_counters() {
    let (_server, mut c) = single();
    let pipeline =
        b"ms a 1\r\nx\r\nmg a v\r\nmg b v\r\nmg a T10\r\nmd a\r\nma n N0\r\nma n\r\nme n\r\n";
    c.request_n(pipeline, 8);
    let stats = String::from_utf8(c.request(b"stats\r\n")).unwrap();
    for stat in [
        "cmd_set 1",
        "cmd_get 2",
        "get_hits 1",
        "get_misses 1",
        "cmd_touch 1",
        "touch_hits 1",
        "delete_hits 1",
        "incr_hits 1",
        "incr_misses 0",
        "cmd_meta 1",
    ] {
        assert!(
            stats.contains(&format!("STAT {stat}\r\n")),
            "{stat}\n{stats}"
        );
    }
}

/// The key with `i`: text for most, raw bytes only base64 can carry for every third.
fn routed_key(i: usize) -> (String, bool) {
    if i % 3 == 0 {
        let bytes = [b'k', i as u8, b' ', (i >> 8) as u8, b'\n', 0xff];
        (BASE64.encode(bytes), true)
    } else {
        (format!("key{i}"), false)
    }
}

/// With four workers, meta requests for many keys, base64 ones among them, run on the
/// worker that owns each key and answer in request order.
#[test]
fn meta_requests_route_by_the_decoded_key_and_answer_in_order() {
    let (_server, mut c) = server(&["-t", "4"]);
    let n = 300;
    let mut sets = Vec::new();
    let mut sets_want = Vec::new();
    let mut gets = Vec::new();
    let mut gets_want = Vec::new();
    for i in 0..n {
        let (key, binary) = routed_key(i);
        let b = if binary { " b" } else { "" };
        let value = format!("value-{i}");
        sets.extend(format!("ms {key} {}{b} k O{i}\r\n{value}\r\n", value.len()).bytes());
        sets_want.extend(format!("HD k{key}{b} O{i}\r\n").bytes());
        gets.extend(format!("mg {key}{b} O{i} k v s\r\n").bytes());
        let len = value.len();
        gets_want.extend(format!("VA {len} O{i} k{key}{b} s{len}\r\n{value}\r\n").bytes());
    }
    assert_eq!(show(&c.request_n(&sets, n)), show(&sets_want));
    assert_eq!(show(&c.request_n(&gets, n)), show(&gets_want));

    let mut counts = Vec::new();
    for i in 0..n {
        let (key, binary) = routed_key(i);
        let b = if binary { " b" } else { "" };
        counts.extend(format!("md {key}{b} q\r\nma cnt{i} N0 J{i} q\r\n").bytes());
    }
    counts.extend(b"mn\r\n");
    // `q` hides md's HD, but not the HD of an item ma's N has just created.
    let counts_want = [b"HD\r\n".repeat(n), b"MN\r\n".to_vec()].concat();
    assert_eq!(show(&c.request_n(&counts, n + 1)), show(&counts_want));
    let mut reads = Vec::new();
    let mut reads_want = Vec::new();
    for i in 0..n {
        let (key, binary) = routed_key(i);
        let b = if binary { " b" } else { "" };
        reads.extend(format!("mg {key}{b} v\r\nma cnt{i} v\r\n").bytes());
        let next = (i + 1).to_string();
        reads_want.extend(format!("EN\r\nVA {}\r\n{next}\r\n", next.len()).bytes());
    }
    assert_eq!(show(&c.request_n(&reads, 2 * n)), show(&reads_want));
}

/// A key stored in base64 is found under its text spelling on any worker, so routing
/// must hash the decoded key.
#[test]
fn base64_and_text_spellings_of_a_key_meet_on_one_worker() {
    let (_server, mut c) = server(&["-t", "4"]);
    let n = 64;
    let mut sets = Vec::new();
    let mut gets = Vec::new();
    let mut want = Vec::new();
    for i in 0..n {
        let key = format!("plain{i}");
        sets.extend(format!("ms {} 1 b\r\n{}\r\n", BASE64.encode(&key), i % 10).bytes());
        gets.extend(format!("mg {key} v k\r\n").bytes());
        want.extend(format!("VA 1 k{} b\r\n{}\r\n", BASE64.encode(&key), i % 10).bytes());
    }
    assert_eq!(c.request_n(&sets, n), b"HD\r\n".repeat(n));
    assert_eq!(show(&c.request_n(&gets, n)), show(&want));
    let stats = String::from_utf8(c.request(b"stats\r\n")).unwrap();
    assert!(
        !stats.contains("STAT forwarded_requests 0\r\n"),
        "with four workers some keys live elsewhere"
    );
}

/// The replies to `mg` of many keys with `flags`, one per line, with the numbers of
/// `c` (which depend on how keys spread over workers), `t` and `l` (which depend on
/// the clock) masked; and the `t` numbers.
fn mg_transcript(c: &mut Conn, keys: usize, flags: &str) -> (Vec<String>, Vec<i64>) {
    let mut batch = Vec::new();
    for i in 0..keys {
        batch.extend(format!("mg key{i} {flags}\r\n").bytes());
    }
    batch.extend(b"mn\r\n");
    c.send(&batch);
    let (mut replies, mut ttls) = (Vec::new(), Vec::new());
    loop {
        let reply = c.read_reply();
        if reply == b"MN\r\n" {
            return (replies, ttls);
        }
        replies.push(masked(&reply, b"ctl", &[]).0);
        ttls.extend(masked(&reply, b"t", &[]).1);
    }
}

/// With four workers most keys belong to another worker than the connection's, and an
/// `mg` that only reads is answered without the owner (from its shard directly): the
/// replies must be the ones the owner gives, which one worker alone gives too.
#[test]
fn reads_of_other_workers_keys_answer_as_the_owner_would() {
    let (_one, mut one) = server(&["-t", "1"]);
    let (_four, mut four) = server(&["-t", "4"]);
    let keys = 48;
    let mut setup = Vec::new();
    for i in 0..keys {
        let ttl = if i % 3 == 0 { 0 } else { 1000 + i };
        setup.extend(format!("ms key{i} {i} T{ttl} F{i} q\r\n{}\r\n", "v".repeat(i)).bytes());
        if i % 7 == 0 {
            setup.extend(format!("md key{i} I q\r\n").bytes());
        } else if i % 11 == 0 {
            setup.extend(format!("md key{i} q\r\n").bytes());
        }
    }
    setup.extend(b"mn\r\n");
    for c in [&mut one, &mut four] {
        assert_eq!(c.request_n(&setup, 1), b"MN\r\n");
    }
    let probes = [
        "v",
        "s t f k O7",
        "v q k",
        "q",
        "v c f t s",
        "k u O9 v",
        "h l t v",
        "T30 t v",
    ];
    for flags in probes {
        let (a, _) = mg_transcript(&mut one, keys + 4, flags);
        let (b, ttls) = mg_transcript(&mut four, keys + 4, flags);
        assert_eq!(a, b, "mg with {flags}");
        let sane = |t: &i64| *t == -1 || (25..=30).contains(t) || (990..=1050).contains(t);
        assert!(ttls.iter().all(sane), "mg with {flags}: {ttls:?}");
    }
}
