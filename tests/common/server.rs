//! A server process owned by one test: started on a free loopback port,
//! considered up once the port accepts a connection, and killed when the
//! test drops it, even if the test panics.
//!
//! It starts corecache or any memcached-compatible binary; it does not
//! configure or inspect the server beyond its command line and its log.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a server may take to accept its first connection. A debug build
/// starts in milliseconds; the margin is for a loaded CI machine.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the port is tried while the server starts.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Starts tried before giving up. A start is retried only when the process
/// exits early, which is what losing the race for a free port looks like.
const START_ATTEMPTS: usize = 3;

/// Ports handed out in this test process, so that two tests running in
/// parallel threads never pick the same one between probe and bind.
static CLAIMED_PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Makes log file names unique within this test process.
static LOG_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A running server process; dropping it kills the process.
pub struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

/// Why one start did not bring a server up.
enum StartError {
    /// The process ended before accepting: worth another port.
    Exited(String),
    /// The process could not be spawned, or never accepted.
    Failed(String),
}

impl Server {
    /// Starts the corecache binary built for this test run with
    /// `-p PORT -l 127.0.0.1` followed by `args`.
    ///
    /// # Panics
    ///
    /// If the server does not accept connections within 10 s; the message
    /// carries the server's log.
    pub fn start(args: &[&str]) -> Server {
        Server::start_binary(env!("CARGO_BIN_EXE_corecache"), args)
    }

    /// Starts any memcached-compatible binary the same way. A binary named
    /// `memcached` also gets `-U 0 -u root`: 1.6.18 refuses to run as root
    /// without `-u`, and UDP is off to match corecache's default.
    ///
    /// # Panics
    ///
    /// As [`Server::start`].
    pub fn start_binary(path: impl AsRef<Path>, args: &[&str]) -> Server {
        let path = path.as_ref();
        let mut why = String::new();
        for _ in 0..START_ATTEMPTS {
            match Server::try_start(path, args) {
                Ok(server) => return server,
                Err(StartError::Exited(log)) => why = log,
                Err(StartError::Failed(log)) => panic!("{} did not start: {log}", path.display()),
            }
        }
        panic!("{} did not start: {why}", path.display())
    }

    /// The server's process id, to read its memory use from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory in KiB (`VmRSS` in `/proc/PID/status`), for
    /// tests that bound it or watch it over time.
    ///
    /// # Panics
    ///
    /// If the process has gone or its status cannot be read.
    pub fn rss_kib(&self) -> u64 {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {path}"))
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn log_contents(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit by itself (after `shutdown`, say).
    /// Returns `None` if it is still running after the start timeout.
    pub fn wait_for_exit(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        None
    }

    fn try_start(path: &Path, args: &[&str]) -> Result<Server, StartError> {
        let port = claim_free_port();
        let log = log_path(port);
        let child = spawn(path, port, args, &log)
            .map_err(|e| StartError::Failed(format!("spawn failed: {e}")))?;
        let mut server = Server { child, port, log };
        server.wait_until_accepting()?;
        Ok(server)
    }

    /// Whether the server accepts a connection. The port came from the range the kernel
    /// also picks clients' ports from, so before the server listens a connection to it
    /// can be given that very port and connect to itself (TCP simultaneous open): that
    /// is not the server.
    fn accepts(&self) -> bool {
        TcpStream::connect(self.addr())
            .is_ok_and(|stream| stream.local_addr().ok() != stream.peer_addr().ok())
    }

    /// Polls the port until it accepts, watching for an early exit.
    fn wait_until_accepting(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log_contents();
                return Err(StartError::Exited(format!(
                    "exited with {status}; log:\n{log}"
                )));
            }
            if self.accepts() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let log = self.log_contents();
                return Err(StartError::Failed(format!(
                    "port {} not accepting after {START_TIMEOUT:?}; log:\n{log}",
                    self.port
                )));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The process may already have exited (after `shutdown`): nothing
        // to report then, so the results are deliberately ignored.
        self.child.kill().ok();
        self.child.wait().ok();
        if std::thread::panicking() {
            eprintln!("server log kept at {}", self.log.display());
        } else {
            std::fs::remove_file(&self.log).ok();
        }
    }
}

/// Spawns `path -p PORT -l 127.0.0.1 [memcached extras] args`, with both
/// output streams going to `log`.
fn spawn(path: &Path, port: u16, args: &[&str], log: &Path) -> std::io::Result<Child> {
    let out = File::create(log)?;
    let err = out.try_clone()?;
    let port = port.to_string();
    Command::new(path)
        .args(["-p", &port, "-l", "127.0.0.1"])
        .args(memcached_extras(path))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
}

/// The flags only memcached needs; see [`Server::start_binary`].
fn memcached_extras(path: &Path) -> &'static [&'static str] {
    match path.file_name().and_then(|n| n.to_str()) {
        Some("memcached") => &["-U", "0", "-u", "root"],
        _ => &[],
    }
}

/// A port the kernel just reported free and that no other test in this
/// process has been given.
fn claim_free_port() -> u16 {
    let mut claimed = CLAIMED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        if claimed.insert(port) {
            return port;
        }
    }
}

/// A log file path unique to this process, port and start.
fn log_path(port: u16) -> PathBuf {
    let seq = LOG_SEQ.fetch_add(1, Ordering::Relaxed);
    let name = format!("corecache-test-{}-{port}-{seq}.log", std::process::id());
    std::env::temp_dir().join(name)
}
