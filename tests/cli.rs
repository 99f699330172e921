//! The binary's command line and process behaviour: refusals with exit code 64, help,
//! a clean stop on SIGTERM and SIGINT, the unix socket, and the switch to another user.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Conn, Server};

const BIN: &str = env!("CARGO_BIN_EXE_corecache");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run corecache")
}

#[test]
fn bad_values_exit_64_with_a_one_line_reason() {
    for args in [
        &["-U", "11211"][..],
        &["-I", "100"],
        &["-m", "0"],
        &["-f", "0.5"],
        &["-o", "nonsense=1"],
        &["--no-such-flag"],
        &["-p", "99999"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(!first.is_empty(), "{args:?}: no reason given");
    }
}

#[test]
fn help_lists_every_default_and_exits_0() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for default in [
        "[default: 11211]",
        "[default: 127.0.0.1]",
        "[default: 64]",
        "[default: 1m]",
    ] {
        assert!(help.contains(default), "{default} missing from:\n{help}");
    }
    assert!(help.contains("number of cores"));
}

#[test]
fn a_port_in_use_is_reported_at_start() {
    let server = Server::start(&["-t", "1"]);
    let port = server.port().to_string();
    let out = run(&["-p", &port, "-t", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("corecache:"));
}

/// Waits for `child` to exit, up to 10 s.
fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_and_sigint_stop_the_server_cleanly() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut server = Server::start(&["-t", "2"]);
        let mut c = Conn::connect(server.addr());
        assert_eq!(c.request(b"set k 0 0 1\r\nx\r\n"), b"STORED\r\n");
        // SAFETY: kill with a valid signal number on our own child's pid.
        assert_eq!(unsafe { libc::kill(server.pid() as i32, signal) }, 0);
        let status = server.wait_for_exit().expect("the server should stop");
        assert!(status.success(), "signal {signal}: {status:?}");
        c.expect_closed();
    }
}

#[test]
fn unix_socket_with_its_mask() {
    let dir = std::env::temp_dir().join(format!("corecache-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cc.sock");
    let mut child = Command::new(BIN)
        .args(["-s", path.to_str().unwrap(), "-a", "770", "-t", "1"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        if let Ok(stream) = UnixStream::connect(&path) {
            break stream;
        }
        assert!(Instant::now() < deadline, "no unix socket at {path:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o770);
    stream.write_all(b"set u 0 0 2\r\nok\r\nget u\r\n").unwrap();
    let want = b"STORED\r\nVALUE u 0 2\r\nok\r\nEND\r\n";
    let mut got = vec![0; want.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(got, want);
    child.kill().unwrap();
    wait_exit(&mut child);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn root_switches_to_the_user_named_with_u() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: not running as root, -u does nothing");
        return;
    }
    let server = Server::start(&["-t", "1", "-u", "nobody"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let nobody = 65534;
    let uids: Vec<u32> = uid_line
        .split_whitespace()
        .skip(1)
        .map(|u| u.parse().unwrap())
        .collect();
    assert!(uids.iter().all(|&u| u == nobody), "{uid_line}");
    let mut c = Conn::connect(server.addr());
    assert_eq!(c.request(b"mn\r\n"), b"MN\r\n");
}
