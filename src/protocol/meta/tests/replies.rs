//! Encoder tests. The "captured" cases are exact responses of memcached 1.6.18 (Debian),
//! read over a socket from a fresh `memcached -p PORT -U 0 -u root -t 1`, each encoded
//! here from the request that produced it and the item values the response shows. The
//! "reference" cases are the §2.11 and §2.1 examples of the memcached reference.

use super::*;

fn line(request: &[u8], code: Code, item: Option<ItemInfo>) -> Vec<u8> {
    let mut out = Vec::new();
    write_reply(&mut out, code, &args(request), item.as_ref());
    out
}

fn value(request: &[u8], item: ItemInfo, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, &args(request), &item, data);
    out
}

fn hit(cas: u64, size: usize) -> ItemInfo {
    ItemInfo {
        cas,
        size,
        ttl: -1,
        ..ItemInfo::default()
    }
}

fn won() -> Markers {
    Markers {
        won: true,
        ..Markers::default()
    }
}

fn sent() -> Markers {
    Markers {
        token_sent: true,
        ..Markers::default()
    }
}

#[test]
fn captured_get_hits_return_flags_in_request_order() {
    let request = b"mg foo s v f t c k Oop123 h l\r\n";
    let first = ItemInfo {
        client_flags: 5,
        ..hit(1, 3)
    };
    let wire = b"VA 3 s3 f5 t-1 c1 kfoo Oop123 h0 l0\r\nbar\r\n";
    assert_eq!(value(request, first, b"bar"), wire);
    let second = ItemInfo {
        hit_before: true,
        last_access: 1,
        ..first
    };
    let wire = b"VA 3 s3 f5 t-1 c1 kfoo Oop123 h1 l1\r\nbar\r\n";
    assert_eq!(value(request, second, b"bar"), wire);
}

#[test]
fn reference_get_hit_with_every_flag() {
    let item = ItemInfo {
        client_flags: 5,
        ttl: 99,
        hit_before: true,
        ..hit(3, 3)
    };
    let wire = b"VA 3 s3 f5 t99 c3 kfoo Oop123 h1 l0\r\nbar\r\n";
    assert_eq!(
        value(b"mg foo s v f t c k Oop123 h l\r\n", item, b"bar"),
        wire
    );
}

#[test]
fn captured_get_misses_and_bare_hits() {
    assert_eq!(
        line(b"mg nokey O123 k v s t c\r\n", Code::En, None),
        b"EN O123 knokey\r\n"
    );
    assert_eq!(
        line(b"mg nokey O123 k v\r\n", Code::En, None),
        b"EN O123 knokey\r\n"
    );
    assert_eq!(line(b"mg foo v\r\n", Code::En, None), b"EN\r\n");
    assert_eq!(line(b"mg foo\r\n", Code::Hd, Some(hit(1, 3))), b"HD\r\n");
    assert_eq!(
        line(b"mg foo q k\r\n", Code::Hd, Some(hit(1, 3))),
        b"HD kfoo\r\n"
    );
}

#[test]
fn captured_opaques_are_echoed_with_their_letter() {
    let opaque = "x".repeat(31);
    let request = format!("mg foo O{opaque}\r\n");
    let wire = format!("HD O{opaque}\r\n");
    assert_eq!(
        line(request.as_bytes(), Code::Hd, Some(hit(1, 3))),
        wire.as_bytes()
    );
    assert_eq!(
        line(b"mg foo O\r\n", Code::Hd, Some(hit(1, 3))),
        b"HD O\r\n"
    );
}

#[test]
fn captured_binary_keys_return_in_base64_with_b() {
    let binary = ItemInfo {
        binary_key: true,
        ..hit(2, 2)
    };
    let request = b"mg AAFiaW4ga2V5/w== b k v c\r\n";
    let wire = b"VA 2 kAAFiaW4ga2V5/w== b c2\r\nhi\r\n";
    assert_eq!(value(request, binary, b"hi"), wire);
    let wire = b"VA 2 kAAFiaW4ga2V5/w== b\r\nhi\r\n";
    assert_eq!(value(b"mg AAFiaW4ga2V5/w== b k v\r\n", binary, b"hi"), wire);
    let miss = line(b"mg AAFiaW4ga2V5/w== k v\r\n", Code::En, None);
    assert_eq!(miss, b"EN kAAFiaW4ga2V5/w==\r\n");
}

#[test]
fn captured_get_names_a_text_item_plainly_even_when_asked_in_base64() {
    let item = ItemInfo {
        client_flags: 5,
        ..hit(1, 3)
    };
    assert_eq!(
        value(b"mg Zm9v b k f v\r\n", item, b"bar"),
        b"VA 3 kfoo f5\r\nbar\r\n"
    );
}

#[test]
fn captured_vivify_and_recache_markers() {
    let request = b"mg viv N30 v c t s\r\n";
    let first = ItemInfo {
        ttl: 30,
        markers: won(),
        ..hit(8, 0)
    };
    assert_eq!(value(request, first, b""), b"VA 0 c8 t30 s0 W\r\n\r\n");
    let again = ItemInfo {
        markers: sent(),
        ..first
    };
    assert_eq!(value(request, again, b""), b"VA 0 c8 t30 s0 Z\r\n\r\n");
}

#[test]
fn reference_recache_window_markers() {
    let item = ItemInfo {
        ttl: 60,
        markers: won(),
        ..hit(1, 4)
    };
    let wire = value(b"mg viv R100 v t\r\n", item, b"data");
    assert_eq!(wire, b"VA 4 t60 W\r\ndata\r\n");
    let later = ItemInfo {
        ttl: 59,
        markers: sent(),
        ..item
    };
    let wire = value(b"mg viv R100 v t\r\n", later, b"data");
    assert_eq!(wire, b"VA 4 t59 Z\r\ndata\r\n");
}

#[test]
fn captured_stale_items_carry_x_after_z() {
    let stale = Markers {
        stale: true,
        won: true,
        ..Markers::default()
    };
    let first = ItemInfo {
        markers: stale,
        ..hit(10, 4)
    };
    assert_eq!(
        value(b"mg stale v c\r\n", first, b"data"),
        b"VA 4 c10 X W\r\ndata\r\n"
    );
    let later = ItemInfo {
        markers: Markers {
            stale: true,
            token_sent: true,
            won: false,
        },
        ..first
    };
    assert_eq!(
        value(b"mg stale v c\r\n", later, b"data"),
        b"VA 4 c10 Z X\r\ndata\r\n"
    );
}

#[test]
fn captured_set_replies() {
    let request = b"ms foo 3 T0 F5 c k Oabc\r\nbar\r\n";
    assert_eq!(
        line(request, Code::Hd, Some(hit(1, 3))),
        b"HD c1 kfoo Oabc\r\n"
    );
    let request = b"ms foo 3 T100 F5 c k Oabc\r\nbar\r\n";
    assert_eq!(
        line(request, Code::Hd, Some(hit(3, 3))),
        b"HD c3 kfoo Oabc\r\n"
    );
    let wire = line(b"ms foo 1 C1 c k\r\nq\r\n", Code::Hd, Some(hit(3, 1)));
    assert_eq!(wire, b"HD c3 kfoo\r\n");
    let wire = line(b"ms foo 1 ME O1 k\r\nq\r\n", Code::Ns, Some(hit(0, 1)));
    assert_eq!(wire, b"NS O1 kfoo\r\n");
    for (code, wire) in [
        (Code::Ns, b"NS\r\n"),
        (Code::Ex, b"EX\r\n"),
        (Code::Nf, b"NF\r\n"),
    ] {
        assert_eq!(line(b"ms viv 1 ME\r\nx\r\n", code, Some(hit(0, 1))), wire);
    }
}

/// memcached 1.6.18 ignores `s` on `ms` (it answered `HD kAAFiaW4ga2V5/w== b c2 O7` and
/// `NF kmissing O5 c0`); 1.6.20 and later return the size, as corecache does.
#[test]
fn set_returns_the_size_as_later_memcached_does() {
    let binary = ItemInfo {
        binary_key: true,
        ..hit(2, 2)
    };
    let request = b"ms AAFiaW4ga2V5/w== 2 b k c O7 s\r\nhi\r\n";
    let wire = b"HD kAAFiaW4ga2V5/w== b c2 O7 s2\r\n";
    assert_eq!(line(request, Code::Hd, Some(binary)), wire);
    let missing = line(
        b"ms missing 1 C1 k O5 c s\r\nq\r\n",
        Code::Nf,
        Some(hit(0, 1)),
    );
    assert_eq!(missing, b"NF kmissing O5 c0 s1\r\n");
}

#[test]
fn set_with_an_explicit_cas_returns_it() {
    let wire = line(b"ms k 1 E12345 c\r\nx\r\n", Code::Hd, Some(hit(12345, 1)));
    assert_eq!(wire, b"HD c12345\r\n");
}

#[test]
fn captured_arith_replies() {
    let created = value(b"ma cnt N0 J10 v\r\n", hit(4, 2), b"10");
    assert_eq!(created, b"VA 2\r\n10\r\n");
    let wire = line(b"ma cnt t c k O1\r\n", Code::Hd, Some(hit(5, 2)));
    assert_eq!(wire, b"HD t-1 c5 kcnt O1\r\n");
    let wire = line(b"ma cnt t c k O1\r\n", Code::Hd, Some(hit(27, 2)));
    assert_eq!(wire, b"HD t-1 c27 kcnt O1\r\n");
    assert_eq!(
        value(b"ma cnt MD D100 v k\r\n", hit(6, 1), b"0"),
        b"VA 1 kcnt\r\n0\r\n"
    );
    assert_eq!(
        value(b"ma cnt MD D100 v\r\n", hit(6, 1), b"0"),
        b"VA 1\r\n0\r\n"
    );
}

#[test]
fn captured_arith_misses_return_only_opaque_and_key() {
    let wire = line(b"ma nocnt O2 k t c v\r\n", Code::Nf, None);
    assert_eq!(wire, b"NF O2 knocnt\r\n");
    let wire = line(b"ma bm9jbnQ= b k O3\r\n", Code::Nf, None);
    assert_eq!(wire, b"NF kbm9jbnQ= b O3\r\n");
    assert_eq!(line(b"ma cnt\r\n", Code::Nf, None), b"NF\r\n");
}

#[test]
fn captured_delete_replies() {
    assert_eq!(
        line(b"md nokey k Oxx\r\n", Code::Nf, None),
        b"NF knokey Oxx\r\n"
    );
    let wire = line(b"md bm9rZXk= b k O4\r\n", Code::Nf, None);
    assert_eq!(wire, b"NF kbm9rZXk= b O4\r\n");
    assert_eq!(line(b"md foo C1 k\r\n", Code::Ex, None), b"EX kfoo\r\n");
    assert_eq!(line(b"md newk\r\n", Code::Hd, None), b"HD\r\n");
    assert_eq!(
        line(b"md foo k q O1\r\n", Code::Nf, None),
        b"NF kfoo O1\r\n"
    );
}

#[test]
fn captured_debug_lines() {
    let mut out = Vec::new();
    let info = DebugInfo {
        exp: -1,
        last_access: 5,
        cas: 3,
        class: 1,
        size: 63,
        ..DebugInfo::default()
    };
    write_debug(&mut out, &MetaKey::Text(b"foo"), Some(&info));
    let binary = DebugInfo {
        binary_key: true,
        last_access: 7,
        cas: 2,
        fetched: true,
        size: 71,
        ..info
    };
    write_debug(
        &mut out,
        &request(b"me AAFiaW4ga2V5/w== b\r\n").key(),
        Some(&binary),
    );
    write_debug(&mut out, &MetaKey::Text(b"nokey"), None);
    let wire: &[u8] = b"ME foo exp=-1 la=5 cas=3 fetch=no cls=1 size=63\r\n\
        ME AAFiaW4ga2V5/w== exp=-1 la=7 cas=2 fetch=yes cls=1 size=71\r\nEN\r\n";
    assert_eq!(out, wire);
}

#[test]
fn reference_debug_line() {
    let mut out = Vec::new();
    let info = DebugInfo {
        exp: -1,
        last_access: 1,
        cas: 148,
        class: 1,
        size: 64,
        ..DebugInfo::default()
    };
    write_debug(&mut out, &request(b"me cnt\r\n").key(), Some(&info));
    assert_eq!(
        out,
        b"ME cnt exp=-1 la=1 cas=148 fetch=no cls=1 size=64\r\n"
    );
}

#[test]
fn noop_and_appending() {
    let mut out = b"HD\r\n".to_vec();
    write_noop(&mut out);
    assert_eq!(out, b"HD\r\nMN\r\n");
}

#[test]
fn base64_round_trips_every_length() {
    for len in 1..=BINARY_KEY_MAX {
        let key: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
        let mut encoded = Vec::new();
        encode::push_base64(&mut encoded, &key);
        let mut room = KeyRoom::new();
        assert_eq!(MetaKey::Base64(&encoded).bytes(&mut room), key);
    }
}
