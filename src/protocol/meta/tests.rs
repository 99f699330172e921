//! Meta parser tables: every case of the memcached reference (§1b, §2.3, §2.10, §2.11)
//! whose answer the parser decides, the quirks probed on memcached 1.6.18, and every
//! input fed whole and split at every byte offset.

use super::*;

mod props;
mod replies;

const LIMITS: Limits = Limits {
    item_size_max: 1 << 20,
    item_overhead: 59,
    flags_overhead: 4,
};

fn done(input: &[u8]) -> (Outcome<'_>, usize, usize) {
    match parse(input, &LIMITS) {
        MetaParse::Done {
            outcome,
            len,
            discard,
        } => (outcome, len, discard),
        other => panic!("expected a whole request from {input:?}, got {other:?}"),
    }
}

fn outcome(input: &[u8]) -> Outcome<'_> {
    done(input).0
}

fn request(input: &[u8]) -> MetaRequest<'_> {
    match outcome(input) {
        Outcome::Request(request) => request,
        other => panic!("expected a request from {input:?}, got {other:?}"),
    }
}

fn args(input: &[u8]) -> MetaArgs<'_> {
    *request(input).args().expect("a keyed command")
}

fn options(input: &[u8]) -> Options {
    args(input).options
}

fn refused(input: &[u8]) -> ErrorReply {
    match outcome(input) {
        Outcome::Error(reply) => reply,
        other => panic!("expected an error from {input:?}, got {other:?}"),
    }
}

/// The key a request names, decoded.
fn key_of(input: &[u8]) -> Vec<u8> {
    request(input).key().bytes(&mut KeyRoom::new()).to_vec()
}

fn letters(input: &[u8]) -> Vec<u8> {
    args(input)
        .returns
        .as_slice()
        .iter()
        .map(|f| f.letter())
        .collect()
}

/// Runs a byte stream through the parser as a connection would, discards included, and
/// returns each request's outcome rendered with `Debug`.
fn run(stream: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        match parse(&stream[pos..], &LIMITS) {
            MetaParse::Done {
                outcome,
                len,
                discard,
            } => {
                out.push(format!("{outcome:?}"));
                pos += len + discard;
            }
            MetaParse::Incomplete { .. } => break,
        }
    }
    out
}

/// Feeds `stream` in two pieces split at every offset, as reads would deliver it, and
/// checks that the same requests come out as when it arrives whole.
fn assert_split_invariant(stream: &[u8]) {
    let whole = run(stream);
    for split in 0..=stream.len() {
        assert_eq!(
            run_split(stream, split),
            whole,
            "split at {split} of {:?}",
            stream.escape_ascii().to_string()
        );
    }
}

fn run_split(stream: &[u8], split: usize) -> Vec<String> {
    let mut buf = stream[..split].to_vec();
    let (mut got, mut discard, mut fed) = (Vec::new(), 0usize, split);
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
                got.push(format!("{outcome:?}"));
                discard = more;
                buf.drain(..len);
            }
            _ if fed < stream.len() => {
                buf.extend_from_slice(&stream[fed..]);
                fed = stream.len();
            }
            _ => return got,
        }
    }
}

#[test]
fn every_input_parses_the_same_split_anywhere() {
    let inputs: &[&[u8]] = &[
        b"mg foo v\r\nmn\r\n",
        b"mg foo s v f t c k Oop123 h l\r\n",
        b"ms foo 3 T100 F5 c k Oabc\r\nbar\r\nmg foo v\r\n",
        b"ms AAFiaW4ga2V5/w== 2 b\r\nhi\r\nmg AAFiaW4ga2V5/w== b k v\r\n",
        b"ms newk 1 MZ\r\nq\r\nms newk abc\r\nx\r\n",
        b"ms newk 1\r\nqq\r\nmn\r\n",
        b"ms newk 1 q !\r\nx\r\nmd newk q\r\nma cnt N0 J10 v\r\n",
        b"ms lf 1\nx\r\nme lf\nmn foo\n",
        b"ms newk 0\r\n\r\nms big 2000000 T0\r\nmn\r\n",
        b"mz foo\r\nmg\r\nme\r\n\r\n",
    ];
    for input in inputs {
        assert_split_invariant(input);
    }
}

#[test]
fn a_large_value_split_anywhere() {
    let mut input = b"ms big 3000 F5 T0 c\r\n".to_vec();
    input.extend(std::iter::repeat(b'v').take(3000));
    input.extend_from_slice(b"\r\nmg big v\r\n");
    assert_split_invariant(&input);
}

#[test]
fn noop_ignores_its_arguments() {
    assert_eq!(done(b"mn\r\n"), (Outcome::Noop, 4, 0));
    assert_eq!(outcome(b"mn foo\r\n"), Outcome::Noop);
}

#[test]
fn unknown_meta_words_and_missing_keys_answer_error() {
    for input in [
        &b"mz foo\r\n"[..],
        b"mg\r\n",
        b"md\r\n",
        b"ma\r\n",
        b"ms\r\n",
    ] {
        assert_eq!(refused(input), ErrorReply::Error, "{input:?}");
    }
}

#[test]
fn get_records_its_flags() {
    let MetaRequest::Get(args) = request(b"mg foo v\r\n") else {
        panic!("not a get");
    };
    assert_eq!(args.key, MetaKey::Text(b"foo"));
    assert!(args.options.value);
    assert_eq!(letters(b"mg foo\r\n"), b"");
    let options = options(b"mg foo T30 N40 R50 u q C7 E8\r\n");
    assert_eq!(options.ttl, Some(30));
    assert_eq!((options.vivify, options.recache), (Some(40), Some(50)));
    assert!(options.no_bump && options.quiet && !options.value);
    assert_eq!((options.compare_cas, options.new_cas), (Some(7), Some(8)));
}

#[test]
fn returned_flags_keep_request_order() {
    assert_eq!(letters(b"mg foo s v f t c k Oop123 h l\r\n"), b"sftckOhl");
    assert_eq!(args(b"mg nokey O123 k v\r\n").opaque, Some(&b"123"[..]));
    assert_eq!(letters(b"mg nokey O123 k v\r\n"), b"Ok");
}

/// `mg` and `ma` apply `T`, `N` and `R` where they stand among each other and `t`.
#[test]
fn ttl_steps_keep_request_order() {
    let steps = |input: &[u8]| args(input).steps.as_slice().to_vec();
    assert_eq!(
        steps(b"mg foo t T30 v N5 R10\r\n"),
        [Step::ReturnTtl, Step::Touch, Step::Vivify, Step::Recache]
    );
    assert_eq!(
        steps(b"ma foo N0 J1 T9 t\r\n"),
        [Step::Vivify, Step::Touch, Step::ReturnTtl]
    );
    assert_eq!(steps(b"mg foo v k\r\n"), []);
}

#[test]
fn each_command_returns_only_what_memcached_returns() {
    let asks = "s t c f l h k O1";
    assert_eq!(
        letters(format!("mg foo {asks}\r\n").as_bytes()),
        b"stcflhkO"
    );
    assert_eq!(
        letters(format!("ms foo 1 {asks}\r\nx\r\n").as_bytes()),
        b"sckO"
    );
    assert_eq!(letters(format!("md foo {asks}\r\n").as_bytes()), b"kO");
    assert_eq!(letters(format!("ma foo {asks}\r\n").as_bytes()), b"tckO");
}

#[test]
fn every_command_accepts_every_known_flag() {
    assert!(matches!(
        request(b"md foo v s f\r\n"),
        MetaRequest::Delete(_)
    ));
    assert!(matches!(
        request(b"mg foo F5 D7 J9 MZ I x E1 P L\r\n"),
        MetaRequest::Get(_)
    ));
    assert!(options(b"md foo x E5 T9 F3\r\n").remove_value);
    assert_eq!(options(b"md foo I T30\r\n").ttl, Some(30));
    assert!(options(b"md foo I T30\r\n").invalidate);
}

#[test]
fn flags_memcached_does_not_know_are_refused() {
    assert_eq!(refused(b"mg foo !\r\n"), ErrorReply::MetaInvalidFlag);
    assert_eq!(refused(b"mg foo S100\r\n"), ErrorReply::MetaInvalidFlag);
    assert_eq!(refused(b"mg foo a\r\n"), ErrorReply::MetaInvalidFlag);
    assert_eq!(refused(b"mg foo v v\r\n"), ErrorReply::MetaDuplicateFlag);
    assert_eq!(refused(b"mg foo \xc3\r\n"), ErrorReply::MetaDuplicateFlag);
    assert_eq!(refused(b"mg foo \x7f\r\n"), ErrorReply::MetaDuplicateFlag);
    assert_eq!(refused(b"mg foo T1 T2\r\n"), ErrorReply::MetaDuplicateFlag);
}

#[test]
fn the_last_bad_token_names_the_error() {
    assert_eq!(refused(b"mg foo Tabc\r\n"), ErrorReply::MetaBadToken);
    assert_eq!(refused(b"mg foo T\r\n"), ErrorReply::MetaBadToken);
    assert_eq!(refused(b"mg foo C-1\r\n"), ErrorReply::MetaBadToken);
    assert_eq!(refused(b"mg foo Fabc\r\n"), ErrorReply::BadFormat);
    assert_eq!(refused(b"mg foo Tabc Fabc\r\n"), ErrorReply::MetaBadToken);
    assert_eq!(refused(b"mg foo Tabc Dx\r\n"), ErrorReply::MetaInvalidDelta);
    assert_eq!(refused(b"mg foo Tabc !\r\n"), ErrorReply::MetaInvalidFlag);
    assert_eq!(refused(b"mg foo Jx\r\n"), ErrorReply::MetaInvalidInitial);
    assert_eq!(refused(b"mg foo MEE\r\n"), ErrorReply::MetaModeLength);
}

#[test]
fn numbers_read_as_memcached_reads_them() {
    assert_eq!(options(b"mg foo T+5 t\r\n").ttl, Some(5));
    assert_eq!(options(b"mg foo T-1\r\n").ttl, Some(-1));
    assert_eq!(options(b"mg foo T4294967297\r\n").ttl, Some(1));
    assert_eq!(options(b"ma foo D-0\r\n").delta, Some(0));
    assert_eq!(options(b"ma foo D+5\r\n").delta, Some(5));
    let flags = options(b"ms k 1 F4294967296\r\nx\r\n").client_flags;
    assert_eq!(flags, Some(0));
    assert_eq!(refused(b"ms k 1 F-1\r\nx\r\n"), ErrorReply::BadFormat);
}

#[test]
fn opaque_up_to_31_bytes() {
    let long = [&b"mg foo O"[..], &[b'x'; 32], b"\r\n"].concat();
    assert_eq!(refused(&long), ErrorReply::MetaOpaqueTooLong);
    let fits = [&b"mg foo O"[..], &[b'x'; 31], b"\r\n"].concat();
    assert_eq!(args(&fits).opaque.map(<[u8]>::len), Some(31));
    assert_eq!(args(b"mg foo O\r\n").opaque, Some(&b""[..]));
    let md = [&b"md foo O"[..], &[b'x'; 32], b"\r\n"].concat();
    assert_eq!(refused(&md), ErrorReply::MetaOpaqueTooLong);
}

#[test]
fn mode_is_checked_before_the_opaque() {
    let o = "O".to_string() + &"x".repeat(32);
    let set = format!("ms foo 1 {o} MZ\r\nx\r\n");
    assert_eq!(refused(set.as_bytes()), ErrorReply::MetaInvalidSetMode);
    let arith = format!("ma foo MX {o}\r\n");
    assert_eq!(refused(arith.as_bytes()), ErrorReply::MetaInvalidArithMode);
    let arith = format!("ma foo {o}\r\n");
    assert_eq!(refused(arith.as_bytes()), ErrorReply::MetaOpaqueTooLong);
}

#[test]
fn keys_over_250_bytes_are_refused() {
    let key = "k".repeat(250);
    assert!(matches!(
        request(format!("mg {key} v\r\n").as_bytes()),
        MetaRequest::Get(_)
    ));
    let long = format!("mg {key}k v\r\n");
    assert_eq!(refused(long.as_bytes()), ErrorReply::BadFormat);
    let set = format!("ms {key}k 1\r\nx\r\n");
    let (reply, _, discard) = done(set.as_bytes());
    assert_eq!((reply, discard), (Outcome::Error(ErrorReply::BadFormat), 3));
    assert_eq!(
        refused(format!("me {key}k\r\n").as_bytes()),
        ErrorReply::BadFormat
    );
}

#[test]
fn too_many_tokens_are_refused_with_each_commands_words() {
    let flags17 = "s t c f l h k v O1 q u P L I D1 J1 N1";
    assert!(matches!(
        request(format!("mg foo {flags17}\r\n").as_bytes()),
        MetaRequest::Get(_)
    ));
    let mg = format!("mg foo {flags17} R1\r\n");
    assert_eq!(refused(mg.as_bytes()), ErrorReply::MetaGetTooManyFlags);
    let many = "a b c d e f g h i j k l m n o p q r";
    for word in ["md", "ma"] {
        let line = format!("{word} foo {many}\r\n");
        assert_eq!(refused(line.as_bytes()), ErrorReply::MetaTooManyFlags);
    }
    let (reply, _, discard) = done(b"ms foo 1 a b c d e f g h i j k l m n o p q\r\nx\r\n");
    assert_eq!(
        (reply, discard),
        (Outcome::Error(ErrorReply::MetaTooManyFlags), 3)
    );
    let sixteen = b"ms foo 1 a b c d e f g h i j k l m n o p\r\nx\r\n";
    assert_eq!(refused(sixteen), ErrorReply::MetaInvalidFlag);
}

#[test]
fn quiet_mode_hides_only_the_boring_code() {
    let get = request(b"mg foo v q\r\n");
    assert!(get.hides(Code::En) && !get.hides(Code::Hd) && !get.hides(Code::Va(3)));
    let set = request(b"ms newk 1 q\r\nq\r\n");
    assert!(set.hides(Code::Hd) && !set.hides(Code::Ns));
    let delete = request(b"md newk q\r\n");
    assert!(delete.hides(Code::Hd) && !delete.hides(Code::Nf));
    let arith = request(b"ma cnt q v\r\n");
    assert!(arith.hides(Code::Va(2)) && arith.hides(Code::Hd) && !arith.hides(Code::Nf));
    assert!(!request(b"mg foo v\r\n").hides(Code::En));
    assert_eq!(run(b"mg foo v q\r\nmn\r\n").len(), 2);
}

#[test]
fn set_reads_its_value_and_flags() {
    let (outcome, len, discard) = done(b"ms foo 3 T100 F5 c k Oabc\r\nbar\r\n");
    assert_eq!((len, discard), (32, 0));
    let Outcome::Request(MetaRequest::Set { args, mode, data }) = outcome else {
        panic!("not a set");
    };
    assert_eq!((mode, data), (SetMode::Set, &b"bar"[..]));
    assert_eq!(args.options.ttl, Some(100));
    assert_eq!(args.options.client_flags, Some(5));
    assert_eq!(args.opaque, Some(&b"abc"[..]));
    assert_eq!(letters(b"ms foo 3 T100 F5 c k Oabc\r\nbar\r\n"), b"ckO");
}

#[test]
fn set_modes_are_case_sensitive_letters() {
    let modes = [
        ("S", SetMode::Set),
        ("E", SetMode::Add),
        ("A", SetMode::Append),
        ("P", SetMode::Prepend),
        ("R", SetMode::Replace),
    ];
    for (letter, mode) in modes {
        let line = format!("ms viv 1 M{letter}\r\nx\r\n");
        let MetaRequest::Set { mode: got, .. } = request(line.as_bytes()) else {
            panic!("not a set");
        };
        assert_eq!(got, mode);
    }
    let (reply, _, discard) = done(b"ms newk 1 MZ\r\nq\r\n");
    assert_eq!(
        (reply, discard),
        (Outcome::Error(ErrorReply::MetaInvalidSetMode), 3)
    );
    assert_eq!(
        refused(b"ms foo 1 Ms\r\nx\r\n"),
        ErrorReply::MetaInvalidSetMode
    );
    assert_eq!(refused(b"ms foo 1 M\r\nx\r\n"), ErrorReply::MetaModeLength);
}

#[test]
fn set_records_cas_invalidate_and_vivify() {
    assert_eq!(options(b"ms newk 1 C1\r\nq\r\n").compare_cas, Some(1));
    assert_eq!(options(b"ms k 1 E12345 c\r\nx\r\n").new_cas, Some(12345));
    let options = options(b"ms k 1 MA N30 I\r\nx\r\n");
    assert_eq!(options.vivify, Some(30));
    assert!(options.invalidate);
}

#[test]
fn set_needs_a_readable_length() {
    assert_eq!(refused(b"ms newk\r\n"), ErrorReply::BadFormat);
    assert_eq!(done(b"ms newk abc\r\nx\r\n").2, 0);
    assert_eq!(run(b"ms newk abc\r\nx\r\n").len(), 2);
    assert_eq!(refused(b"ms foo 2147483646\r\n"), ErrorReply::BadFormat);
    assert_eq!(done(b"ms foo -1\r\nx\r\n").2, 0);
    assert_eq!(done(b"ms foo +1 T5\r\nx\r\n").1, 17);
}

#[test]
fn refused_sets_still_consume_their_data() {
    let cases: &[(&[u8], ErrorReply)] = &[
        (b"ms n 1 q !\r\nx\r\n", ErrorReply::MetaInvalidFlag),
        (b"ms cnt 1 noreply\r\n1\r\n", ErrorReply::MetaInvalidFlag),
        (b"ms !!!! 1 b\r\nx\r\n", ErrorReply::MetaKeyDecoding),
        (b"ms foo 1 T1 T2\r\nx\r\n", ErrorReply::MetaDuplicateFlag),
        (b"ms foo 1 Tx Fx\r\nx\r\n", ErrorReply::MetaBadToken),
        (b"ms foo 1 Jx\r\nx\r\n", ErrorReply::MetaInvalidInitial),
        (b"ms foo 1 MEE\r\nx\r\n", ErrorReply::MetaModeLength),
    ];
    for &(input, reply) in cases {
        let line_len = memchr(b'\n', input).unwrap() + 1;
        assert_eq!(
            done(input),
            (Outcome::Error(reply), line_len, 3),
            "{input:?}"
        );
        assert_eq!(run(input).len(), 1, "{input:?}");
    }
}

#[test]
fn set_waits_for_its_data_and_checks_its_end() {
    let need = parse(b"ms foo 3\r\nba", &LIMITS);
    assert_eq!(need, MetaParse::Incomplete { need: Some(15) });
    assert_eq!(
        parse(b"ms foo 3", &LIMITS),
        MetaParse::Incomplete { need: None }
    );
    assert_eq!(
        done(b"ms newk 1\r\nqq\r\n").0,
        Outcome::Error(ErrorReply::BadDataChunk)
    );
    let quiet = run(b"ms newk 1 q\r\nqq\r\n");
    assert_eq!(quiet, ["Error(BadDataChunk)", "Error(Error)"]);
    let (_, len, _) = done(b"ms empty 0\r\n\r\n");
    assert_eq!(len, 14);
}

#[test]
fn too_large_values_are_discarded_unread() {
    let (outcome, len, discard) = done(b"ms newk 2000000 T0\r\n");
    assert!(matches!(
        outcome,
        Outcome::Request(MetaRequest::TooLarge(_))
    ));
    assert_eq!((len, discard), (20, 2_000_002));
    let fits = format!("ms abc {} F0\r\n", (1 << 20) - 59 - 3);
    assert_eq!(parse(fits.as_bytes(), &LIMITS), incomplete(&fits, 1048514));
    let flagged = format!("ms abc {} F1\r\n", (1 << 20) - 59 - 3);
    let (outcome, _, _) = done(flagged.as_bytes());
    assert!(matches!(
        outcome,
        Outcome::Request(MetaRequest::TooLarge(_))
    ));
}

fn incomplete(line: &str, value: usize) -> MetaParse<'static> {
    MetaParse::Incomplete {
        need: Some(line.len() + value + 2),
    }
}

#[test]
fn delete_records_its_flags() {
    assert!(matches!(request(b"md newk\r\n"), MetaRequest::Delete(_)));
    assert_eq!(options(b"md newk C1\r\n").compare_cas, Some(1));
    assert!(options(b"md newk q\r\n").quiet);
    assert_eq!(
        refused(b"md foo !\r\n"),
        ErrorReply::MetaInvalidOrDuplicateFlag
    );
    assert_eq!(
        refused(b"md foo q q\r\n"),
        ErrorReply::MetaInvalidOrDuplicateFlag
    );
    assert_eq!(
        refused(b"md foo Tx\r\n"),
        ErrorReply::MetaInvalidOrDuplicateFlag
    );
}

#[test]
fn arith_records_mode_delta_and_vivify() {
    let MetaRequest::Arith { args, mode } = request(b"ma cnt\r\n") else {
        panic!("not an arith");
    };
    assert_eq!((mode, args.options.delta), (ArithMode::Incr, None));
    let options = options(b"ma cnt N0 J10 v\r\n");
    assert_eq!((options.vivify, options.initial), (Some(0), Some(10)));
    assert!(options.value);
    let MetaRequest::Arith { args, mode } = request(b"ma cnt MD D100 v\r\n") else {
        panic!("not an arith");
    };
    assert_eq!((mode, args.options.delta), (ArithMode::Decr, Some(100)));
    for (letter, mode) in [
        ("I", ArithMode::Incr),
        ("+", ArithMode::Incr),
        ("-", ArithMode::Decr),
    ] {
        let line = format!("ma cnt M{letter}\r\n");
        assert!(
            matches!(request(line.as_bytes()), MetaRequest::Arith { mode: m, .. } if m == mode)
        );
    }
    assert_eq!(letters(b"ma cnt t c k O1\r\n"), b"tckO");
}

#[test]
fn arith_flag_errors_share_one_message() {
    assert_eq!(
        refused(b"ma cnt Dabc\r\n"),
        ErrorReply::MetaInvalidOrDuplicateFlag
    );
    assert_eq!(
        refused(b"ma foo Jx\r\n"),
        ErrorReply::MetaInvalidOrDuplicateFlag
    );
    assert_eq!(
        refused(b"ma foo MEE\r\n"),
        ErrorReply::MetaInvalidOrDuplicateFlag
    );
    assert_eq!(refused(b"ma cnt MX\r\n"), ErrorReply::MetaInvalidArithMode);
    assert_eq!(refused(b"ma cnt Mi\r\n"), ErrorReply::MetaInvalidArithMode);
}

#[test]
fn base64_keys_are_decoded_inline() {
    let key = args(b"ms AAFiaW4ga2V5/w== 2 b\r\nhi\r\n").key;
    assert_eq!(key, MetaKey::Base64(b"AAFiaW4ga2V5/w=="));
    assert_eq!(key.bytes(&mut KeyRoom::new()), b"\x00\x01bin key\xff");
    assert!(key.is_binary() && key.text().is_none());
    assert_eq!(key_of(b"mg Zm9v b k v\r\n"), b"foo");
    assert_eq!(key_of(b"mg Zm9= b k\r\n"), b"fo");
    assert_eq!(args(b"mg Zm9v k\r\n").key, MetaKey::Text(b"Zm9v"));
    for bad in [
        &b"mg foo b\r\n"[..],
        b"mg Zm9vYg b k\r\n",
        b"mg !!!! b\r\n",
        b"mg ==== b\r\n",
    ] {
        assert_eq!(refused(bad), ErrorReply::MetaKeyDecoding, "{bad:?}");
    }
}

#[test]
fn the_longest_base64_key_fits() {
    let encoded = "/".repeat(248);
    let line = format!("mg {encoded} b\r\n");
    assert_eq!(key_of(line.as_bytes()), [0xff; BINARY_KEY_MAX]);
    let line = format!("mg {encoded}AA b\r\n");
    assert_eq!(refused(line.as_bytes()), ErrorReply::MetaKeyDecoding);
}

#[test]
fn debug_takes_a_key_and_an_optional_b() {
    assert_eq!(
        request(b"me cnt\r\n"),
        MetaRequest::Debug(MetaKey::Text(b"cnt"))
    );
    assert_eq!(key_of(b"me Zm9v b\r\n"), b"foo");
    assert_eq!(key_of(b"me Zm9v v b\r\n"), b"Zm9v");
    assert_eq!(refused(b"me\r\n"), ErrorReply::BadFormat);
    assert_eq!(refused(b"me !!!! b\r\n"), ErrorReply::BadFormat);
}

#[test]
fn lines_are_read_as_memcached_reads_them() {
    assert_eq!(args(b"mg k\x00 v v\r\n").key, MetaKey::Text(b"k"));
    assert_eq!(letters(b"mg  foo   v  k \r\n"), b"k");
    assert_eq!(args(b"mg a\tb v\r\n").key, MetaKey::Text(b"a\tb"));
    assert_eq!(args(b"mg foo v\n").key, MetaKey::Text(b"foo"));
    assert!(options(b"mg foo v\r\r\n").value);
}

#[test]
fn only_the_first_letter_of_a_bare_flag_counts() {
    assert!(options(b"mg foo vxyz\r\n").value);
    assert_eq!(letters(b"mg foo kq sz\r\n"), b"ks");
}

#[test]
fn into_text_wraps_requests_and_keeps_errors_loud() {
    let wrapped = parse(b"mg foo v\r\n", &LIMITS).into_text(|_| Command::Version);
    assert!(matches!(
        wrapped,
        Parse::Request(Request {
            command: Command::Version,
            len: 10,
            discard: 0
        })
    ));
    let noop = parse(b"mn\r\n", &LIMITS).into_text(|_| Command::Version);
    assert!(matches!(
        noop,
        Parse::Request(Request {
            command: Command::MetaNoop,
            ..
        })
    ));
    let error = parse(b"ms n 1 q !\r\nx\r\n", &LIMITS).into_text(|_| Command::Version);
    let expected = Command::Error {
        reply: ErrorReply::MetaInvalidFlag,
        noreply: false,
    };
    assert!(
        matches!(error, Parse::Request(Request { command, discard: 3, .. }) if command == expected)
    );
    let waiting = parse(b"ms foo 3\r\n", &LIMITS).into_text(|_| Command::Version);
    assert_eq!(waiting, Parse::Incomplete { need: Some(15) });
}

/// A text command wraps a meta request, so growth here grows every parsed request.
#[test]
fn request_size_stays_small() {
    let size = std::mem::size_of::<MetaRequest<'_>>();
    assert!(size <= 184, "{size}");
}
