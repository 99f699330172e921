//! Every ketama vector file reproduces through the library: key hashes from the real
//! libhashkit, placements observed behind pylibmc and nutcracker, and libmemcached's
//! own weighted fixture.

#[path = "cluster/vectors.rs"]
mod vectors;

use corecache::cluster::{Continuum, Hash, Ketama, Mode};
use vectors::{fixture_nodes, fixture_rows, hashfns_rows, placement_files, HASHFNS_COLUMNS};

#[test]
fn hash_functions_match_libhashkit() {
    let rows = hashfns_rows();
    assert_eq!(rows.len(), 12);
    for (input, values) in rows {
        for (hash, want) in HASHFNS_COLUMNS.into_iter().zip(values) {
            assert_eq!(hash.hash(&input), want, "{hash} of {input:02x?}");
        }
    }
}

/// The first wrong row of a placement file, if any, and how many rows there were.
fn check_placements(file: &vectors::PlacementFile) -> (usize, Option<String>) {
    let ketama = Ketama::new(file.mode).with_hash(file.hash);
    let ring = ketama.continuum(&file.node_list()).unwrap();
    let last = ring.points().last().unwrap().value;
    let rows = file.rows();
    let wrong = rows.iter().find_map(|row| {
        let hash = ring.key_hash(&row.key);
        let got = (ring.locate(&row.key), hash, hash > last);
        let want = (row.index, row.key_hash, row.wraps);
        (got != want).then(|| format!("{:?}: got {got:?}, want {want:?}", row.key))
    });
    (rows.len(), wrong)
}

#[test]
fn placements_match_pylibmc_and_nutcracker() {
    for file in placement_files() {
        let (rows, wrong) = check_placements(&file);
        assert_eq!(rows, 200, "{}", file.name);
        assert_eq!(wrong, None, "{}", file.name);
    }
}

#[test]
fn placement_files_name_the_servers_in_order() {
    for file in placement_files() {
        let nodes = file.node_list();
        for row in file.rows() {
            assert_eq!(nodes[row.index].address(), row.server, "{}", file.name);
        }
    }
}

#[test]
fn twemproxy_md5_places_as_libmemcached_weighted() {
    let nodes = placement_files()[0].node_list();
    let weighted = Ketama::new(Mode::LibmemcachedWeighted).continuum(&nodes);
    let twemproxy = Ketama::new(Mode::Twemproxy)
        .with_hash(Hash::Md5)
        .continuum(&nodes);
    assert_eq!(weighted.unwrap().points(), twemproxy.unwrap().points());
}

fn fixture_host(ring: &Continuum, key: &[u8]) -> String {
    fixture_nodes()[ring.locate(key)].host.clone()
}

#[test]
fn libmemcached_weighted_fixture_reproduces() {
    let nodes = fixture_nodes();
    let rings = [
        Mode::LibmemcachedWeighted,
        Mode::LibmemcachedSpy,
        Mode::Libketama,
    ]
    .map(|mode| Ketama::new(mode).continuum(&nodes).unwrap());
    let rows = fixture_rows();
    assert_eq!(rows.len(), 99);
    for row in rows {
        let got = rings.each_ref().map(|ring| fixture_host(ring, &row.key));
        let want = [&row.standard, &row.spy, &row.libketama];
        assert_eq!(got.each_ref(), want, "{:?}", row.key);
    }
}

#[test]
fn vdeaaaaa_wraps_on_the_fixture() {
    // ketama.md: md5_u32("VDEAAAAA") = 4294758837 lies past the fixture's last point.
    let ring = Ketama::new(Mode::LibmemcachedWeighted)
        .continuum(&fixture_nodes())
        .unwrap();
    assert!(ring.key_hash(b"VDEAAAAA") > ring.points().last().unwrap().value);
    assert_eq!(ring.locate(b"VDEAAAAA"), ring.points()[0].node as usize);
}
