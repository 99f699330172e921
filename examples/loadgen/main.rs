//! A load generator for servers that speak memcached's text and meta protocols, written
//! for the side-by-side benchmarks in `benches/` (`compare.sh`, `memory.sh`,
//! `hitratio.sh`).
//!
//! memtier_benchmark and memcslap do not speak the meta protocol, and memcached 1.6.18
//! answers pipelined bare `get`s with one write each, which flatters any rival; so the
//! comparison of pipelined reads needs a client that sends `mg`. This one sends text
//! `get`/`set`, pipelined `mg`/`ms`, or multi-key `get`s with sets mixed in, keys drawn
//! uniform or Zipf, values of fixed or lognormal length, closed loop or at a fixed
//! offered rate. It checks the framing of every reply and stops with exit code 1 on any
//! error reply. It prints one JSON line on stdout and one line for people on stderr.
//!
//! It is not a general client: keys are a prefix and a decimal number, values are
//! filler bytes, and flags and expiry are always 0.
//!
//! ```text
//! cargo run --release --example loadgen -- --server 127.0.0.1:11211 --fill \
//!     --mode mg --depth 32 --connections 8 --duration 10
//! ```

mod driver;
mod fill;
mod memory;
mod reply;
mod report;
mod timer;
mod workload;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;

use driver::{Pace, Phase, Stop};
use report::{Figures, ServerProc};
use workload::{KeyDist, MissPolicy, ReadCommand, SizeDist, Workload};

/// What a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    /// Text `get <key>` and `set`.
    GetSet,
    /// Meta `mg <key> v` and `ms`, pipelined with `--depth`.
    Mg,
    /// Text `get` of `--multi-get-keys` keys, and `set`.
    MultiGet,
    /// Store every key once (`--keys`), then stop.
    Fill,
    /// Store new keys until the server evicts, then count the items and bytes it holds.
    Memory,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KeyDistArg {
    Uniform,
    Zipf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ValueDistArg {
    Fixed,
    Lognormal,
}

/// Load generator for memcached-protocol servers (text and meta).
#[derive(Parser, Debug)]
#[command(name = "loadgen")]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:11211")]
    server: String,
    #[arg(long, value_enum, default_value_t = Mode::GetSet)]
    mode: Mode,
    /// Requests written together per connection before waiting for their replies.
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Keys in one multi-get.
    #[arg(long, default_value_t = 20)]
    multi_get_keys: usize,
    /// Fraction of requests that are sets (`ms` in mg mode), 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    set_ratio: f64,
    /// Follow every get miss with a set of that key (a cache in front of a database).
    #[arg(long)]
    set_on_miss: bool,
    /// Keys are numbered 0 to N-1.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    #[arg(long, value_enum, default_value_t = KeyDistArg::Uniform)]
    key_dist: KeyDistArg,
    /// Exponent of the Zipf key distribution.
    #[arg(long, default_value_t = 1.0)]
    zipf_alpha: f64,
    /// Keys are this prefix followed by the key number in decimal.
    #[arg(long, default_value = "key:")]
    key_prefix: String,
    /// Value length in bytes (the median, for lognormal values).
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    #[arg(long, value_enum, default_value_t = ValueDistArg::Fixed)]
    value_dist: ValueDistArg,
    /// Shape of lognormal values: sigma of the underlying normal.
    #[arg(long, default_value_t = 0.5)]
    value_sigma: f64,
    /// Longest lognormal value.
    #[arg(long, default_value_t = 4096)]
    value_max: usize,
    /// Connections, spread over the threads.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before the measured part, not counted.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Measure this many requests instead of a duration (follow-up sets not counted).
    #[arg(long)]
    requests: Option<u64>,
    /// Requests before the measured part, not counted (with --requests).
    #[arg(long, default_value_t = 0)]
    warmup_requests: u64,
    /// Offered load in requests per second over all connections (open loop); without
    /// it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Store every key once before the run.
    #[arg(long)]
    fill: bool,
    /// Seed of all random draws; the same seed gives the same sequence per connection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The server's process id: adds its CPU time per request and its RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Echoed in the JSON line.
    #[arg(long)]
    label: Option<String>,
}

/// The JSON line of a timed run.
#[derive(Serialize)]
struct RunLine<'a> {
    label: &'a Option<String>,
    mode: Mode,
    server: &'a str,
    connections: usize,
    threads: usize,
    depth: usize,
    set_ratio: f64,
    offered_rate: Option<f64>,
    fill_seconds: Option<f64>,
    #[serde(flatten)]
    figures: Figures,
    server_cpu_s: Option<f64>,
    server_cpu_us_per_request: Option<f64>,
    server_rss_bytes: Option<u64>,
    loadavg: [f64; 3],
}

/// The JSON line of `--mode memory`.
#[derive(Serialize)]
struct MemoryLine<'a> {
    label: &'a Option<String>,
    mode: Mode,
    server: &'a str,
    #[serde(flatten)]
    memory: memory::MemoryReport,
    server_rss_bytes: Option<u64>,
    loadavg: [f64; 3],
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let workload = build_workload(args)?;
    let addr = resolve(&args.server)?;
    let server = args.server_pid.map(ServerProc::new);
    match args.mode {
        Mode::Memory => return run_memory(args, addr, &workload, server.as_ref()),
        Mode::Fill => {
            let seconds = fill::fill(addr, &workload, args.keys, args.threads, args.seed)?;
            eprintln!("filled {} keys in {seconds:.2} s", args.keys);
            return Ok(());
        }
        Mode::GetSet | Mode::Mg | Mode::MultiGet => {}
    }
    let fill_seconds = match args.fill {
        true => Some(fill::fill(
            addr,
            &workload,
            args.keys,
            args.threads,
            args.seed,
        )?),
        false => None,
    };
    let (warmup, measured) = phases(args)?;
    if let Some(warmup) = warmup {
        driver::run(addr, &workload, &warmup)?;
    }
    let cpu_before = server.as_ref().map(ServerProc::cpu_seconds).transpose()?;
    let tally = driver::run(addr, &workload, &measured)?;
    let cpu_after = server.as_ref().map(ServerProc::cpu_seconds).transpose()?;
    let figures = Figures::new(&tally);
    let server_cpu_s = cpu_before.zip(cpu_after).map(|(a, b)| b - a);
    let line = RunLine {
        label: &args.label,
        mode: args.mode,
        server: &args.server,
        connections: args.connections,
        threads: args.threads,
        depth: args.depth,
        set_ratio: args.set_ratio,
        offered_rate: args.rate,
        fill_seconds,
        server_cpu_us_per_request: server_cpu_s.map(|s| s * 1e6 / figures.requests.max(1) as f64),
        server_cpu_s,
        server_rss_bytes: server.as_ref().map(ServerProc::rss_bytes).transpose()?,
        loadavg: report::loadavg(),
        figures,
    };
    eprintln!(
        "{}: {}",
        args.label.as_deref().unwrap_or(&args.server),
        line.figures.human()
    );
    println!("{}", serde_json::to_string(&line).expect("serialisable"));
    Ok(())
}

fn run_memory(
    args: &Args,
    addr: SocketAddr,
    w: &Workload,
    server: Option<&ServerProc>,
) -> Result<(), String> {
    let memory = memory::run(addr, w, args.seed)?;
    eprintln!(
        "{}: {} items held ({} by stats), {:.1} MB of keys and values, {} keys written",
        args.label.as_deref().unwrap_or(&args.server),
        memory.items_held,
        memory.curr_items,
        memory.payload_bytes as f64 / 1e6,
        memory.keys_written
    );
    let line = MemoryLine {
        label: &args.label,
        mode: args.mode,
        server: &args.server,
        memory,
        server_rss_bytes: server.map(ServerProc::rss_bytes).transpose()?,
        loadavg: report::loadavg(),
    };
    println!("{}", serde_json::to_string(&line).expect("serialisable"));
    Ok(())
}

/// The unmeasured and measured phases the arguments ask for.
fn phases(args: &Args) -> Result<(Option<Phase>, Phase), String> {
    let pace = match args.rate {
        None => Pace::Closed,
        Some(rate) if rate > 0.0 => Pace::Open(rate),
        Some(rate) => return Err(format!("--rate {rate} must be positive")),
    };
    let phase = |stop, seed| Phase {
        stop,
        pace,
        connections: args.connections,
        threads: args.threads,
        seed,
    };
    let seconds = |s: f64| Duration::try_from_secs_f64(s).map_err(|_| format!("bad duration {s}"));
    let (warmup, measured) = match args.requests {
        Some(n) => (
            (args.warmup_requests > 0).then_some(Stop::Requests(args.warmup_requests)),
            Stop::Requests(n),
        ),
        None => (
            (args.warmup > 0.0).then_some(Stop::After(seconds(args.warmup)?)),
            Stop::After(seconds(args.duration)?),
        ),
    };
    // The warm-up draws its own sequence, so the measured one is the same with or
    // without it.
    Ok((
        warmup.map(|stop| phase(stop, args.seed.wrapping_add(1))),
        phase(measured, args.seed),
    ))
}

fn build_workload(args: &Args) -> Result<Workload, String> {
    if !(0.0..=1.0).contains(&args.set_ratio) {
        return Err(format!(
            "--set-ratio {} must be between 0 and 1",
            args.set_ratio
        ));
    }
    if args.depth == 0 || args.multi_get_keys == 0 || args.threads == 0 {
        return Err("--depth, --multi-get-keys and --threads must be at least 1".into());
    }
    if args.connections < args.threads {
        return Err(format!(
            "--connections {} is fewer than --threads {}",
            args.connections, args.threads
        ));
    }
    let read = match args.mode {
        Mode::Mg => ReadCommand::MetaGet,
        Mode::MultiGet => ReadCommand::MultiGet(args.multi_get_keys),
        Mode::GetSet | Mode::Fill | Mode::Memory => ReadCommand::Get,
    };
    let alpha = match args.key_dist {
        KeyDistArg::Uniform => None,
        KeyDistArg::Zipf => Some(args.zipf_alpha),
    };
    let sizes = match args.value_dist {
        ValueDistArg::Fixed => SizeDist::Fixed(args.value_size),
        ValueDistArg::Lognormal => {
            SizeDist::lognormal(args.value_size, args.value_sigma, args.value_max)?
        }
    };
    let on_miss = match args.set_on_miss {
        true => MissPolicy::SetKey,
        false => MissPolicy::Ignore,
    };
    let keys = KeyDist::new(args.keys, alpha)?;
    Ok(Workload::new(
        read,
        keys,
        sizes,
        args.set_ratio,
        on_miss,
        args.depth,
        &args.key_prefix,
    ))
}

fn resolve(server: &str) -> Result<SocketAddr, String> {
    server
        .to_socket_addrs()
        .map_err(|e| format!("--server {server}: {e}"))?
        .next()
        .ok_or_else(|| format!("--server {server}: no address"))
}
