//! A raw TCP client for black-box tests: it sends exactly the bytes a test
//! gives it and returns exactly the bytes the server answers.
//!
//! A reply is complete when its framing says so ([`super::reply_len`]) or
//! when the expected number of bytes has arrived, never after a pause. The
//! one bounded wait is [`Conn::expect_silence`], which asserts an absence.
//! The read timeout only stops a test that would otherwise hang.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::frame::reply_len;

/// How long [`Conn::wait_for_stat`] waits for a counter to reach what a test expects.
pub const STAT_WAIT: Duration = Duration::from_secs(10);

/// How long a read may wait for bytes that should come, before the test is
/// declared stuck. Generous, because a debug build on a loaded CI machine is
/// slow; a passing test never waits for it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a read did not produce the reply it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The server closed the connection; `partial` is what had arrived.
    Closed { partial: Vec<u8> },
    /// Nothing completed the reply within the timeout.
    Timeout { partial: Vec<u8> },
    /// The socket failed in another way.
    Io(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Closed { partial } => write!(f, "closed after {}", show(partial)),
            ReadError::Timeout { partial } => write!(f, "timed out after {}", show(partial)),
            ReadError::Io(err) => write!(f, "socket error: {err}"),
        }
    }
}

/// One client connection, with the bytes read past the last reply kept for
/// the next one.
pub struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Conn {
    /// Connects to `addr`.
    ///
    /// # Panics
    ///
    /// If the connection is refused: the server was supposed to be up.
    pub fn connect(addr: SocketAddr) -> Conn {
        Conn::try_connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    /// Connects to `addr`, reporting a refusal instead of panicking.
    ///
    /// # Errors
    ///
    /// The connect or socket-option error.
    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        Ok(Conn {
            stream,
            pending: Vec::new(),
        })
    }

    /// Asks for `stats` until field `name` satisfies `done`, and answers its value. Each
    /// round trip paces the next; a server that already did the work answers at once.
    ///
    /// # Panics
    ///
    /// If the field still does not satisfy `done` after [`STAT_WAIT`].
    pub fn wait_for_stat(&mut self, name: &str, done: impl Fn(u64) -> bool) -> u64 {
        let deadline = Instant::now() + STAT_WAIT;
        loop {
            let value = self.stat(name);
            if done(value) {
                return value;
            }
            assert!(Instant::now() < deadline, "stats {name} stayed at {value}");
        }
    }

    /// One field of `stats` as a number, for tests that watch the server's counters.
    ///
    /// # Panics
    ///
    /// If the field is missing or not a number.
    pub fn stat(&mut self, name: &str) -> u64 {
        let reply = String::from_utf8(self.request(b"stats\r\n")).expect("stats is text");
        let prefix = format!("STAT {name} ");
        reply
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in stats:\n{reply}"))
    }

    /// Sends `bytes` as they are, with no line ending added.
    ///
    /// # Panics
    ///
    /// If the write fails.
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .unwrap_or_else(|e| panic!("send {}: {e}", show(bytes)));
    }

    /// Sends `bytes`, reporting a failure instead of panicking, for scripts
    /// that record what happened rather than stop at the first surprise.
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends a request and returns its one reply.
    ///
    /// # Panics
    ///
    /// If the reply does not arrive complete.
    pub fn request(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.send(bytes);
        self.read_reply()
    }

    /// Sends a pipeline and returns its `n` replies, concatenated.
    ///
    /// # Panics
    ///
    /// If fewer than `n` replies arrive.
    pub fn request_n(&mut self, bytes: &[u8], n: usize) -> Vec<u8> {
        self.send(bytes);
        (0..n).flat_map(|_| self.read_reply()).collect()
    }

    /// Reads one reply, framed by what memcached sends.
    ///
    /// # Panics
    ///
    /// If the reply does not arrive complete.
    pub fn read_reply(&mut self) -> Vec<u8> {
        self.try_read_reply()
            .unwrap_or_else(|e| panic!("reading a reply: {e}"))
    }

    /// Reads one reply, framed by what memcached sends.
    ///
    /// # Errors
    ///
    /// [`ReadError`] if the connection closes or stalls first.
    pub fn try_read_reply(&mut self) -> Result<Vec<u8>, ReadError> {
        self.read_until(reply_len)
    }

    /// Reads one reply framed by `complete`, which returns the length of the
    /// first whole reply in the bytes so far: for protocols other than the
    /// text one, such as the binary protocol's length-prefixed packets.
    ///
    /// # Errors
    ///
    /// [`ReadError`] if the connection closes or stalls first.
    pub fn try_read_framed(
        &mut self,
        complete: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<Vec<u8>, ReadError> {
        self.read_until(complete)
    }

    /// Reads exactly `len` bytes, for replies whose size the test knows.
    ///
    /// # Panics
    ///
    /// If fewer than `len` bytes arrive.
    pub fn read_exact_reply(&mut self, len: usize) -> Vec<u8> {
        self.read_until(|buf| (buf.len() >= len).then_some(len))
            .unwrap_or_else(|e| panic!("reading {len} bytes: {e}"))
    }

    /// Asserts that the server closes the connection without sending more.
    ///
    /// # Panics
    ///
    /// If bytes arrive or the connection stays open for the read timeout.
    pub fn expect_closed(&mut self) {
        if let Err(bytes) = self.try_expect_closed() {
            panic!("expected the connection to close, got {}", show(&bytes));
        }
    }

    /// Waits for the server to close the connection.
    ///
    /// # Errors
    ///
    /// The bytes that arrived instead, if any, when the connection did not
    /// close within the read timeout.
    pub fn try_expect_closed(&mut self) -> Result<(), Vec<u8>> {
        match self.read_until(|_| None) {
            Err(ReadError::Closed { partial }) if partial.is_empty() => Ok(()),
            Err(ReadError::Closed { partial }) | Err(ReadError::Timeout { partial }) => {
                Err(partial)
            }
            Err(ReadError::Io(e)) => Err(format!("<socket error: {e}>").into_bytes()),
            Ok(bytes) => Err(bytes),
        }
    }

    /// Asserts that nothing arrives within `ms` milliseconds and that the
    /// connection stays open.
    ///
    /// # Panics
    ///
    /// If bytes arrive or the connection closes.
    pub fn expect_silence(&mut self, ms: u64) {
        if let Err(what) = self.try_expect_silence(ms) {
            panic!("expected silence, got {what}");
        }
    }

    /// Checks that nothing arrives within `ms` milliseconds. This is the only
    /// wait of a fixed length in the harness: absence can be shown no other way.
    ///
    /// # Errors
    ///
    /// A description of what arrived, or that the connection closed.
    pub fn try_expect_silence(&mut self, ms: u64) -> Result<(), String> {
        if !self.pending.is_empty() {
            return Err(show(&std::mem::take(&mut self.pending)));
        }
        let outcome = self.read_for(Duration::from_millis(ms));
        self.stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("restore read timeout");
        outcome
    }

    /// One read bounded by `window`, as [`Conn::try_expect_silence`] wants.
    fn read_for(&mut self, window: Duration) -> Result<(), String> {
        self.stream
            .set_read_timeout(Some(window))
            .expect("set read timeout");
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err("the connection closed".to_string()),
            Ok(n) => Err(show(&chunk[..n])),
            Err(e) if is_timeout(&e) => Ok(()),
            Err(e) => Err(format!("socket error: {e}")),
        }
    }

    /// Reads until `complete` finds a whole reply at the front of the
    /// buffer, then returns it and keeps the rest for the next call.
    fn read_until(
        &mut self,
        complete: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<Vec<u8>, ReadError> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            if let Some(len) = complete(&self.pending) {
                let rest = self.pending.split_off(len);
                return Ok(std::mem::replace(&mut self.pending, rest));
            }
            self.fill(deadline)?;
        }
    }

    /// Appends whatever the next read brings to the pending bytes.
    fn fill(&mut self, deadline: Instant) -> Result<(), ReadError> {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(ReadError::Closed {
                partial: std::mem::take(&mut self.pending),
            }),
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(e) if is_timeout(&e) || Instant::now() >= deadline => Err(ReadError::Timeout {
                partial: std::mem::take(&mut self.pending),
            }),
            Err(e) if is_reset(&e) => Err(ReadError::Closed {
                partial: std::mem::take(&mut self.pending),
            }),
            Err(e) => Err(ReadError::Io(e.to_string())),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// Bytes as a Rust byte-string literal would show them, shortened when
/// long, for failure messages a person can read.
pub fn show(bytes: &[u8]) -> String {
    const LIMIT: usize = 300;
    let escaped: String = bytes
        .iter()
        .take(LIMIT)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    match bytes.len() {
        n if n > LIMIT => format!("b\"{escaped}\"... ({n} bytes)"),
        _ => format!("b\"{escaped}\""),
    }
}
