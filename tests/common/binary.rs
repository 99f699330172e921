//! Binary-protocol packets for black-box tests: build a request ([`Req`]),
//! frame and decode a response ([`Reply`]), and read packets from a [`Conn`]
//! ([`read_packet`]).
//!
//! Requests are written with the crate's own header encoder, but replies are
//! decoded here, independently of the server's code, so that a fault in the
//! server's encoder cannot hide behind the same fault in the test's decoder.
//! It checks no semantics: what a reply should hold is for each test to say.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use corecache::protocol::binary::{Header, Opcode, Status, HEADER_LEN, REQUEST_MAGIC};

use super::conn::{show, Conn, ReadError};

/// The magic byte of every response packet.
pub const RESPONSE_MAGIC: u8 = 0x81;

/// The INCREMENT/DECREMENT exptime that means "do not create the item".
pub const NO_CREATE: u32 = 0xffff_ffff;

/// One request packet, built field by field; malformed ones too, since the
/// builder checks nothing.
#[derive(Clone, Debug)]
pub struct Req {
    magic: u8,
    opcode: u8,
    opaque: u32,
    cas: u64,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Req {
    /// An empty request for `opcode`, opaque 0 and no CAS.
    pub fn new(opcode: Opcode) -> Req {
        Req::raw(opcode.code())
    }

    /// An empty request with any command byte, unknown ones included.
    pub fn raw(opcode: u8) -> Req {
        Req {
            magic: REQUEST_MAGIC,
            opcode,
            opaque: 0,
            cas: 0,
            extras: Vec::new(),
            key: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl AsRef<[u8]>) -> Req {
        self.key = key.as_ref().to_vec();
        self
    }

    /// Sets the extras.
    pub fn extras(mut self, extras: impl AsRef<[u8]>) -> Req {
        self.extras = extras.as_ref().to_vec();
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl AsRef<[u8]>) -> Req {
        self.value = value.as_ref().to_vec();
        self
    }

    /// Sets the client cookie the reply must echo.
    pub fn opaque(mut self, opaque: u32) -> Req {
        self.opaque = opaque;
        self
    }

    /// Sets the CAS precondition.
    pub fn cas(mut self, cas: u64) -> Req {
        self.cas = cas;
        self
    }

    /// Replaces the magic byte, to send a malformed packet.
    pub fn magic(mut self, magic: u8) -> Req {
        self.magic = magic;
        self
    }

    /// The command, for matching the reply.
    pub fn opcode(&self) -> Opcode {
        Opcode::from_u8(self.opcode)
    }

    /// The packet's bytes: the 24-byte header, then extras, key and value.
    ///
    /// # Panics
    ///
    /// If the key is over 65,535 bytes or the extras over 255.
    pub fn bytes(&self) -> Vec<u8> {
        let body = self.extras.len() + self.key.len() + self.value.len();
        let header = Header {
            magic: self.magic,
            opcode: Opcode::from_u8(self.opcode),
            key_len: u16::try_from(self.key.len()).expect("key fits in 16 bits"),
            extras_len: u8::try_from(self.extras.len()).expect("extras fit in 8 bits"),
            data_type: 0,
            vbucket_or_status: 0,
            body_len: u32::try_from(body).expect("body fits in 32 bits"),
            opaque: self.opaque,
            cas: self.cas,
        };
        let mut out = Vec::with_capacity(HEADER_LEN + body);
        header.write(&mut out);
        out.extend_from_slice(&self.extras);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.value);
        out
    }
}

/// The bytes of several requests sent back to back, as one pipeline.
pub fn pipeline(reqs: &[Req]) -> Vec<u8> {
    reqs.iter().flat_map(Req::bytes).collect()
}

/// A GET-family request (GET, GETQ, GETK, GETKQ) for `key`.
pub fn get(opcode: Opcode, key: impl AsRef<[u8]>) -> Req {
    Req::new(opcode).key(key)
}

/// A SET, ADD or REPLACE (or a quiet form) with flags and exptime extras.
pub fn store(opcode: Opcode, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Req {
    store_with(opcode, key, value, 0, 0)
}

/// [`store`] with the flags and exptime given.
pub fn store_with(
    opcode: Opcode,
    key: impl AsRef<[u8]>,
    value: impl AsRef<[u8]>,
    flags: u32,
    exptime: u32,
) -> Req {
    Req::new(opcode)
        .extras([flags.to_be_bytes(), exptime.to_be_bytes()].concat())
        .key(key)
        .value(value)
}

/// An INCREMENT or DECREMENT (or a quiet form) with delta, initial value and
/// exptime extras.
pub fn arith(opcode: Opcode, key: impl AsRef<[u8]>, delta: u64, initial: u64, exptime: u32) -> Req {
    let extras = [
        &delta.to_be_bytes()[..],
        &initial.to_be_bytes(),
        &exptime.to_be_bytes(),
    ]
    .concat();
    Req::new(opcode).extras(extras).key(key)
}

/// A TOUCH or GAT-family request setting the exptime.
pub fn touch(opcode: Opcode, key: impl AsRef<[u8]>, exptime: u32) -> Req {
    Req::new(opcode).extras(exptime.to_be_bytes()).key(key)
}

/// A FLUSH or FLUSHQ, with the 4-byte delay extra when `delay` is given.
pub fn flush(opcode: Opcode, delay: Option<u32>) -> Req {
    let req = Req::new(opcode);
    match delay {
        Some(delay) => req.extras(delay.to_be_bytes()),
        None => req,
    }
}

/// A SASL_AUTH with mechanism PLAIN for `user` and `password`.
pub fn sasl_plain(user: &str, password: &str) -> Req {
    Req::new(Opcode::SaslAuth)
        .key("PLAIN")
        .value(format!("\0{user}\0{password}"))
}

/// The length of the first whole response packet in `buf`, or `None` while
/// more bytes are needed.
pub fn packet_len(buf: &[u8]) -> Option<usize> {
    let body = u32::from_be_bytes(buf.get(8..12)?.try_into().ok()?);
    let len = HEADER_LEN + usize::try_from(body).ok()?;
    (buf.len() >= len).then_some(len)
}

/// One response packet, every field decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    /// 0x81 for a response.
    pub magic: u8,
    /// The command byte, echoed from the request.
    pub opcode: u8,
    /// Always 0 from memcached.
    pub data_type: u8,
    /// The status, as on the wire ([`Status::code`]).
    pub status: u16,
    /// The request's cookie, echoed.
    pub opaque: u32,
    /// The item's CAS unique, or 0.
    pub cas: u64,
    /// The flags of a get hit, else empty.
    pub extras: Vec<u8>,
    /// The key, for the K opcodes and STAT.
    pub key: Vec<u8>,
    /// The value, an error's text, or a STAT's value.
    pub value: Vec<u8>,
}

impl Reply {
    /// Decodes one whole packet.
    ///
    /// # Panics
    ///
    /// If the lengths in the header overrun the bytes given.
    pub fn decode(bytes: &[u8]) -> Reply {
        let be16 = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        let (key_len, extras_len) = (usize::from(be16(2)), usize::from(bytes[4]));
        let body = &bytes[HEADER_LEN..];
        assert!(
            key_len + extras_len <= body.len(),
            "overrun: {}",
            show(bytes)
        );
        let (extras, rest) = body.split_at(extras_len);
        let (key, value) = rest.split_at(key_len);
        Reply {
            magic: bytes[0],
            opcode: bytes[1],
            data_type: bytes[5],
            status: be16(6),
            opaque: be32(12),
            cas: u64::from_be_bytes(bytes[16..24].try_into().unwrap()),
            extras: extras.to_vec(),
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    /// The flags of a get hit, from its 4-byte extras.
    pub fn flags(&self) -> Option<u32> {
        Some(u32::from_be_bytes(self.extras.as_slice().try_into().ok()?))
    }

    /// The new value an INCREMENT or DECREMENT answers, as 8 big-endian bytes.
    pub fn counter(&self) -> Option<u64> {
        Some(u64::from_be_bytes(self.value.as_slice().try_into().ok()?))
    }

    /// Whether this is the empty STAT packet that ends a group.
    pub fn is_stat_end(&self) -> bool {
        self.key.is_empty() && self.value.is_empty()
    }

    /// Asserts this is a response to `opcode` with `status`, echoing `opaque`.
    ///
    /// # Panics
    ///
    /// On any of the three differing, or a wrong magic byte.
    pub fn assert_head(&self, opcode: Opcode, status: Status, opaque: u32) {
        let want = (RESPONSE_MAGIC, opcode.code(), status.code(), opaque);
        let got = (self.magic, self.opcode, self.status, self.opaque);
        assert_eq!(got, want, "(magic, opcode, status, opaque) of {self:?}");
    }

    /// Asserts this is memcached's error packet for `status`: its text as the
    /// body, no extras, no key and CAS 0.
    ///
    /// # Panics
    ///
    /// On any field differing.
    pub fn assert_error(&self, opcode: Opcode, status: Status, opaque: u32) {
        self.assert_head(opcode, status, opaque);
        let body = (&self.extras[..], &self.key[..], &self.value[..], self.cas);
        assert_eq!(
            body,
            (&[][..], &[][..], status.text().as_bytes(), 0),
            "{self:?}"
        );
    }

    /// Asserts an empty-bodied success, such as a store's, DELETE's or NOOP's.
    ///
    /// # Panics
    ///
    /// On any field differing or a body present.
    pub fn assert_ok(&self, opcode: Opcode, opaque: u32) {
        self.assert_head(opcode, Status::NoError, opaque);
        assert!(self.extras.is_empty() && self.key.is_empty() && self.value.is_empty());
    }

    /// Asserts a get hit: the flags as extras, the key (empty for opcodes that
    /// do not echo it), the value and a non-zero CAS.
    ///
    /// # Panics
    ///
    /// On any field differing.
    pub fn assert_hit(&self, opcode: Opcode, opaque: u32, flags: u32, key: &[u8], value: &[u8]) {
        self.assert_head(opcode, Status::NoError, opaque);
        assert_eq!(self.flags(), Some(flags), "flags of {self:?}");
        assert_eq!(show(&self.key), show(key), "key of {self:?}");
        assert_eq!(show(&self.value), show(value), "value of {self:?}");
        assert_ne!(self.cas, 0, "a hit carries the item's CAS: {self:?}");
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Reply {{ magic: {:#04x}, opcode: {:#04x}, status: {:#06x}, opaque: {}, cas: {}, \
             extras: {}, key: {}, value: {} }}",
            self.magic,
            self.opcode,
            self.status,
            self.opaque,
            self.cas,
            show(&self.extras),
            show(&self.key),
            show(&self.value)
        )
    }
}

/// Reads one response packet.
///
/// # Errors
///
/// [`ReadError`] if the connection closes or stalls first.
pub fn try_read_packet(conn: &mut Conn) -> Result<Reply, ReadError> {
    conn.try_read_framed(packet_len)
        .map(|bytes| Reply::decode(&bytes))
}

/// Reads one response packet.
///
/// # Panics
///
/// If no whole packet arrives.
pub fn read_packet(conn: &mut Conn) -> Reply {
    try_read_packet(conn).unwrap_or_else(|e| panic!("reading a binary reply: {e}"))
}

/// Sends one request and reads its one reply.
///
/// # Panics
///
/// If no whole reply arrives.
pub fn call(conn: &mut Conn, req: &Req) -> Reply {
    conn.send(&req.bytes());
    read_packet(conn)
}

/// Sends `req` and asserts memcached's error packet for `status` comes back,
/// echoing the request's opcode and opaque.
///
/// # Panics
///
/// If the reply differs or does not arrive.
pub fn call_refused(conn: &mut Conn, req: &Req, status: Status) {
    call(conn, req).assert_error(req.opcode(), status, req.opaque);
}

/// Sends `req`, asserts an empty-bodied success echoing its opcode and opaque,
/// and returns the reply, for its CAS.
///
/// # Panics
///
/// If the reply differs or does not arrive.
pub fn call_ok(conn: &mut Conn, req: &Req) -> Reply {
    let reply = call(conn, req);
    reply.assert_ok(req.opcode(), req.opaque);
    reply
}

/// Sends requests as one write and reads `n` replies.
///
/// # Panics
///
/// If fewer than `n` replies arrive.
pub fn call_n(conn: &mut Conn, reqs: &[Req], n: usize) -> Vec<Reply> {
    conn.send(&pipeline(reqs));
    (0..n).map(|_| read_packet(conn)).collect()
}

/// Reads STAT packets up to and including the empty one that ends a group.
///
/// # Panics
///
/// If the group does not end, or a packet is not a successful STAT.
pub fn read_stats(conn: &mut Conn) -> Vec<Reply> {
    let mut stats = Vec::new();
    loop {
        let reply = read_packet(conn);
        assert_eq!(
            (reply.opcode, reply.status),
            (Opcode::Stat.code(), 0),
            "{reply:?}"
        );
        let end = reply.is_stat_end();
        stats.push(reply);
        if end {
            return stats;
        }
    }
}

/// Makes password file names unique within this test process.
static PWDB_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A SASL password file (`user:password` lines) that lives as long as the
/// value, for `--sasl-pwdb`.
pub struct PasswordFile {
    path: PathBuf,
}

impl PasswordFile {
    /// Writes `lines`, one a line, to a new file in the temporary directory.
    ///
    /// # Panics
    ///
    /// If the file cannot be written.
    pub fn new(lines: &[&str]) -> PasswordFile {
        let seq = PWDB_SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("corecache-test-pwdb-{}-{seq}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        PasswordFile { path }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as a command-line argument.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("temporary paths are UTF-8")
    }
}

impl Drop for PasswordFile {
    fn drop(&mut self) {
        // Already gone is fine: the file only has to outlive the server.
        std::fs::remove_file(&self.path).ok();
    }
}
