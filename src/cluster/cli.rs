//! The `corecache-ring` command line: `locate` places keys read on stdin, `plan`
//! prints shares, failure losses and the cost of adding or removing a node.
//!
//! The binary only calls [`main`]; [`run`] takes its input and output as parameters so
//! that tests drive it in-process.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use super::continuum::{HashTag, Ketama, Mode, RingError};
use super::hash::Hash;
use super::live::curr_items;
use super::node::Node;
use super::plan;
use super::report::Report;

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "corecache-ring",
    version,
    about = "Places keys on a memcached cluster exactly as libmemcached (pylibmc, \
             php-memcached) and twemproxy do, and plans node counts."
)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read keys on stdin, one per line (raw bytes), and print `key<TAB>host:port` for
    /// each: the node the client in --mode would send it to.
    Locate(Ring),
    /// Print each node's share of the key space and the share of keys lost if it
    /// fails; with --add or --remove, what that change moves.
    Plan(PlanArgs),
}

/// The cluster as the clients see it.
#[derive(clap::Args, Debug)]
pub struct Ring {
    /// Whose continuum: libmemcached (pylibmc `ketama`, php-memcached sessions),
    /// libmemcached-weighted (pylibmc `ketama_weighted`, php-memcached
    /// OPT_LIBKETAMA_COMPATIBLE), twemproxy (`distribution: ketama`).
    #[arg(long, value_enum)]
    pub mode: Mode,

    /// The key hash [default: one_at_a_time for libmemcached, fnv1a_64 for twemproxy,
    /// md5 for the others].
    #[arg(long, value_enum)]
    pub hash: Option<Hash>,

    /// twemproxy's hash_tag: two characters, such as {}; only the part of a key
    /// between them is hashed.
    #[arg(long)]
    pub hash_tag: Option<HashTag>,

    /// The nodes, comma separated, in the clients' order: host:port or host:port:weight, with
    /// twemproxy's alias after a space if the pool names its servers.
    #[arg(long, value_delimiter = ',', required = true)]
    pub nodes: Vec<Node>,
}

/// `plan`'s options.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The cluster.
    #[command(flatten)]
    pub ring: Ring,

    /// Show what adding this node (host:port or host:port:weight) moves.
    #[arg(long, conflicts_with = "remove")]
    pub add: Option<Node>,

    /// Show what removing this node (host:port, one of --nodes) moves.
    #[arg(long)]
    pub remove: Option<String>,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Ask each node's `stats` for curr_items and show the real spread beside the
    /// predicted one.
    #[arg(long)]
    pub live: bool,

    /// Seconds to wait for each node with --live.
    #[arg(long, default_value_t = 2.0)]
    pub timeout: f64,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The continuum could not be built.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// A weight was given to the unweighted libmemcached continuum.
    #[error(
        "--mode libmemcached ignores weights, as php-memcached's session handler does; \
         pylibmc sets ketama before adding servers, which makes a weight above 1 build \
         the weighted MD5 continuum: use --mode libmemcached-weighted --hash one_at_a_time"
    )]
    WeightIgnored,
    /// `--hash-tag` outside twemproxy.
    #[error("--hash-tag is a twemproxy setting: use it with --mode twemproxy")]
    HashTagOutsideTwemproxy,
    /// `--remove` names no node of `--nodes`.
    #[error("--remove {0}: not one of --nodes")]
    NoSuchNode(String),
    /// `--remove` names the only node: there is nothing to move its keys to.
    #[error("--remove {0}: the only node; there is nowhere for its keys to go")]
    OnlyNode(String),
    /// `--add` names a node already in `--nodes`.
    #[error("--add {0}: already one of --nodes")]
    AlreadyThere(String),
    /// `--timeout` is not a positive number of seconds.
    #[error("--timeout {0}: want a positive number of seconds")]
    Timeout(f64),
    /// Reading keys or writing results failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Ring {
    /// The continuum settings, after checking that they fit together.
    fn ketama(&self, extra: Option<&Node>) -> Result<Ketama, CliError> {
        let weighted = self.nodes.iter().chain(extra).any(|n| n.weight != 1);
        if self.mode == Mode::Libmemcached && weighted {
            return Err(CliError::WeightIgnored);
        }
        if self.hash_tag.is_some() && self.mode != Mode::Twemproxy {
            return Err(CliError::HashTagOutsideTwemproxy);
        }
        let hash = self.hash.unwrap_or(self.mode.default_hash());
        let ketama = Ketama::new(self.mode).with_hash(hash);
        Ok(Ketama {
            hash_tag: self.hash_tag,
            ..ketama
        })
    }
}

/// Runs a parsed command, reading keys from `input` and printing to `output`.
///
/// # Errors
///
/// [`CliError`] for settings that do not fit together and for I/O errors.
pub fn run(args: Args, input: impl BufRead, output: impl Write) -> Result<(), CliError> {
    match args.command {
        Command::Locate(ring) => locate(&ring, input, output),
        Command::Plan(plan) => plan_cluster(&plan, output),
    }
}

fn locate(ring: &Ring, mut input: impl BufRead, output: impl Write) -> Result<(), CliError> {
    let continuum = ring.ketama(None)?.continuum(&ring.nodes)?;
    let names: Vec<String> = ring.nodes.iter().map(Node::address).collect();
    let mut output = io::BufWriter::new(output);
    let mut line = Vec::new();
    while input.read_until(b'\n', &mut line)? > 0 {
        let key = strip_newline(&line);
        output.write_all(key)?;
        writeln!(output, "\t{}", names[continuum.locate(key)])?;
        line.clear();
    }
    output.flush()?;
    Ok(())
}

/// A line without its `\n` or `\r\n`.
fn strip_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn plan_cluster(args: &PlanArgs, mut output: impl Write) -> Result<(), CliError> {
    let nodes = &args.ring.nodes;
    let ketama = args.ring.ketama(args.add.as_ref())?;
    let mut report = Report::new(&ketama, plan::node_plans(&ketama, nodes)?);
    report.change = change(args, &ketama)?;
    if args.live {
        report = report.with_live(live_counts(nodes, args.timeout)?);
    }
    if args.json {
        writeln!(output, "{}", report.to_json())?;
    } else {
        write!(output, "{report}")?;
    }
    Ok(())
}

fn change(args: &PlanArgs, ketama: &Ketama) -> Result<Option<plan::Change>, CliError> {
    let nodes = &args.ring.nodes;
    let find = |address: &str| nodes.iter().position(|n| n.address() == address);
    if let Some(added) = &args.add {
        if find(&added.address()).is_some() {
            return Err(CliError::AlreadyThere(added.address()));
        }
        return Ok(Some(plan::add(ketama, nodes, added)?));
    }
    let Some(removed) = &args.remove else {
        return Ok(None);
    };
    let index = find(removed).ok_or_else(|| CliError::NoSuchNode(removed.clone()))?;
    if nodes.len() == 1 {
        return Err(CliError::OnlyNode(removed.clone()));
    }
    Ok(Some(plan::remove(ketama, nodes, index)?))
}

fn live_counts(nodes: &[Node], timeout: f64) -> Result<Vec<Result<u64, String>>, CliError> {
    let timeout = Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or(CliError::Timeout(timeout))?;
    let ask = |node| curr_items(node, timeout).map_err(|err| err.to_string());
    Ok(nodes.iter().map(ask).collect())
}

/// The binary's entry point: exit 0 on success, 1 on a failed command (with the reason
/// on stderr), 2 on a bad command line. A closed stdout (`| head`) is not a failure.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let result = run(args, io::stdin().lock(), io::stdout().lock());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Io(err)) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("corecache-ring: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str], input: &[u8]) -> Result<String, CliError> {
        let argv = std::iter::once("corecache-ring").chain(args.iter().copied());
        let mut out = Vec::new();
        run(Args::parse_from(argv), input, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    const NODES: &str = "127.0.0.1:22141,127.0.0.1:22142,127.0.0.1:22143";

    #[test]
    fn locate_prints_key_tab_node() {
        let out = run_args(
            &["locate", "--mode", "twemproxy", "--nodes", NODES],
            b"key:36\r\nkey:36",
        );
        assert_eq!(
            out.unwrap(),
            "key:36\t127.0.0.1:22143\nkey:36\t127.0.0.1:22143\n"
        );
    }

    #[test]
    fn weights_in_unweighted_mode_are_refused() {
        let args = ["plan", "--mode", "libmemcached", "--nodes", "a:1:2,b:1"];
        assert!(matches!(run_args(&args, b""), Err(CliError::WeightIgnored)));
        let args = [
            "plan",
            "--mode",
            "libmemcached",
            "--nodes",
            "a:1",
            "--add",
            "b:1:2",
        ];
        assert!(matches!(run_args(&args, b""), Err(CliError::WeightIgnored)));
    }

    #[test]
    fn remove_and_add_must_name_sensible_nodes() {
        let args = [
            "plan",
            "--mode",
            "twemproxy",
            "--nodes",
            NODES,
            "--remove",
            "x:1",
        ];
        assert!(matches!(run_args(&args, b""), Err(CliError::NoSuchNode(_))));
        let add = [
            "plan",
            "--mode",
            "twemproxy",
            "--nodes",
            NODES,
            "--add",
            "127.0.0.1:22141",
        ];
        assert!(matches!(
            run_args(&add, b""),
            Err(CliError::AlreadyThere(_))
        ));
        let tag = [
            "locate",
            "--mode",
            "libmemcached",
            "--nodes",
            NODES,
            "--hash-tag",
            "{}",
        ];
        assert!(matches!(
            run_args(&tag, b""),
            Err(CliError::HashTagOutsideTwemproxy)
        ));
    }

    #[test]
    fn plan_removing_a_node_prints_the_change() {
        let args = [
            "plan",
            "--mode",
            "twemproxy",
            "--nodes",
            NODES,
            "--remove",
            "127.0.0.1:22142",
        ];
        let table = run_args(&args, b"").unwrap();
        assert!(
            table.contains("removing 127.0.0.1:22142 moves 33.5"),
            "{table}"
        );
    }

    #[test]
    fn live_counts_name_unreachable_nodes() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let nodes = [Node::new("127.0.0.1", port)];
        let counts = live_counts(&nodes, 1.0).unwrap();
        assert!(counts[0].is_err());
        assert!(matches!(
            live_counts(&nodes, 0.0),
            Err(CliError::Timeout(_))
        ));
    }
}
