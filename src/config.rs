//! The command line, with memcached's flag names and defaults, and the validated
//! [`Config`] built from it once at start.
//!
//! Every value is checked here, before anything binds or allocates: a bad value is
//! refused with a one-line reason (the binary exits with code 64, `EX_USAGE`, as
//! memcached does), so the server never starts half-configured. Nothing else in the
//! crate reads flags or environment; the rest receives a `Config`.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::{ArgAction, Parser};
use thiserror::Error;

use crate::storage::{SlabConfig, HEADER_SIZE};

/// The default TCP port, memcached's.
pub const DEFAULT_PORT: u16 = 11211;
/// The default item memory budget in megabytes.
pub const DEFAULT_MEMORY_MB: usize = 64;
/// The largest page; smaller pages are used when a shard's share of memory is small.
pub const MAX_PAGE_SIZE: usize = 1 << 20;
/// The smallest page a shard is given.
pub const MIN_PAGE_SIZE: usize = 64 << 10;
/// How many pages each shard should get at least. A size class needs a page of its own
/// before it can hold anything, and there are a few dozen classes: with fewer pages
/// than several times that, classes keep taking pages from each other and each move
/// evicts a whole page, so the cache holds little.
pub const PAGES_PER_SHARD: usize = 256;
/// The smallest `-I`, as in memcached.
pub const ITEM_SIZE_MIN: usize = 1024;
/// The largest `-I`, as in memcached.
pub const ITEM_SIZE_LIMIT: usize = 1 << 30;

/// The command line, parsed but not yet checked.
#[derive(Parser, Debug)]
#[command(
    name = "corecache",
    version,
    about = "A memcached-compatible in-memory cache server: one event loop and one shard per core."
)]
pub struct Args {
    /// TCP port to listen on.
    #[arg(short = 'p', long = "port", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Interfaces to listen on: addresses or host names, comma separated.
    #[arg(short = 'l', long = "listen", default_value = "127.0.0.1")]
    pub listen: String,

    /// UDP port; UDP is not served, so only 0 (off) is accepted.
    #[arg(short = 'U', long = "udp-port", default_value_t = 0)]
    pub udp_port: u16,

    /// Unix socket path to listen on (turns off TCP).
    #[arg(short = 's', long = "unix-socket")]
    pub unix_socket: Option<PathBuf>,

    /// Access mask for the unix socket, in octal.
    #[arg(short = 'a', long = "unix-mask", default_value = "700")]
    pub unix_mask: String,

    /// Item memory in megabytes.
    #[arg(short = 'm', long = "memory-limit", default_value_t = DEFAULT_MEMORY_MB)]
    pub memory_limit: usize,

    /// Maximum simultaneous connections.
    #[arg(short = 'c', long = "conn-limit", default_value_t = 1024)]
    pub conn_limit: usize,

    /// Worker threads, each with its own event loop and shard [default: number of cores].
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,

    /// Largest item (key, value and header), with an optional k or m suffix.
    #[arg(short = 'I', long = "max-item-size", default_value = "1m")]
    pub max_item_size: String,

    /// Answer "out of memory" when full instead of evicting items.
    #[arg(short = 'M', long = "disable-evictions")]
    pub disable_evictions: bool,

    /// Do not report CAS values (gets answers 0).
    #[arg(short = 'C', long = "disable-cas")]
    pub disable_cas: bool,

    /// Factor between the chunk sizes of consecutive slab classes.
    #[arg(short = 'f', long = "slab-growth-factor", default_value_t = 1.25)]
    pub growth_factor: f64,

    /// Smallest space for key, value and flags in the first slab class, in bytes.
    #[arg(short = 'n', long = "slab-min-size", default_value_t = 48)]
    pub slab_min_size: usize,

    /// Requests served from one connection before the worker turns to the others.
    #[arg(short = 'R', long = "max-reqs-per-event", default_value_t = 20)]
    pub max_reqs_per_event: usize,

    /// Backlog of the listening sockets.
    #[arg(short = 'b', long = "listen-backlog", default_value_t = 1024)]
    pub listen_backlog: i32,

    /// Allow the `shutdown` command.
    #[arg(short = 'A', long = "enable-shutdown")]
    pub enable_shutdown: bool,

    /// Refuse the `flush_all` command.
    #[arg(short = 'F', long = "disable-flush-all")]
    pub disable_flush_all: bool,

    /// Log more: -v warnings and connections, -vv every command and reply, -vvv internals.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// When started as root, switch to this user after binding.
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,

    /// Protocols to accept: auto (the first byte decides), ascii (text and meta only) or
    /// binary.
    #[arg(short = 'B', long = "protocol", value_enum, default_value_t = Protocols::Auto)]
    pub protocol: Protocols,

    /// Require SASL authentication (binary protocol only, mechanism PLAIN).
    #[arg(short = 'S', long = "enable-sasl")]
    pub enable_sasl: bool,

    /// SASL password file, lines of user:password [default: $MEMCACHED_SASL_PWDB].
    #[arg(long = "sasl-pwdb")]
    pub sasl_pwdb: Option<PathBuf>,

    /// Extended options, comma separated: idle_timeout=SECS, read_buf_mem_limit=MB,
    /// slab_chunk_max=SIZE, hashpower=N, modern, no_modern.
    #[arg(short = 'o', long = "extended", action = ArgAction::Append)]
    pub extended: Vec<String>,
}

/// Which protocols a connection may speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocols {
    /// Text and meta, or binary when a connection's first byte is 0x80.
    Auto,
    /// Text and meta only.
    Ascii,
    /// Binary only.
    Binary,
}

/// The users and passwords SASL PLAIN accepts. Passwords are compared in constant time
/// and never printed: `Debug` shows only the user names.
#[derive(Clone)]
pub struct PasswordDb {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl PasswordDb {
    /// Reads `user:password` lines, as memcached's `MEMCACHED_SASL_PWDB` file holds them;
    /// blank lines and lines starting with `#` are skipped.
    ///
    /// # Errors
    /// The file cannot be read, or a line has no `:`.
    pub fn parse(text: &str) -> Result<PasswordDb, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, password) = line
                .split_once(':')
                .ok_or_else(|| format!("line {} has no user:password", n + 1))?;
            entries.push((user.as_bytes().to_vec(), password.as_bytes().to_vec()));
        }
        Ok(PasswordDb { entries })
    }

    /// Whether `user` exists with exactly `password`. Every entry is compared, each in
    /// constant time, so the time taken says nothing about which part was wrong.
    pub fn check(&self, user: &[u8], password: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let mut found = subtle::Choice::from(0);
        for (u, p) in &self.entries {
            found |= u.as_slice().ct_eq(user) & p.as_slice().ct_eq(password);
        }
        found.into()
    }
}

impl std::fmt::Debug for PasswordDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users = self.entries.iter().map(|(u, _)| String::from_utf8_lossy(u));
        f.debug_struct("PasswordDb")
            .field("users", &users.collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why the command line was refused. Each message is one line.
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    /// clap refused the syntax (unknown flag, not a number...).
    #[error("{0}")]
    Syntax(String),
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
    /// An address could not be resolved.
    #[error("cannot listen on {addr}: {reason}")]
    Address {
        /// The address as given.
        addr: String,
        /// The resolver's answer.
        reason: String,
    },
}

/// Where the server accepts connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// TCP on these addresses.
    Tcp(Vec<SocketAddr>),
    /// A unix socket at this path, created with this mode.
    Unix {
        /// The socket's path.
        path: PathBuf,
        /// Its permission bits.
        mask: u32,
    },
}

/// The validated settings the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to accept connections.
    pub listen: Listen,
    /// The TCP port (also reported by `stats settings` when a unix socket is used).
    pub port: u16,
    /// Item memory in bytes.
    pub memory_limit: usize,
    /// Maximum simultaneous connections.
    pub max_connections: usize,
    /// Worker threads.
    pub threads: usize,
    /// Slab, item and index settings for every shard.
    pub slab: SlabConfig,
    /// Requests served from one connection per event-loop turn.
    pub reqs_per_event: usize,
    /// Listen backlog.
    pub backlog: i32,
    /// `shutdown` allowed.
    pub shutdown_enabled: bool,
    /// `flush_all` allowed.
    pub flush_enabled: bool,
    /// 0 to 3: how much is logged.
    pub verbosity: u8,
    /// User to switch to when started as root.
    pub user: Option<String>,
    /// Seconds a connection may stay idle before it is closed; 0 means forever.
    pub idle_timeout: u32,
    /// Bytes all connections' read buffers may hold together (`-o read_buf_mem_limit`,
    /// in megabytes); 0 means no limit. A connection whose buffer would grow past it is
    /// answered `SERVER_ERROR out of memory reading request` and closed, as memcached
    /// closes one it cannot give a read buffer, so one client sending huge values
    /// slowly cannot make the server's memory swell.
    pub read_buf_mem_limit: usize,
    /// Which protocols connections may speak (binary only when SASL is on).
    pub protocols: Protocols,
    /// With `-S`: the accepted users; every binary command needs authentication first.
    pub sasl: Option<PasswordDb>,
}

/// Extended `-o` settings.
#[derive(Debug, Default)]
struct Extended {
    idle_timeout: u32,
    read_buf_mem_limit: usize,
    slab_chunk_max: Option<usize>,
    hashpower: Option<u8>,
}

impl Config {
    /// Parses and validates a command line (the first item is the program name).
    ///
    /// # Errors
    /// Any flag clap rejects or any value out of range, with a one-line reason. `--help`
    /// and `--version` also come back as an error whose text is the help or version;
    /// [`Config::exit_code`] tells them apart.
    pub fn from_args<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args = Args::try_parse_from(args)?;
        Config::from_parsed(args).map_err(|e| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{e}\n"))
        })
    }

    /// The exit code for a refused command line: 0 for help and version, 64 otherwise.
    pub fn exit_code(err: &clap::Error) -> i32 {
        use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
        match err.kind() {
            DisplayHelp | DisplayVersion => 0,
            _ => 64,
        }
    }

    /// Validates parsed arguments.
    ///
    /// # Errors
    /// A value out of range, with a one-line reason.
    pub fn from_parsed(args: Args) -> Result<Config, ConfigError> {
        let ext = parse_extended(&args.extended)?;
        let threads = validate_threads(args.threads)?;
        let memory_limit = validate_memory(args.memory_limit)?;
        let item_size_max = parse_item_size(&args.max_item_size, memory_limit)?;
        check_share(memory_limit, threads, item_size_max)?;
        let slab = slab_config(&args, &ext, memory_limit, threads, item_size_max)?;
        check_positive(args.conn_limit, "connection limit (-c)")?;
        check_positive(args.max_reqs_per_event, "requests per event (-R)")?;
        if args.udp_port != 0 {
            return Err(invalid("UDP is not supported: -U must be 0"));
        }
        let sasl = sasl(&args)?;
        let protocols = if sasl.is_some() {
            Protocols::Binary
        } else {
            args.protocol
        };
        Ok(Config {
            listen: listen(&args)?,
            port: args.port,
            memory_limit,
            max_connections: args.conn_limit,
            threads,
            slab,
            reqs_per_event: args.max_reqs_per_event,
            backlog: args.listen_backlog,
            shutdown_enabled: args.enable_shutdown,
            flush_enabled: !args.disable_flush_all,
            verbosity: args.verbose.min(3),
            user: args.user,
            idle_timeout: ext.idle_timeout,
            read_buf_mem_limit: ext.read_buf_mem_limit,
            protocols,
            sasl,
        })
    }
}

/// The password database, when `-S` asks for SASL: from `--sasl-pwdb` or the file
/// `MEMCACHED_SASL_PWDB` names, as memcached reads it.
fn sasl(args: &Args) -> Result<Option<PasswordDb>, ConfigError> {
    if !args.enable_sasl {
        return Ok(None);
    }
    if args.protocol == Protocols::Ascii {
        return Err(invalid(
            "SASL (-S) needs the binary protocol; -B ascii refuses it",
        ));
    }
    let path = args
        .sasl_pwdb
        .clone()
        .or_else(|| std::env::var_os("MEMCACHED_SASL_PWDB").map(PathBuf::from))
        .ok_or_else(|| invalid("-S needs a password file: --sasl-pwdb or MEMCACHED_SASL_PWDB"))?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    let db = PasswordDb::parse(&text)
        .map_err(|e| invalid(format!("bad password file {}: {e}", path.display())))?;
    Ok(Some(db))
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

fn check_positive(value: usize, what: &str) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(format!("{what} must be greater than 0")));
    }
    Ok(())
}

fn validate_threads(threads: Option<usize>) -> Result<usize, ConfigError> {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    let threads = threads.unwrap_or(cores);
    check_positive(threads, "number of threads (-t)")?;
    if threads > 256 {
        return Err(invalid("number of threads (-t) must be at most 256"));
    }
    Ok(threads)
}

fn validate_memory(mb: usize) -> Result<usize, ConfigError> {
    check_positive(mb, "memory limit (-m)")?;
    mb.checked_mul(1 << 20)
        .ok_or_else(|| invalid("memory limit (-m) is too large"))
}

/// Parses a size with an optional k or m suffix (either case), as memcached's `-I` does.
pub fn parse_size(text: &str) -> Option<usize> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 1 << 10),
        (i, 'm' | 'M') => (&text[..i], 1 << 20),
        _ => (text, 1),
    };
    digits.parse::<usize>().ok()?.checked_mul(unit)
}

fn parse_item_size(text: &str, memory: usize) -> Result<usize, ConfigError> {
    let size =
        parse_size(text).ok_or_else(|| invalid(format!("cannot parse item size (-I) {text:?}")))?;
    if size < ITEM_SIZE_MIN {
        return Err(invalid("item max size (-I) cannot be less than 1024 bytes"));
    }
    if size > ITEM_SIZE_LIMIT {
        return Err(invalid("item max size (-I) cannot be larger than 1024m"));
    }
    if size > memory / 2 {
        return Err(invalid(
            "item max size (-I) cannot be larger than half the memory limit (-m)",
        ));
    }
    Ok(size)
}

/// Each worker's shard holds `-m / -t` of the memory, and an item lives in one shard:
/// an item may take at most half of a share (as memcached allows half of `-m`), and a
/// share must hold at least two of the smallest pages.
fn check_share(memory: usize, threads: usize, item_size_max: usize) -> Result<(), ConfigError> {
    let share = memory / threads;
    if share < 2 * MIN_PAGE_SIZE {
        return Err(invalid(format!(
            "each worker needs at least {} KiB of memory: raise -m or lower -t",
            (2 * MIN_PAGE_SIZE) >> 10
        )));
    }
    if item_size_max > share / 2 {
        return Err(invalid(format!(
            "item max size (-I) cannot be larger than half of a worker's memory \
             (-m / -t = {} KiB): raise -m, lower -t or lower -I",
            share >> 10
        )));
    }
    Ok(())
}

fn parse_extended(options: &[String]) -> Result<Extended, ConfigError> {
    let mut ext = Extended::default();
    for option in options.iter().flat_map(|o| o.split(',')) {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        apply_extended(&mut ext, key.trim(), value.trim())?;
    }
    Ok(ext)
}

fn apply_extended(ext: &mut Extended, key: &str, value: &str) -> Result<(), ConfigError> {
    let bad = || invalid(format!("bad value for -o {key}: {value:?}"));
    match key {
        "idle_timeout" => ext.idle_timeout = value.parse().map_err(|_| bad())?,
        "read_buf_mem_limit" => {
            let megabytes: usize = value.parse().map_err(|_| bad())?;
            ext.read_buf_mem_limit = megabytes.checked_mul(1 << 20).ok_or_else(bad)?;
        }
        "slab_chunk_max" => ext.slab_chunk_max = Some(parse_size(value).ok_or_else(bad)?),
        "hashpower" => {
            let power: u8 = value.parse().map_err(|_| bad())?;
            if !(12..=32).contains(&power) {
                return Err(invalid("hashpower must be between 12 and 32"));
            }
            ext.hashpower = Some(power);
        }
        "modern" | "no_modern" | "" => {}
        _ => return Err(invalid(format!("illegal suboption {key:?}"))),
    }
    Ok(())
}

/// Picks the page size: 1 MiB, or less when a shard's share of memory would otherwise
/// hold fewer than [`PAGES_PER_SHARD`] pages, so that every size class can get pages.
fn page_size(memory: usize, threads: usize) -> usize {
    let share = memory / threads / PAGES_PER_SHARD;
    let pow2 = if share == 0 {
        MIN_PAGE_SIZE
    } else {
        1 << share.ilog2()
    };
    pow2.clamp(MIN_PAGE_SIZE, MAX_PAGE_SIZE)
}

fn slab_config(
    args: &Args,
    ext: &Extended,
    memory: usize,
    threads: usize,
    item_size_max: usize,
) -> Result<SlabConfig, ConfigError> {
    if args.growth_factor.is_nan() || args.growth_factor <= 1.0 {
        return Err(invalid("slab growth factor (-f) must be greater than 1"));
    }
    check_positive(args.slab_min_size, "slab minimum size (-n)")?;
    let page_size = page_size(memory, threads);
    let chunk_max = ext.slab_chunk_max.unwrap_or(page_size / 2);
    if HEADER_SIZE + args.slab_min_size > page_size / 2 {
        return Err(invalid(format!(
            "slab minimum size (-n) must be at most {} bytes",
            page_size / 2 - HEADER_SIZE
        )));
    }
    if chunk_max > page_size / 2 || chunk_max < HEADER_SIZE + args.slab_min_size {
        return Err(invalid(format!(
            "slab_chunk_max must be between {} and {} bytes",
            HEADER_SIZE + args.slab_min_size,
            page_size / 2
        )));
    }
    Ok(SlabConfig {
        page_size,
        min_size: args.slab_min_size,
        growth_factor: args.growth_factor,
        chunk_max: chunk_max.min(item_size_max),
        item_size_max,
        evictions: !args.disable_evictions,
        cas_enabled: !args.disable_cas,
        hashpower: ext.hashpower.unwrap_or(16),
    })
}

fn listen(args: &Args) -> Result<Listen, ConfigError> {
    if let Some(path) = &args.unix_socket {
        let mask = u32::from_str_radix(&args.unix_mask, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| invalid(format!("bad unix socket mask (-a) {:?}", args.unix_mask)))?;
        return Ok(Listen::Unix {
            path: path.clone(),
            mask,
        });
    }
    let mut addrs = Vec::new();
    for host in args
        .listen
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        addrs.extend(resolve(host, args.port)?);
    }
    if addrs.is_empty() {
        return Err(invalid("no address to listen on (-l)"));
    }
    Ok(Listen::Tcp(addrs))
}

fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ConfigError> {
    let error = |reason: String| ConfigError::Address {
        addr: host.to_string(),
        reason,
    };
    if let Ok(addr) = host.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let found = (bare, port)
        .to_socket_addrs()
        .map_err(|e| error(e.to_string()))?;
    Ok(found.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::from_args(std::iter::once("corecache").chain(args.iter().copied()))
    }

    fn refused(args: &[&str]) -> String {
        let err = parse(args).expect_err("should be refused");
        assert_eq!(Config::exit_code(&err), 64);
        err.to_string()
    }

    #[test]
    fn defaults_match_memcached() {
        let config = parse(&["-t", "2"]).unwrap();
        assert_eq!(config.port, 11211);
        assert_eq!(
            config.listen,
            Listen::Tcp(vec!["127.0.0.1:11211".parse().unwrap()])
        );
        assert_eq!(config.memory_limit, 64 << 20);
        assert_eq!(config.max_connections, 1024);
        assert_eq!(config.slab.item_size_max, 1 << 20);
        assert_eq!(config.slab.page_size, 128 << 10);
        assert_eq!(config.slab.chunk_max, 64 << 10);
        assert!(config.slab.evictions && config.slab.cas_enabled);
        assert_eq!(config.reqs_per_event, 20);
        assert!(config.flush_enabled && !config.shutdown_enabled);
    }

    #[test]
    fn memcached_flags_are_understood() {
        let config = parse(&[
            "-p",
            "22000",
            "-m",
            "1024",
            "-c",
            "10",
            "-t",
            "3",
            "-I",
            "128m",
            "-M",
            "-C",
            "-f",
            "1.5",
            "-n",
            "32",
            "-R",
            "5",
            "-b",
            "64",
            "-A",
            "-F",
            "-vv",
            "-o",
            "idle_timeout=7,hashpower=20,modern,read_buf_mem_limit=3",
            "-o",
            "slab_chunk_max=64k",
        ])
        .unwrap();
        assert_eq!(config.port, 22000);
        assert_eq!(config.threads, 3);
        assert_eq!(config.slab.item_size_max, 128 << 20);
        assert!(!config.slab.evictions && !config.slab.cas_enabled);
        assert_eq!(config.slab.growth_factor, 1.5);
        assert_eq!(config.slab.min_size, 32);
        assert_eq!(config.slab.chunk_max, 64 << 10);
        assert_eq!(config.slab.hashpower, 20);
        assert_eq!(config.idle_timeout, 7);
        assert_eq!(config.read_buf_mem_limit, 3 << 20);
        assert_eq!(config.verbosity, 2);
        assert!(config.shutdown_enabled && !config.flush_enabled);
    }

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("2048"), Some(2048));
        assert_eq!(parse_size("m"), None);
        assert_eq!(parse_size("x1"), None);
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        assert!(refused(&["-U", "11211"]).contains("UDP"));
        assert!(refused(&["-I", "1000"]).contains("1024 bytes"));
        assert!(refused(&["-I", "2000m", "-m", "8000"]).contains("1024m"));
        assert!(refused(&["-I", "40m"]).contains("half the memory"));
        assert!(refused(&["-f", "1.0"]).contains("greater than 1"));
        assert!(refused(&["-t", "0"]).contains("threads"));
        assert!(refused(&["-m", "0"]).contains("memory"));
        assert!(refused(&["-c", "0"]).contains("connection"));
        assert!(refused(&["-o", "bogus=1"]).contains("bogus"));
        assert!(refused(&["-o", "hashpower=99"]).contains("hashpower"));
        assert!(refused(&["-o", "slab_chunk_max=4m"]).contains("slab_chunk_max"));
        assert!(refused(&["-p", "notaport"]).contains("notaport"));
        assert!(refused(&["-s", "/tmp/x", "-a", "999"]).contains("mask"));
    }

    #[test]
    fn small_shares_get_smaller_pages() {
        assert_eq!(page_size(64 << 20, 2), 128 << 10);
        assert_eq!(page_size(64 << 20, 16), 64 << 10);
        assert_eq!(page_size(1 << 30, 4), 1 << 20);
        assert_eq!(page_size(8 << 20, 64), 64 << 10);
    }

    #[test]
    fn an_item_must_fit_in_a_workers_share() {
        assert!(refused(&["-m", "8", "-t", "8"]).contains("half of a worker's memory"));
        assert!(refused(&["-m", "8", "-t", "65"]).contains("each worker needs"));
        assert!(parse(&["-m", "8", "-t", "4"]).is_ok());
    }

    #[test]
    fn unix_socket_replaces_tcp() {
        let config = parse(&["-s", "/tmp/cc.sock", "-a", "770"]).unwrap();
        assert_eq!(
            config.listen,
            Listen::Unix {
                path: "/tmp/cc.sock".into(),
                mask: 0o770
            }
        );
    }

    #[test]
    fn sasl_reads_a_password_file() {
        let path = std::env::temp_dir().join(format!("cc-pwdb-{}", std::process::id()));
        std::fs::write(&path, "# users\nalice:secret\nbob:pa:ss\n").unwrap();
        let config = parse(&["-S", "--sasl-pwdb", path.to_str().unwrap()]).unwrap();
        let db = config.sasl.expect("sasl on");
        assert!(db.check(b"alice", b"secret"));
        assert!(db.check(b"bob", b"pa:ss"));
        assert!(!db.check(b"alice", b"secret2"));
        assert!(!db.check(b"alice", b""));
        assert!(!db.check(b"carol", b"secret"));
        assert!(!format!("{db:?}").contains("secret"));
        assert_eq!(config.protocols, Protocols::Binary);
        let refused = refused(&["-S", "-B", "ascii", "--sasl-pwdb", path.to_str().unwrap()]);
        assert!(refused.contains("binary"));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn help_is_not_an_error_exit() {
        let err = parse(&["--help"]).unwrap_err();
        assert_eq!(Config::exit_code(&err), 0);
        assert!(err.to_string().contains("[default: 11211]"));
    }
}
