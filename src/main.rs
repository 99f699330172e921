//! The `corecache` binary: parses the command line, sets up logging, starts the server
//! and stops it on SIGINT, SIGTERM or SIGUSR1 (memcached's graceful stop); SIGHUP is
//! ignored, as memcached ignores it.

use std::io::IsTerminal;
use std::process::ExitCode;

use corecache::config::Config;
use corecache::server::{Options, Server};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::{reload, Registry};

/// memcached's exit code for a bad command line.
const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args_os()) {
        Ok(config) => config,
        Err(err) => {
            let code = Config::exit_code(&err);
            let _printed = err.print();
            return ExitCode::from(u8::try_from(code).unwrap_or(EX_USAGE));
        }
    };
    let options = Options {
        on_verbosity: Some(logging(config.verbosity)),
    };
    match run(config, options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("corecache: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config, options: Options) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGUSR1, SIGHUP])?;
    let server = Server::start(config, options)?;
    let stop = server.stopper();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let stopping = signals.forever().find(|&signal| signal != SIGHUP);
            if let Some(signal) = stopping {
                tracing::warn!(signal, "stopping on signal");
                stop();
            }
        })?;
    server.wait()
}

/// Logs to stderr at the level `-v` asked for, and returns the function `verbosity`
/// calls to change it while running.
fn logging(verbosity: u8) -> Box<dyn Fn(u32) + Send + Sync> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (filter, handle) = reload::Layer::<LevelFilter, Registry>::new(level(verbosity.into()));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    Box::new(move |v| {
        if let Err(err) = handle.reload(level(v)) {
            eprintln!("corecache: cannot change the log level: {err}");
        }
    })
}

/// `-v` shows warnings and connections, `-vv` each command, `-vvv` internals; without it
/// only errors are shown.
fn level(verbosity: u32) -> LevelFilter {
    match verbosity {
        0 => LevelFilter::ERROR,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}
