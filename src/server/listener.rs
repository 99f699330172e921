//! Listening sockets, accepted streams, and the switch to an unprivileged user.
//!
//! TCP listeners are made with `socket2` so that the backlog (`-b`) and `SO_REUSEADDR`
//! are memcached's; a unix socket replaces TCP when `-s` is given, as in memcached.
//! Binding happens before the worker threads start, so a port in use or a bad path is
//! reported at start and nothing runs half-configured.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{Config, Listen};

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP on one address.
    Tcp(TcpListener),
    /// A unix socket at a path.
    Unix(UnixListener, PathBuf),
}

/// An accepted connection.
#[derive(Debug)]
pub enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A unix-socket connection.
    Unix(UnixStream),
}

/// Where a connection came from or a listener listens, as `stats conns` writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `tcp:ADDR:PORT`, or `tcp6:[ADDR]:PORT`
    Tcp(SocketAddr),
    /// `unix:PATH`
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr @ SocketAddr::V4(_)) => write!(f, "tcp:{addr}"),
            Endpoint::Tcp(addr @ SocketAddr::V6(_)) => write!(f, "tcp6:{addr}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Binds every listener the configuration asks for.
///
/// # Errors
/// An address in use, a permission problem, or a bad unix socket path.
pub fn bind(config: &Config) -> io::Result<Vec<Listener>> {
    match &config.listen {
        Listen::Tcp(addrs) => addrs
            .iter()
            .map(|addr| bind_tcp(*addr, config.backlog).map(Listener::Tcp))
            .collect(),
        Listen::Unix { path, mask } => Ok(vec![bind_unix(path, *mask)?]),
    }
}

fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

fn bind_unix(path: &PathBuf, mask: u32) -> io::Result<Listener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mask))?;
    Ok(Listener::Unix(listener, path.clone()))
}

impl Listener {
    /// Accepts one connection; `WouldBlock` when none is waiting.
    pub fn accept(&self) -> io::Result<(Stream, Endpoint)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept()?;
                stream.set_nodelay(true)?;
                Ok((Stream::Tcp(stream), Endpoint::Tcp(peer)))
            }
            Listener::Unix(l, path) => {
                let (stream, _) = l.accept()?;
                Ok((Stream::Unix(stream), Endpoint::Unix(path.clone())))
            }
        }
    }

    /// Where this listener listens.
    pub fn endpoint(&self) -> Endpoint {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(addr) => Endpoint::Tcp(addr),
                Err(_) => Endpoint::Unix(PathBuf::new()),
            },
            Listener::Unix(_, path) => Endpoint::Unix(path.clone()),
        }
    }

    /// The socket's file descriptor, as `stats conns` numbers it.
    pub fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    /// Registers for readability (new connections).
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(registry, token, Interest::READABLE),
            Listener::Unix(l, _) => l.register(registry, token, Interest::READABLE),
        }
    }
}

impl Stream {
    /// The socket's file descriptor.
    pub fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    /// Registers for reads and writes (edge-triggered).
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        match self {
            Stream::Tcp(s) => s.register(registry, token, interest),
            Stream::Unix(s) => s.register(registry, token, interest),
        }
    }

    /// Stops polling this stream.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
        }
    }

    /// The local address, as `stats conns` reports it for `listen_addr`.
    pub fn local_endpoint(&self) -> Option<Endpoint> {
        match self {
            Stream::Tcp(s) => s.local_addr().ok().map(Endpoint::Tcp),
            Stream::Unix(_) => None,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// When running as root and a user was named with `-u`, switches to that user's group
/// and user id, as memcached does after binding its ports.
///
/// # Errors
/// The user does not exist, or the switch is refused.
pub fn drop_privileges(user: Option<&str>) -> io::Result<()> {
    let Some(user) = user else { return Ok(()) };
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let (uid, gid) = lookup_user(user)?;
    // SAFETY: plain system calls on integer ids; failure is reported through errno.
    let failed = unsafe { libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 };
    // SAFETY: as above.
    if failed || unsafe { libc::setuid(uid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn lookup_user(user: &str) -> io::Result<(libc::uid_t, libc::gid_t)> {
    let name = std::ffi::CString::new(user)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "user name contains NUL"))?;
    // SAFETY: zeroed passwd is a valid out-parameter; getpwnam_r writes into it and into
    // `buf`, whose length we pass, and `found` is set to it or to null.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        if found.is_null() {
            let msg = format!("can't find the user {user} to switch to");
            return Err(io::Error::new(io::ErrorKind::NotFound, msg));
        }
        Ok((pwd.pw_uid, pwd.pw_gid))
    }
}
