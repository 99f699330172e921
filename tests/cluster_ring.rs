//! The `corecache-ring` binary, run as a user runs it: `locate` reproduces every
//! placement vector file, `plan` prints the shares ketama.md measured, and `plan --live`
//! reads `curr_items` from running corecache nodes.

mod common;
#[path = "cluster/vectors.rs"]
mod vectors;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{Conn, Server};
use serde_json::Value;

/// Runs `corecache-ring` with `args`, `input` on stdin.
fn ring(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corecache-ring"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("corecache-ring starts");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// Runs it and returns stdout, failing the test on a non-zero exit.
fn ring_ok(args: &[&str], input: &[u8]) -> Vec<u8> {
    let out = ring(args, input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    out.stdout
}

fn node_list(nodes: &[corecache::cluster::Node]) -> String {
    let names: Vec<String> = nodes.iter().map(|n| n.address()).collect();
    names.join(",")
}

/// `key<TAB>node` lines split into their two halves.
fn located(stdout: &[u8]) -> Vec<(Vec<u8>, String)> {
    let lines = stdout.strip_suffix(b"\n").unwrap_or(stdout);
    let split = |line: &[u8]| {
        let tab = line.iter().rposition(|&b| b == b'\t').expect("a tab");
        let node = String::from_utf8(line[tab + 1..].to_vec()).unwrap();
        (line[..tab].to_vec(), node)
    };
    lines.split(|&b| b == b'\n').map(split).collect()
}

#[test]
fn locate_reproduces_every_placement_file() {
    for file in vectors::placement_files() {
        let rows = file.rows();
        let mut input = Vec::new();
        for row in &rows {
            input.extend_from_slice(&row.key);
            input.push(b'\n');
        }
        let nodes = node_list(&file.node_list());
        let args = [
            "locate",
            "--mode",
            file.mode.name(),
            "--hash",
            file.hash.name(),
            "--nodes",
            &nodes,
        ];
        let got = located(&ring_ok(&args, &input));
        assert_eq!(got.len(), rows.len(), "{}", file.name);
        for (row, (key, node)) in rows.iter().zip(got) {
            assert_eq!((&key, &node), (&row.key, &row.server), "{}", file.name);
        }
    }
}

#[test]
fn locate_defaults_to_the_modes_hash() {
    let nodes = "127.0.0.1:22141,127.0.0.1:22142,127.0.0.1:22143";
    let file = &vectors::placement_files()[4];
    assert_eq!(file.name, "ketama_vectors_twemproxy_fnv1a_64_3.csv");
    let row = &file.rows()[0];
    let out = ring_ok(
        &["locate", "--mode", "twemproxy", "--nodes", nodes],
        &row.key,
    );
    assert_eq!(located(&out), [(row.key.clone(), row.server.clone())]);
}

#[test]
fn plan_json_gives_the_ring_shares_and_the_cost_of_a_fourth_node() {
    let nodes = "127.0.0.1:22141,127.0.0.1:22142,127.0.0.1:22143";
    let args = [
        "plan",
        "--mode",
        "twemproxy",
        "--nodes",
        nodes,
        "--add",
        "127.0.0.1:22144",
        "--json",
    ];
    let json: Value = serde_json::from_slice(&ring_ok(&args, b"")).unwrap();
    let shares: Vec<f64> = (0..3)
        .map(|i| json["nodes"][i]["share"].as_f64().unwrap())
        .collect();
    // ketama.md section 5: MD5 continuum, 3 nodes: 0.327, 0.335, 0.338.
    for (share, want) in shares.iter().zip([0.327, 0.335, 0.338]) {
        assert!((share - want).abs() < 0.001, "{shares:?}");
    }
    let change = &json["change"];
    // ... and growing to 4 moves the new node's share, 0.242, all of it to the new node.
    assert!(
        (change["moved"].as_f64().unwrap() - 0.242).abs() < 0.001,
        "{change}"
    );
    assert_eq!(change["moved_between_others"].as_f64(), Some(0.0));
}

#[test]
fn plan_table_names_every_node() {
    let nodes = "127.0.0.1:22141,127.0.0.1:22142,127.0.0.1:22143";
    let args = [
        "plan",
        "--mode",
        "libmemcached",
        "--nodes",
        nodes,
        "--remove",
        "127.0.0.1:22142",
    ];
    let table = String::from_utf8(ring_ok(&args, b"")).unwrap();
    assert!(table.starts_with("libmemcached continuum, key hash one_at_a_time, 3 nodes"));
    assert!(
        table.contains("127.0.0.1:22141       1     100  34.77%"),
        "{table}"
    );
    assert!(
        table.contains("removing 127.0.0.1:22142 moves 37.05% of keys"),
        "{table}"
    );
}

#[test]
fn bad_settings_fail_with_a_reason() {
    let out = ring(&["plan", "--mode", "libmemcached", "--nodes", "a:1:5"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("libmemcached-weighted"));
    let out = ring(&["locate", "--mode", "ketama", "--nodes", "a:1"], b"");
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let out = ring(&["locate", "--mode", "twemproxy", "--nodes", "a:1:0"], b"");
    assert_eq!(out.status.code(), Some(2));
}

/// Stores `count` keys, each on the node `corecache-ring locate` names.
fn fill(servers: &[Server], nodes: &str, count: usize) {
    let keys: String = (0..count).map(|i| format!("session:{i:08x}\n")).collect();
    let out = ring_ok(
        &["locate", "--mode", "libmemcached", "--nodes", nodes],
        keys.as_bytes(),
    );
    let mut conns: Vec<Conn> = servers.iter().map(|s| Conn::connect(s.addr())).collect();
    for (key, node) in located(&out) {
        let index = servers
            .iter()
            .position(|s| node.ends_with(&format!(":{}", s.port())));
        let conn = &mut conns[index.expect("a node we started")];
        let mut set = b"set ".to_vec();
        set.extend_from_slice(&key);
        set.extend_from_slice(b" 0 0 1\r\nx\r\n");
        assert_eq!(conn.request(&set), b"STORED\r\n");
    }
}

#[test]
fn plan_live_shows_what_the_nodes_hold() {
    let servers: Vec<Server> = (0..3).map(|_| Server::start(&["-t", "1"])).collect();
    let nodes: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    let nodes = nodes.join(",");
    fill(&servers, &nodes, 3000);
    let args = [
        "plan",
        "--mode",
        "libmemcached",
        "--nodes",
        &nodes,
        "--live",
        "--json",
    ];
    let json: Value = serde_json::from_slice(&ring_ok(&args, b"")).unwrap();
    let mut total = 0;
    for node in json["nodes"].as_array().unwrap() {
        let (share, live) = (
            node["share"].as_f64().unwrap(),
            node["live_share"].as_f64().unwrap(),
        );
        assert!((share - live).abs() < 0.05, "{node}");
        total += node["curr_items"].as_u64().unwrap();
    }
    assert_eq!(total, 3000);
}
